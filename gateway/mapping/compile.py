"""Code generation: a checked spec becomes the source of one Python function, compiled once with exec.

Every name the generated code uses is either a local, a hoisted constant or a helper from runtime.py;
user text only ever appears in it as a repr() literal, so a spec cannot inject code.
"""

from __future__ import annotations

import ast
import copy
import functools
import itertools
import operator
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from gateway.mapping import coerce, functions, runtime
from gateway.mapping.coerce import quantum
from gateway.mapping.errors import MappingError
from gateway.mapping.formula import NUM, FormulaEmitter, kind_of, outer_sums, path_of, plain_arithmetic
from gateway.mapping.paths import WILDCARD, Path
from gateway.mapping.spec import FieldSpec, MappingSpec, coercer

RECORD = "r"
_VARYING = object()
# Constants that one output may share with every other: nothing can change them in place.
_IMMUTABLE = (str, int, float, Decimal, bool, type(None), tuple, frozenset)

_HELPERS: dict[str, Any] = {
    "_MappingError": MappingError,
    "_failure": runtime.failure,
    "_get": runtime.get,
    "_index": runtime.index,
    "_walk": runtime.walk,
    "_items": runtime.items,
    "_as_record": runtime.as_record,
    "_as_item": runtime.as_item,
    "_coalesce": runtime.coalesce,
    "_present": runtime.present,
    "_truthy": runtime.truthy,
    "_order": runtime.order,
    "_sum": runtime.total,
    "_round": runtime.round_to,
    "_split": runtime.split,
    "_join": runtime.join,
    "_translate": runtime.translate,
    "_check_length": runtime.check_length,
    "_missing": runtime.missing_required,
    "_text": coerce.text_or_empty,
    "_to_text": coerce.to_text,
    "_arith": coerce.arith,
    "_number": runtime.number_or_none,
    "_to_number": coerce.to_number,
    "_fromisoformat": datetime.fromisoformat,
    "_MISS": runtime.MISSING,
    "_Decimal": Decimal,
    "_ZERO": Decimal(0),
    "_remember": coerce.remember,
    "_InvalidOperation": InvalidOperation,
    "_ROUND_HALF_UP": ROUND_HALF_UP,
    "_ZERO_DATES": coerce.ZERO_DATES,
    "_copy": copy.deepcopy,
    # value[4::3], the separators of an ISO date-time text, without building the slice each time.
    "_SEP": slice(4, None, 3),
}


class _Code:
    """Lines of Python with indentation, plus the module namespace they need."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 1
        self.namespace: dict[str, Any] = dict(_HELPERS)
        self._hoisted: dict[Any, str] = {}
        self._counter = 0

    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    def fresh(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def hoist(self, value: Any) -> str:
        """A module-level name bound to `value` (constants, tables, coercion functions)."""
        try:
            # repr as well: Decimal("1.0") == Decimal("1.00"), but they must stay distinct constants.
            marker: Any = (type(value), value, repr(value))
            hash(marker)
        except TypeError:
            marker = ("id", id(value))
        if marker not in self._hoisted:
            name = self.fresh("_k")
            self._hoisted[marker] = name
            self.namespace[name] = value
        return self._hoisted[marker]


class _Generator:
    def __init__(self, spec: MappingSpec, tables: dict[str, dict[str, Any]], order: list[FieldSpec]) -> None:
        self.spec = spec
        self.tables = tables
        self.order = order
        self.code = _Code()
        numbers: dict[str, Decimal] = {}  # text -> Decimal, shared by this mapping's formulas
        self.code.namespace["_NUMBERS"] = numbers
        self.code.namespace["_own_number"] = functools.partial(runtime.own_number, numbers)
        self.dict_vars: set[str] = {RECORD}  # variables known to hold a plain dict
        self.target_vars: dict[str, str] = {}  # top-level field name -> local holding its value
        self.formulas = FormulaEmitter(self)
        # Decimal conversions shared by the formulas of one record or list item (see number_once).
        self.blocks = itertools.count(1)
        self.block = 0  # the statement block being written: the function body, or one list item's loop body
        self.guarded = 0  # > 0 inside a `when` branch, where statements may not run
        self.numbers: dict[tuple[int, str, tuple[Any, ...]], str] = {}
        self.item_records: set[str] = set()
        self.each_specs = {field.name: field for field in spec.fields if field.each is not None}
        self.each_fields: dict[str, dict[str, FieldSpec]] = {}  # item variable -> the fields of its items
        self.subscripts: dict[str, str] = {}  # read expression -> the same read by subscript
        self.read_by_target = {
            str(path.steps[0]) for path in _all_paths(spec.fields) if path.scope == "target" and path.steps
        }
        # The record and each list item read their fields once, into locals, at the top of their block
        # (see prefetch_lines): base variable -> {key: local}, and where each block's reads go.
        self.prefetch: dict[str, dict[str, str]] = {}
        self.prefetch_slots: list[tuple[int, int, str]] = []
        self.prefetching = True
        self.top_fields = {field.name: field for field in spec.fields}
        self.quantized: dict[str, str] = {}  # a formula decimal's text variable -> its Decimal variable
        self.zeros: dict[str, str] = {}  # such a Decimal variable -> the constant it holds when it is zero
        # Sums (by id) whose total only ever reaches a rounded decimal through + - *: see fused_terms.
        self.value_only: set[int] = set()
        # Sums over a list this mapping builds, worked out while building it (see fusable_sums).
        self.fused = self.fusable_sums()
        self.fused_ready: dict[int, str] = {}
        self.fused_items: dict[str, dict[str, str]] = {}  # output item variable -> field -> decimal code

    # -- the formula emitter's host ---------------------------------------------------------------

    def hoist(self, value: Any) -> str:
        return self.code.hoist(value)

    def fresh(self, prefix: str) -> str:
        return self.code.fresh(prefix)

    def number(self, path: Path, scopes: list[str], shared: bool) -> str | None:
        """A decimal read of `path`: decimals this mapping wrote itself, or a conversion formulas share."""
        base = (
            scopes[0]
            if path.scope == "root"
            else scopes[-1]
            if path.scope == "target"
            else scopes[-1 - path.up]
        )
        if base in self.fused_items and path.scope == "self":
            return self.fused_items[base][str(path.steps[0])]
        if path.scope == "target" and len(path.steps) == 1:
            field = self.top_fields.get(str(path.steps[0]))
            if field is not None and _own_decimal_text(field):
                return self.own_decimal(field, self.target_vars[field.name])
        if base in self.item_records and path.scope == "self" and len(path.steps) == 1:
            field = self.each_fields[base].get(str(path.steps[0]))
            if field is not None and field.type == "decimal" and (field.output or "string") == "string":
                # Our own decimal text is canonical: Decimal() needs no checks, and missing stays 0.
                text, found = self.code.fresh("_e"), self.code.fresh("_m")
                read = f"({text} := {base}.get({path.steps[0]!r}))"
                return f"({found} if ({found} := _NUMBERS.get({read})) is not None else _own_number({text}))"
        return self.number_once(path, scopes) if shared else None

    def own_decimal(self, field: FieldSpec, value: str, exact: bool = True) -> str:
        """A decimal field's value (`value` names it) as a Decimal: missing is 0, as in arithmetic.
        `exact`: the Decimal a formula field's value was written from may be used (it is current)."""
        if field.has_const and self.is_constant(field):
            const = field.const
            return self.code.hoist(Decimal(0) if const is None else Decimal(const))
        if exact and value in self.quantized and field.when is None:
            return self.quantized[value]
        if (field.output or "string") == "string":
            found = self.code.fresh("_m")
            return f"({found} if ({found} := _NUMBERS.get({value})) is not None else _own_number({value}))"
        return f"({value} if {value} is not None else _ZERO)"

    # The temporary `_m` is used up within its own expression, so one name serves every such read, and
    # the same read written twice is the same code, which value_once then works out once.
    def number_of(self, code: str) -> str:
        # A miss is not remembered: values picked at run time (a coalesce) are mostly one-offs, and
        # remembering them would push the amounts that do repeat out of the memo.
        memo = f"(_m := _NUMBERS.get({code})) is not None"
        return f"(_m if {code}.__class__ is str and {memo} else _arith({code}))"

    def to_number(self, code: str) -> str:
        # The memo also holds blank text as 0, which arithmetic wants; here blank text is no value.
        memo = f"(_m := _NUMBERS.get({code})) is not None and (_m or {code}.strip())"
        return f"(_m if {code}.__class__ is str and {memo} else _to_number({code}))"

    def fused_sum(self, node: ast.Call) -> str | None:
        return self.fused_ready.get(id(node))

    def first_number(self, parts: list[tuple[str, str]]) -> str | None:
        if self.guarded:
            return None
        key = (self.block, "coalesce", tuple(parts))
        if key not in self.numbers:
            local = self.code.fresh("_c")
            self._first_number(parts, local)
            self.numbers[key] = local
        return self.numbers[key]

    def _first_number(self, parts: list[tuple[str, str]], local: str) -> None:
        """The first present part, converted like number_once converts (but not remembered: values
        picked at run time are mostly one-offs); a formula's number is always present."""
        line = self.code.line
        (name, kind), rest = parts[0], parts[1:]
        if kind == NUM:
            line(f"{local} = {name}")
            return
        line(f"if {name}.__class__ is str and {name} and {name} not in _ZERO_DATES:")
        line(f"    if ({local} := _NUMBERS.get({name})) is None:")
        line("        try:")
        line(f"            {local} = _Decimal({name})")
        line("        except _InvalidOperation:")
        line(f"            {local} = _arith({name})")
        line(f"        if not {local}.is_finite():")
        line(f"            {local} = _arith({name})")
        line(f"elif {name}.__class__ is not str and _present({name}):")
        line(f"    {local} = _arith({name})")
        line("else:")
        self.code.depth += 1
        if rest:
            self._first_number(rest, local)
        else:
            line(f"{local} = _ZERO")
        self.code.depth -= 1

    def fusable_sums(self) -> dict[str, list[tuple[ast.Call, set[str]]]]:
        """Sums over a list field of this mapping (`sum($target.lines, price * num - discount)`) whose
        body is plain arithmetic on the items' decimal fields: such a body cannot fail, so it is added
        up as each item is built, from the decimals at hand, instead of reading the items again."""
        fused: dict[str, list[tuple[ast.Call, set[str]]]] = {}
        for field in self.spec.fields:
            if field.expr is None:
                continue
            for node, listed in outer_sums(field.expr.tree):
                target = self.top_fields.get(str(listed.steps[0])) if listed.steps else None
                if (
                    listed.scope != "target"
                    or len(listed.steps) != 1
                    or target is None
                    or target.each is None
                    or target.when is not None
                ):
                    continue
                names = {child.name for child in target.fields if _own_decimal_text(child, any_output=True)}
                if plain_arithmetic(node.args[1], names):
                    fused.setdefault(target.name, []).append((node, names))
                    if self.decimal_from_formula(field) and _through_arithmetic(field.expr.tree, node):
                        self.value_only.add(id(node))
        return fused

    def number_once(self, path: Path, scopes: list[str]) -> str | None:
        """Convert a source value to a decimal once per record (or list item), for every formula that uses it.

        The conversion is written where it is first needed, which is inside the first user's `try`, so a
        bad value is blamed on that field; it is only shared within the same block, and never from inside
        a `when` branch, so every later reader finds it assigned.
        """
        if self.guarded or path.scope == "target":
            return None
        base = scopes[0] if path.scope == "root" else scopes[-1 - path.up]
        if base not in self.dict_vars or base in self.item_records:
            return None
        key = (self.block, base, (path.scope, path.up, *path.steps))
        if key not in self.numbers:
            local = self.code.fresh("_d")
            raw = self.read(path, scopes)
            # Inline Decimal() for text, the usual case; _arith words any error and handles the rest.
            self.code.line(f"if {raw}.__class__ is not str:")
            self.code.line(f"    {local} = _arith({raw})")
            self.code.line(f"elif ({local} := _NUMBERS.get({raw})) is None:")
            self.code.line("    try:")
            self.code.line(f"        {local} = _Decimal({raw})")
            self.code.line("    except _InvalidOperation:")
            self.code.line(f"        {local} = _arith({raw})")
            self.code.line(f"    if not {local}.is_finite():")
            self.code.line(f"        {local} = _arith({raw})")
            self.code.line(f"    _remember(_NUMBERS, {raw}, {local})")
            self.numbers[key] = local
        return self.numbers[key]

    def read(self, path: Path, scopes: list[str]) -> str:
        """A formula's read of a record field, shared by every formula of the block that reads it."""
        code = self.access(path, scopes)
        base = scopes[0] if path.scope == "root" else scopes[-1 - path.up] if path.scope != "target" else ""
        if code.isidentifier() or self.guarded or base not in self.dict_vars or base in self.item_records:
            return code
        return self.value_once(code)

    def value_once(self, code: str) -> str:
        """A formula part (pure code) computed once per block; outside `when` branches only, as above."""
        if self.guarded:
            return code
        key = (self.block, "", (code,))
        if key not in self.numbers:
            local = self.code.fresh("_c")
            self.code.line(f"{local} = {code}")
            self.numbers[key] = local
        return self.numbers[key]

    def holds_records(self, path: Path, item: str) -> None:
        """Items of a list this mapping built with `each` are dicts: read them without type checks."""
        if path.scope == "target" and len(path.steps) == 1 and str(path.steps[0]) in self.each_specs:
            self.dict_vars.add(item)
            self.item_records.add(item)
            self.each_fields[item] = {
                child.name: child for child in self.each_specs[str(path.steps[0])].fields
            }

    # -- reading source paths -------------------------------------------------------------------

    def access(self, path: Path, scopes: list[str], iterable: bool = False) -> str:
        if path.scope == "target":
            base = self.target_vars[str(path.steps[0])]
            steps = path.steps[1:]
            return self._steps(base, steps, known_dict=False, iterable=iterable)
        if path.scope == "root":
            base = scopes[0]
        elif path.scope == "parent":
            base = scopes[-1 - path.up]
        else:
            base = scopes[-1]
        return self._steps(base, path.steps, known_dict=base in self.dict_vars, iterable=iterable)

    def _steps(self, code: str, steps: tuple[Any, ...], known_dict: bool, iterable: bool = False) -> str:
        """`iterable`: the code is a comprehension's iterable (a sum's list), where Python allows no `:=`."""
        for pos, step in enumerate(steps):
            if step == WILDCARD:
                return f"_walk({code}, {self.code.hoist(tuple(steps[pos:]))})"
            if (
                pos == 0
                and known_dict
                and isinstance(step, str)
                and code in self.prefetch
                and self.prefetching
            ):
                # A field of the record or of the list item: the local it was read into once.
                reads = self.prefetch[code]
                if step not in reads:
                    reads[step] = self.code.fresh("_f")
                code = reads[step]
            elif isinstance(step, int):
                code = f"_index({code}, {step!r})"
            elif known_dict:
                code = f"{code}.get({step!r})"
            elif iterable:
                code = f"_get({code}, {step!r})"
            else:
                # The walrus keeps one evaluation of the inner step while checking its type.
                code = f"(_t.get({step!r}) if (_t := {code}).__class__ is dict else _get(_t, {step!r}))"
            known_dict = False
        return code

    # -- fields ---------------------------------------------------------------------------------

    def is_simple(self, field: FieldSpec) -> bool:
        """A plain copy of one path: it cannot fail, so it goes straight into the output dict."""
        return (
            len(field.sources) == 1
            and not field.sources[0].has_wildcard
            and field.sources[0].scope != "target"
            and field.each is None
            and not field.is_object
            and field.when is None
            and not (field.split or field.join or field.value_map or field.lookup or field.fn)
            and field.type is None
            and not (field.has_default or field.required or field.max_length)
        )

    def field_value(self, field: FieldSpec, scopes: list[str], where: str) -> str:
        """Emit the statements for one field; return the expression that holds its value."""
        if self.is_simple(field):
            return self.optimistic(self.access(field.sources[0], scopes), field.sources[0], scopes)
        if field.has_const and self.is_constant(field):
            return self.constant(field.const)
        if self.is_read_with_default(field):
            # A copy with a fallback cannot fail either: one expression, straight into the output.
            reads = [self.access(path, scopes) for path in field.sources]
            value = reads[0] if len(reads) == 1 else self.present_or(reads[0], reads[1])
            default = self.constant(field.default)
            if value.isidentifier():
                return f"({value} if {value} is not None else {default})"
            temp = self.code.fresh("_e")
            expr = f"({temp} if ({temp} := {{}}) is not None else {default})"
            if len(reads) == 1:
                self.optimistic(reads[0], field.sources[0], scopes)
                if reads[0] in self.subscripts:
                    self.subscripts[expr.format(reads[0])] = expr.format(self.subscripts[reads[0]])
            return expr.format(value)
        var = self.code.fresh("_v")
        self.code.line("try:")
        self.code.depth += 1
        if field.when is not None:
            self.code.line(f"if {self.formulas.condition(field.when, scopes)}:")
            self.code.depth += 1
            self.guarded += 1
        self.pipeline(field, scopes, var, where)
        if field.when is not None:
            self.guarded -= 1
            self.code.depth -= 1
            self.code.line("else:")
            self.code.line(f"    {var} = None")
        self.code.depth -= 1
        self.code.line("except _MappingError:")
        self.code.line("    raise")
        self.code.line("except Exception as _x:")
        self.code.line(f"    raise _failure(_key, {RECORD}0, {where}, _x) from None")
        return var

    def begin_prefetch(self, base: str) -> None:
        """The block of `base` (a plain dict) starts here: its field reads are written here at the end."""
        self.prefetch[base] = {}
        self.prefetch_slots.append((len(self.code.lines), self.code.depth, base))

    def prefetch_lines(self) -> None:
        """Write each block's reads where it starts. Vendors send every field, so the reads subscript
        (`r['x']`, cheaper than `r.get('x')`, all at once with an itemgetter); a record without one of the
        keys reads them all with .get."""
        for position, depth, base in reversed(self.prefetch_slots):
            reads = self.prefetch[base]
            pad = "    " * depth
            if not reads:  # a block that reads nothing of its record (constants, `fn: [now]`)
                continue
            if len(reads) == 1:
                ((key, local),) = reads.items()
                lines = [f"{pad}{local} = {base}.get({key!r})"]
            else:
                # One itemgetter call for all the keys: the same subscripts, without a bytecode round
                # trip for each of them.
                getter = self.code.hoist(operator.itemgetter(*reads))
                lines = [f"{pad}try:"]
                lines += [f"{pad}    {', '.join(reads.values())} = {getter}({base})"]
                lines += [f"{pad}except KeyError:"]
                lines += [f"{pad}    {local} = {base}.get({key!r})" for key, local in reads.items()]
            self.code.lines[position:position] = lines

    def optimistic(self, read: str, path: Path, scopes: list[str]) -> str:
        """Note the subscript form of a one-step read of a dict (`r.get('x')` -> `r['x']`) for emit_record."""
        base = scopes[0] if path.scope == "root" else scopes[-1 - path.up] if path.scope != "target" else ""
        step = path.steps[0] if len(path.steps) == 1 else None
        if isinstance(step, str) and base in self.dict_vars and read == f"{base}.get({step!r})":
            self.subscripts[read] = f"{base}[{step!r}]"
        return read

    def is_read_with_default(self, field: FieldSpec) -> bool:
        """One or two plain paths (the first present wins) and a default, nothing else."""
        plain = [path for path in field.sources if not path.has_wildcard and path.scope != "target"]
        return (
            field.has_default
            and 1 <= len(plain) == len(field.sources) <= 2
            and field.type is None
            and field.when is None
            and not (field.split or field.join or field.value_map or field.lookup or field.fn)
            and not (field.required or field.max_length or field.each or field.is_object)
        )

    def constant(self, value: Any) -> str:
        """A constant; lists and dicts are copied per record so one output cannot change another."""
        name = self.code.hoist(value)
        if isinstance(value, list | dict):
            return f"_copy({name})"
        return name

    def is_constant(self, field: FieldSpec) -> bool:
        return field.when is None and not (
            field.split or field.join or field.value_map or field.lookup or field.fn
        )

    def pipeline(self, field: FieldSpec, scopes: list[str], var: str, where: str) -> None:
        line = self.code.line
        line(f"{var} = {self.source(field, scopes, where)}")
        if field.each is not None or field.is_object:
            return
        calls = list(field.fn)
        if field.split and calls and calls[0].name == "first" and not calls[0].args:
            # The first part of a text is its text up to the separator, unless that part is empty.
            part = self.code.fresh("_p")
            line(f"if {var}.__class__ is str and ({part} := {var}.partition({field.split!r})[0].strip()):")
            line(f"    {var} = {part}")
            line("else:")
            first = self.code.hoist(functions.build("first", []))
            line(f"    {var} = {first}(_split({var}, {field.split!r}))")
            calls = calls[1:]
        elif field.split:
            # One part, the usual case, inline as runtime.split answers it: the trimmed text, if any.
            part = self.code.fresh("_p")
            line(f"if {var}.__class__ is str and {field.split!r} not in {var}:")
            line(f"    {var} = [{part}] if ({part} := {var}.strip()) else []")
            line("else:")
            line(f"    {var} = _split({var}, {field.split!r})")
        for call in calls:
            line(f"{var} = {self.code.hoist(functions.build(call.name, list(call.args)))}({var})")
        if field.value_map is not None or field.lookup is not None:
            self.translate(field, var)
        if field.join:
            line(f"{var} = _join({var}, {field.join!r})")
        memo: dict[str, Any] = {}
        convert = coercer(field, memo)
        if self.decimal_from_formula(field):
            # A formula's number is a finite Decimal already: quantize and write it, no call needed.
            # Zero, the commonest amount of all (no adjustment, no discount), is written out at once;
            # the quantized Decimal stays at hand for sums over these items (see fusable_sums).
            step = quantum(field.scale or 0)
            zero = Decimal(0).quantize(step, ROUND_HALF_UP)
            exact = self.code.fresh("_q")
            # A result that rounds to zero is zero without a sign (-0.001 is "0.00", never "-0.00").
            line(f"if {var} and ({exact} := {var}.quantize({self.code.hoist(step)}, _ROUND_HALF_UP)):")
            line(f"    {var} = str({exact})")
            line("else:")
            line(f"    {exact} = {self.code.hoist(zero)}")
            line(f"    {var} = {self.code.hoist(str(zero))}")
            self.quantized[var] = exact
            self.zeros[exact] = self.code.hoist(zero)
        elif field.type == "string":
            line(f"if {var}.__class__ is not str and {var} is not None:")
            line(f"    {var} = _to_text({var})")
        elif field.type == "decimal" and field.expr is None and (field.output or "string") == "string":
            memo_name, found = self.code.hoist(memo), self.code.fresh("_m")
            line(f"if {var}.__class__ is str and ({found} := {memo_name}.get({var})) is not None:")
            line(f"    {var} = {found}")
            line("else:")
            line(f"    {var} = {self.code.hoist(convert)}({var})")
            # What the memo gives is a decimal text already: only a value worked out anew can be
            # missing, so the default and the required check go with it.
            self.code.depth += 1
            self.finish(field, var)
            self.code.depth -= 1
            if field.max_length:
                self.check_length(field, var)
            return
        elif field.type == "datetime" and (shape := self.same_text(field)) is not None:
            # Vendor time in, the same vendor time out: a valid text is the answer, checked inline.
            length, separator = shape
            # Every separator in its place: fromisoformat alone also takes other shapes of the same
            # length ('2000-01-01 00-00:00' is midnight at offset -00:00), which the pattern does not.
            # The separators sit at positions 4, 7, 10, 13 and 16: one slice of every third character.
            separators = ("--" + separator + "::") if separator else "--"
            check = f"{var}.__class__ is str and len({var}) == {length!r} and {var}[_SEP] == {separators!r}"
            line(f"if {check}:")
            # A vendor zero date of the shape is no value, as the coercion reads it, without the cost
            # of fromisoformat's refusal.
            line(f"    if {var} in _ZERO_DATES:")
            line(f"        {var} = None")
            line("    else:")
            line("        try:")
            line(f"            _fromisoformat({var})")
            line("        except ValueError:")
            line(f"            {var} = {self.code.hoist(convert)}({var})")
            line("else:")
            line(f"    {var} = {self.code.hoist(convert)}({var})")
        elif field.type == "datetime" and (shortcut := self.vendor_time(field)) is not None:
            self.vendor_time_to_rfc3339(shortcut, var, self.code.hoist(convert))
        elif field.type == "int":
            # Vendors send whole numbers as plain digits, often with zero places ("4.0000"): the digits
            # before the point are the number. Anything else (signs, blanks, places that are not zeros,
            # more than MAX_DIGITS digits, other types) takes the coercion and its errors.
            parts = self.code.fresh("_p")
            whole = f"{parts}[0]"
            line(
                f"if {var}.__class__ is str and ({parts} := {var}.partition('.'))[0].isdigit() and "
                f"{whole}.isascii() and len({whole}) <= {coerce.MAX_DIGITS!r} and not {parts}[2].strip('0'):"
            )
            number = f"int({whole})"
            line(f"    {var} = {f'str({number})' if field.output == 'string' else number}")
            line("else:")
            line(f"    {var} = {self.code.hoist(convert)}({var})")
        elif convert is not None:
            line(f"{var} = {self.code.hoist(convert)}({var})")
        self.finish(field, var)
        if field.max_length:
            self.check_length(field, var)

    def finish(self, field: FieldSpec, var: str) -> None:
        """The last steps: the default, then the required check."""
        line = self.code.line
        if field.has_default and field.default is not None:
            line(f"if {var} is None:")
            line(f"    {var} = {self.constant(field.default)}")
        if field.required:
            sources = ", ".join(path.text for path in field.sources)
            hint = f" (looked at: {sources})" if sources else ""
            line(f"if {var} is None or {var} == '':")
            line(f"    raise _missing({hint!r})")

    def check_length(self, field: FieldSpec, var: str) -> None:
        limit = field.max_length
        other = f"{var} is not None and len(_text({var})) > {limit!r}"
        self.code.line(f"if (len({var}) > {limit!r} if {var}.__class__ is str else {other}):")
        self.code.line(f"    _check_length({var}, {limit!r})")

    def present_or(self, first: str, fallback: str) -> str:
        """`first` if it is present, else `fallback`: text, the usual case, is checked inline."""
        if first.isidentifier():
            temp, assign = first, first
        else:
            temp = self.code.fresh("_e")
            assign = f"({temp} := {first})"
        quick = f"{assign}.__class__ is str and {temp} and {temp} not in _ZERO_DATES"
        return f"({temp} if {quick} or _present({temp}) else {fallback})"

    @staticmethod
    def same_text(field: FieldSpec) -> tuple[int, str] | None:
        output = field.output or coerce.RFC3339
        return coerce.same_text_shape(field.format, field.tz, output, field.output_tz or field.tz)

    @staticmethod
    def vendor_time(field: FieldSpec) -> coerce.VendorTime | None:
        output = field.output or coerce.RFC3339
        return coerce.vendor_time(field.format, field.tz, output, field.output_tz or field.tz)

    def vendor_time_to_rfc3339(self, shortcut: coerce.VendorTime, var: str, convert: str) -> None:
        """make_datetime's vendor time -> RFC 3339 shortcut, inline: a text of the shape that fromisoformat
        reads is its own digits plus its offset's suffix; everything else goes to the coercion."""
        line = self.code.line
        moment, suffix = self.code.fresh("_t"), self.code.fresh("_s")
        suffixes, utcoffset = self.code.hoist(shortcut.suffixes), self.code.hoist(shortcut.utcoffset)
        suffix_of = self.code.hoist(shortcut.suffix_of)
        line(f"if {var}.__class__ is str and len({var}) == 19 and {var}[_SEP] == {shortcut.separators!r}:")
        # A vendor zero date (unshipped, cash on delivery) is no value, without fromisoformat's refusal.
        line(f"    if {var} in _ZERO_DATES:")
        line(f"        {var} = None")
        line("    else:")
        line("        try:")
        line(f"            {moment} = _fromisoformat({var})")
        line("        except ValueError:")
        line(f"            {var} = {convert}({var})")  # words the error
        line("        else:")
        line(f"            if ({suffix} := {suffixes}.get({utcoffset}({moment}))) is None:")
        line(f"                {suffix} = {suffix_of}({moment}, {var})")
        text = var if shortcut.iso_already else f"{var}.replace(' ', 'T', 1)"
        line(f"            {var} = {text} + {suffix}")
        line("else:")
        line(f"    {var} = {convert}({var})")

    @staticmethod
    def decimal_from_formula(field: FieldSpec) -> bool:
        return (
            field.expr is not None
            and kind_of(field.expr.tree) == NUM
            and field.type == "decimal"
            and (field.output or "string") == "string"
            and field.scale is not None
            and field.scale <= 6  # str() writes plain digits down to 6 places
            and not (field.split or field.fn or field.value_map or field.lookup or field.join)
        )

    def translate(self, field: FieldSpec, var: str) -> None:
        if field.value_map is not None:
            table, label = field.value_map, "the value map"
        else:
            name = field.lookup or ""
            table, label = self.tables[name], f"table '{name}'"
        unknown = field.on_unknown
        refuse = f", {self.code.hoist(field.refuse)}" if field.refuse else ""
        if field.split or any(path.has_wildcard for path in field.sources):
            self.code.line(
                f"{var} = _translate({var}, {self.code.hoist(table)}, {unknown!r}, {label!r}{refuse})"
            )
            return
        # Inline for the common single value: a dict probe, with the rarer cases left to the helper.
        table_name = self.code.hoist(table)
        found = self.code.fresh("_m")
        self.code.line(f"if {var} is not None:")
        self.code.line(
            f"    {found} = {table_name}.get({var} if {var}.__class__ is str else _text({var}), _MISS)"
        )
        if unknown == "error" or refuse:
            missed = f"_translate({var}, {table_name}, {unknown!r}, {label!r}{refuse})"
        elif unknown == "keep":
            missed = f"(None if {var} == '' else {var})"
        else:
            missed = "None"
        self.code.line(f"    {var} = {missed} if {found} is _MISS else {found}")

    def source(self, field: FieldSpec, scopes: list[str], where: str) -> str:
        if field.is_object:
            return self.nested(field, scopes, where)
        if field.sources:
            reads = [self.access(path, scopes) for path in field.sources]
            if len(reads) == 2:
                return self.present_or(reads[0], reads[1])
            return reads[0] if len(reads) == 1 else f"_coalesce({', '.join(reads)})"
        if field.has_const:
            return self.constant(field.const)
        if field.template:
            pieces = []
            for part in field.template:
                if part.text:
                    pieces.append(repr(part.text))
                if part.path is not None:
                    pieces.append(f"_text({self.access(part.path, scopes)})")
            return " + ".join(pieces) or "''"
        if field.concat:
            joined = ", ".join(f"_text({self.access(path, scopes)})" for path in field.concat)
            return f"{field.sep!r}.join([_p for _p in ({joined},) if _p])"
        if field.expr is not None:
            return self.formulas.value(field.expr, scopes)[0]
        if field.each is not None:
            return self.each(field, scopes, where)
        return "None"

    def each(self, field: FieldSpec, scopes: list[str], where: str) -> str:
        assert field.each is not None
        out = self.code.fresh("_l")
        item = self.code.fresh("_it")
        position = self.code.fresh("_n")
        self.code.line(f"{out} = []")
        once = {child.name: self.code.fresh("_once") for child in field.fields if _same_for_every_item(child)}
        # Every `once` field is worked out at the first item, the last of them after the others.
        last_once = next(reversed(once), None)
        template: dict[str, Any] = {}  # the items' template, filled in by emit_record
        shared = self.code.fresh("_tpl") if once else None
        for local in once.values():
            self.code.line(f"{local} = _MISS")
        sums = self.fused.get(field.name, []) if scopes == [RECORD] else []
        totals = [self.code.fresh("_sum") for _ in sums]
        for total in totals:
            self.code.line(f"{total} = _ZERO")
        items = f"_items({self.access(field.each, scopes)})"
        if field.filter is None:
            # Without a filter an item's position is the count of items already mapped, so the loop
            # needs no counter: the position is only worked out if a field of the item fails.
            self.code.line(f"for {item} in {items}:")
            item_where = f"{where} + '[%d].' % len({out})"
        else:
            self.code.line(f"for {position}, {item} in enumerate({items}):")
            item_where = f"{where} + '[%d].' % {position}"
        self.code.depth += 1
        outer_block, self.block = self.block, next(self.blocks)
        self.code.line(f"if {item}.__class__ is not dict:")
        self.code.line(f"    {item} = _as_item({item})")
        self.dict_vars.add(item)
        self.begin_prefetch(item)
        inner = [*scopes, item]
        if field.filter is not None:
            self.code.line(f"if not {self.formulas.condition(field.filter, inner)}:")
            self.code.line("    continue")
        values = []
        for child in field.fields:
            child_where = f"{item_where} + {child.name!r}"
            if child.name not in once:
                values.append((child.name, self.field_value(child, inner, child_where)))
                continue
            # A field that reads nothing of the item is the same for every item: work it out for the
            # first one only (not before the loop, so an empty list still cannot fail on it).
            local = once[child.name]
            self.code.line(f"if {local} is _MISS:")
            self.code.depth += 1
            self.guarded += 1
            self.code.line(f"{local} = {self.field_value(child, inner, child_where)}")
            self.guarded -= 1
            if child.name == last_once and shared is not None:
                # Every field that is the same for every item is known now, at the first item: they go
                # into a copy of the items' template once, instead of into each item.
                self.code.line(f"{shared} = {self.code.hoist(template)}.copy()")
                for name, value in once.items():
                    self.code.line(f"{shared}[{name!r}] = {value}")
            self.code.depth -= 1
            values.append((child.name, local))
        record = self.code.fresh("_r")
        self.emit_record(values, f"{record} = ", template, shared, frozenset(once))
        self.code.line(f"{out}.append({record})")
        if sums:
            by_name = {child.name: child for child in field.fields}
            # (A field worked out for the first item only has its value, not that item's Decimal.)
            self.fused_items[record] = {
                name: self.own_decimal(by_name[name], expr, exact=name not in once)
                for name, expr in values
                if _own_decimal_text(by_name[name], any_output=True)
            }
            same = self.same_as_read(
                item, [(by_name[name], expr) for name, expr in values if name not in once]
            )
            for (node, _names), total in zip(sums, totals, strict=True):
                self.fused_terms(node, [*scopes, record], total, same)
                self.fused_ready[id(node)] = total
        self.code.depth -= 1
        self.block = outer_block
        return out

    def same_as_read(self, item: str, fields: list[tuple[FieldSpec, str]]) -> dict[str, tuple[str, str, str]]:
        """The item's decimal text fields that are a plain conversion of one field of the source item
        whose Decimal this block has already read for a formula: field -> (its value, the source value,
        that Decimal). When the value is the source text itself (the vendor wrote it at the scale), its
        Decimal is that Decimal, digit for digit."""
        same: dict[str, tuple[str, str, str]] = {}
        for field, value in fields:
            source = field.sources[0] if len(field.sources) == 1 else None
            if (
                source is None
                or not _own_decimal_text(field)
                or field.expr is not None
                or field.when is not None
                or source.scope != "self"
                or len(source.steps) != 1
                or not isinstance(source.steps[0], str)
                or field.split
                or field.fn
                or field.value_map
                or field.lookup
                or field.join
            ):
                continue
            read = self.prefetch.get(item, {}).get(source.steps[0])
            number = self.numbers.get((self.block, item, (source.scope, source.up, *source.steps)))
            if read is not None and number is not None:
                same[field.name] = (value, read, number)
        return same

    def reused_product(self, term: ast.expr, same: dict[str, tuple[str, str, str]]) -> tuple[str, str] | None:
        """`price * num` of two such fields (see same_as_read) whose source Decimals a formula of the item
        multiplied already: that product when both values are their source texts."""
        if not (isinstance(term, ast.BinOp) and isinstance(term.op, ast.Mult)):
            return None
        names = [_item_field(side) for side in (term.left, term.right)]
        if names[0] not in same or names[1] not in same:
            return None
        (left, left_read, left_number), (right, right_read, right_number) = same[names[0]], same[names[1]]
        for pair in (f"({left_number} * {right_number})", f"({right_number} * {left_number})"):
            product = self.numbers.get((self.block, "", (pair,)))
            if product is not None:
                return f"{left} == {left_read} and {right} == {right_read}", product
        return None

    def fused_terms(
        self, node: ast.Call, scopes: list[str], total: str, same: dict[str, tuple[str, str, str]]
    ) -> None:
        """Add one item's sum body to `total`, term by term, in the body's order.

        A term that is a rounded formula field of the item and zero, the usual adjustment or discount, is
        not added: adding an exact zero keeps the value and can only change the exponent, which the
        rounding of a value-only total (see value_only) undoes. A product a formula of the item worked
        out already from the same digits is not worked out again (see reused_product)."""
        body = node.args[1]
        terms = _terms(body)
        zeros = {
            position: self.zeros[code]
            for position, (_sign, term) in enumerate(terms)
            if position
            and isinstance(term, ast.Name)
            and (code := self.formulas.fused_body(term, scopes)) in self.zeros
        }
        if id(node) not in self.value_only:
            zeros = {}
        products = {
            position: reused
            for position, (_sign, term) in enumerate(terms)
            if (reused := self.reused_product(term, same))
        }
        if not zeros and not products:
            self.code.line(f"{total} = {total} + {self.formulas.fused_body(body, scopes)}")
            return
        item = self.code.fresh("_x")
        for position, (sign, term) in enumerate(terms):
            code = self.formulas.fused_body(term, scopes)
            if position in products:
                check, product = products[position]
                code = f"({product} if {check} else {code})"
            if not position:
                self.code.line(f"{item} = {code}")  # the first term has no sign of its own
            elif position in zeros:
                self.code.line(f"if {code} is not {zeros[position]}:")
                self.code.line(f"    {item} = {item} {sign} {code}")
            else:
                self.code.line(f"{item} = {item} {sign} {code}")
        self.code.line(f"{total} = {total} + {item}")

    def nested(self, field: FieldSpec, scopes: list[str], where: str) -> str:
        """A nested object: its fields read the same record, or the sub-record named by `from`."""
        inner = scopes
        if field.sources:
            sub = self.code.fresh("_o")
            self.code.line(f"{sub} = {self.access(field.sources[0], scopes)}")
            self.code.line(f"if {sub}.__class__ is not dict:")
            self.code.line(f"    {sub} = _as_item({sub})")
            self.dict_vars.add(sub)
            inner = [*scopes, sub]
        values = [
            (child.name, self.field_value(child, inner, f"{where} + {'.' + child.name!r}"))
            for child in field.fields
        ]
        return self.record(values)

    def record(self, values: list[tuple[str, str]], optimistic: bool = False) -> str:
        """The output dict's literal; `optimistic` reads present keys by subscript (see emit_record)."""
        swap = self.subscripts if optimistic else {}
        body = "{" + ", ".join(f"{name!r}: {swap.get(expr, expr)}" for name, expr in values) + "}"
        if self.spec.omit_none:
            return f"{{_a: _b for _a, _b in {body}.items() if _b is not None}}"
        return body

    def emit_record(
        self,
        values: list[tuple[str, str]],
        use: str,
        template: dict[str, Any] | None = None,
        shared: str | None = None,
        preset: frozenset[str] = frozenset(),
    ) -> None:
        """Emit `use` + the record. Reads of the record and list items are locals already; any other
        read of a dict tries `r['x']` (faster than `r.get('x')`) and, if a key is missing after all,
        builds the same record with `.get`.

        `template` (filled in here) and `shared`: a list item's fields named in `preset` are the same for
        every item, and `shared` names a copy of the template holding them, made once per list."""
        plain = self.record(values)
        fast = self.record(values, optimistic=True)
        if fast == plain and not self.spec.omit_none:
            # Copying a template that holds the keys in order, and the constants, then setting the
            # other values is cheaper than building a dict of this size from a literal.
            template = {} if template is None else template
            varying = []
            for name, expr in values:
                value = self.code.namespace.get(expr, _VARYING) if expr.startswith("_k") else _VARYING
                if value is not _VARYING and isinstance(value, _IMMUTABLE):
                    template[name] = value
                else:
                    template[name] = None
                    if shared is None or name not in preset:
                        varying.append((name, expr))
            # An assignment builds the dict in its target; a return needs a name.
            out = use[:-3] if use.endswith(" = ") else self.code.fresh("_o")
            self.code.line(f"{out} = {shared if shared is not None else self.code.hoist(template)}.copy()")
            for name, expr in varying:
                self.code.line(f"{out}[{name!r}] = {expr}")
            if out != use[:-3]:
                self.code.line(f"{use}{out}")
            return
        if fast == plain:
            self.code.line(f"{use}{plain}")
            return
        self.code.line("try:")
        self.code.line(f"    {use}{fast}")
        self.code.line("except KeyError:")
        self.code.line(f"    {use}{plain}")

    # -- the whole function ---------------------------------------------------------------------

    def generate(self) -> str:
        code = self.code
        code.depth = 0
        code.line(f"def _map({RECORD}):")
        code.depth = 1
        code.line(f"{RECORD}0 = {RECORD}")
        code.line(f"if {RECORD}.__class__ is not dict:")
        code.line("    try:")
        code.line(f"        {RECORD} = _as_record({RECORD})")
        code.line("    except Exception as _x:")
        code.line(f"        raise _failure(_key, {RECORD}0, None, _x) from None")
        self.begin_prefetch(RECORD)
        values: dict[str, str] = {}
        for field in self.order:
            expr = self.field_value(field, [RECORD], repr(field.name))
            if field.name in self.read_by_target and not expr.isidentifier():
                var = code.fresh("_v")
                code.line(f"{var} = {expr}")
                expr = var
            self.target_vars[field.name] = expr
            values[field.name] = expr
        self.emit_record([(field.name, values[field.name]) for field in self.spec.fields], "return ")
        self.prefetch_lines()
        code.depth = 0
        self.prefetching = False
        key = self.access(self.spec.key, [RECORD]) if self.spec.key is not None else "None"
        code.line("")
        code.line(f"def _key({RECORD}):")
        code.line(f"    if {RECORD}.__class__ is not dict:")
        code.line("        return None")
        code.line(f"    return {key}")
        return "\n".join(code.lines) + "\n"


def _own_decimal_text(field: FieldSpec, any_output: bool = False) -> bool:
    """A decimal field this mapping writes at a fixed scale (as text, unless `any_output`)."""
    return (
        field.type == "decimal"
        and field.scale is not None
        and field.each is None
        and not field.is_object
        and (any_output or (field.output or "string") == "string")
    )


def _item_field(node: ast.expr) -> str | None:
    """The name of the list item's own field a formula name reads (`price`), if it is one."""
    path = path_of(node) if isinstance(node, ast.Name) else None
    if path is None or path.scope != "self" or len(path.steps) != 1:
        return None
    return str(path.steps[0])


def _terms(node: ast.expr) -> list[tuple[str, ast.expr]]:
    """`a + b - c` as its terms in order, [("+", a), ("+", b), ("-", c)]: left to right, as evaluated."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        return [*_terms(node.left), ("+" if isinstance(node.op, ast.Add) else "-", node.right)]
    return [("+", node)]


def _through_arithmetic(root: ast.expr, target: ast.expr) -> bool:
    """Whether `target` reaches the formula's result `root` through + - * and signs only: then the
    result's value depends on `target`'s value alone, not on how its digits are written (1.5, 1.50)."""
    if root is target:
        return True
    if isinstance(root, ast.BinOp) and isinstance(root.op, ast.Add | ast.Sub | ast.Mult):
        return _through_arithmetic(root.left, target) or _through_arithmetic(root.right, target)
    if isinstance(root, ast.UnaryOp) and isinstance(root.op, ast.USub | ast.UAdd):
        return _through_arithmetic(root.operand, target)
    return False


def _same_for_every_item(field: FieldSpec) -> bool:
    """Whether a list item's field reads only outside the item ($parent, $root, $target) and no clock."""
    if field.each is not None or field.is_object or field.has_const:
        return False
    if any(call.name in functions.SOURCES for call in field.fn):
        return False
    paths = _all_paths((field,))
    return bool(paths) and all(path.scope != "self" for path in paths)


def _all_paths(fields: tuple[FieldSpec, ...]) -> list[Path]:
    paths: list[Path] = []
    for field in fields:
        paths.extend(field.sources)
        paths.extend(field.concat)
        paths.extend(part.path for part in field.template if part.path is not None)
        for formula in (field.expr, field.when, field.filter):
            if formula is not None:
                paths.extend(ref.path for ref in formula.references)
                paths.extend(listed for ref in formula.references for listed in ref.within)
        paths.extend(_all_paths(field.fields))
    return paths


def generate(
    spec: MappingSpec, tables: dict[str, dict[str, Any]], order: list[FieldSpec]
) -> tuple[str, dict[str, Any]]:
    """The Python source of `_map(record) -> dict` and `_key(record)`, and the namespace they run in."""
    generator = _Generator(spec, tables, order)
    source = generator.generate()
    return source, generator.code.namespace


def build(
    spec: MappingSpec, tables: dict[str, dict[str, Any]], order: list[FieldSpec]
) -> tuple[Callable[[Any], dict[str, Any]], Callable[[Any], Any], str]:
    """Compile the spec once; returns the mapping function, the key reader and the generated source."""
    source, namespace = generate(spec, tables, order)
    compiled = compile(source, f"<mapping {spec.name}>", "exec")
    exec(compiled, namespace)  # the source is generated above from a checked spec, never taken from a user
    return namespace["_map"], namespace["_key"], source
