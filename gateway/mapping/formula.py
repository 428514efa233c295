"""Formulas (`expr:`, `when:`, `filter:`): parsed once with Python's `ast` under a strict whitelist.

Names in a formula are source paths; arithmetic runs on decimal.Decimal; nothing is evaluated at load time.
"""

from __future__ import annotations

import ast
import re
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from gateway.mapping.paths import Path, PathSyntaxError, parse_path

FUNCTION_HELP = "sum(list, formula), count(list), min, max, abs, round(x, places), coalesce(a, b, ...)"
_FUNCTIONS = {"sum", "count", "min", "max", "abs", "round", "coalesce"}
_ARITH = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%"}
_ORDER = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_SCOPES = {"__parent__": "$parent", "__root__": "$root", "__target__": "$target"}
_DOLLAR = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|\$(parent|root|target)\b""")


class FormulaError(ValueError):
    """A formula that cannot be used; the message says why in the spec author's terms."""


class Reference(msgspec.Struct, frozen=True):
    """A source path a formula reads, with the lists (`sum(list, ...)`) it sits inside, outermost first."""

    path: Path
    within: tuple[Path, ...] = ()
    is_list: bool = False  # the list named by sum()/count(), as opposed to a single value


class Formula(msgspec.Struct, frozen=True):
    text: str
    tree: Any  # ast.expr, checked against the whitelist
    references: tuple[Reference, ...]


def _desugar(text: str) -> str:
    """`$parent.x` is not Python; rename the markers to identifiers, leaving quoted text alone."""
    return _DOLLAR.sub(lambda m: m.group(1) or f"__{m.group(2)}__", text)


def _dunder(node: ast.Attribute | ast.Name) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else node.id
    return name.startswith("__") and name.endswith("__") and name not in _SCOPES


def _path_of(node: ast.expr) -> Path | None:
    """The source path a Name/Attribute/Subscript chain spells, or None if it is not such a chain."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute | ast.Name) and _dunder(node):
            raise FormulaError("names that start and end with '__' are not field names and are not allowed")
        if isinstance(node, ast.Attribute):
            parts.append("." + node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript):
            index = node.slice
            if not (isinstance(index, ast.Constant) and type(index.value) is int):
                return None
            parts.append(f"[{index.value}]")
            node = node.value
        elif isinstance(node, ast.Name):
            parts.append(_SCOPES.get(node.id, node.id))
            break
        else:
            return None
    text = "".join(reversed(parts))
    try:
        return parse_path(text)
    except PathSyntaxError as exc:
        raise FormulaError(str(exc)) from None


def kind_of(node: ast.expr) -> str:
    """What a formula part gives (number, text, yes/no or anything), known without emitting it."""
    if isinstance(node, ast.Constant):
        value = node.value
        if type(value) is bool:
            return BOOL
        return NUM if type(value) in (int, float) else TEXT if isinstance(value, str) else ANY
    if isinstance(node, ast.BinOp):
        text = isinstance(node.op, ast.Add) and TEXT in (kind_of(node.left), kind_of(node.right))
        return TEXT if text else NUM
    if isinstance(node, ast.UnaryOp):
        return BOOL if isinstance(node.op, ast.Not) else NUM
    if isinstance(node, ast.Compare):
        return BOOL
    if isinstance(node, ast.BoolOp | ast.IfExp) or (
        isinstance(node, ast.Call) and _called(node) == "coalesce"
    ):
        parts = (
            node.values
            if isinstance(node, ast.BoolOp)
            else [node.body, node.orelse]
            if isinstance(node, ast.IfExp)
            else node.args
        )
        kinds = {kind_of(part) for part in parts}
        return kinds.pop() if len(kinds) == 1 else ANY
    return NUM if isinstance(node, ast.Call) else ANY


def _is_number(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _called(node: ast.Call) -> str:
    return node.func.id if isinstance(node.func, ast.Name) else ""


def _present(temp: str, code: str) -> str:
    """Code testing that `code` (kept in `temp`) is present; text, the usual case, is checked inline."""
    if code == temp:
        return f"({temp}.__class__ is str and {temp} and {temp} not in _ZERO_DATES or _present({temp}))"
    return (
        f"(({temp} := {code}).__class__ is str and {temp} and {temp} not in _ZERO_DATES or _present({temp}))"
    )


def _describe(node: ast.AST) -> str:
    try:
        return f"'{ast.unparse(node)}'"
    except Exception:
        return type(node).__name__


class _Checker:
    """Walks a parsed formula, refusing anything outside the whitelist and collecting source paths."""

    def __init__(self) -> None:
        self.references: list[Reference] = []

    def check(self, node: ast.expr, within: tuple[Path, ...]) -> None:
        if isinstance(node, ast.Constant):
            if node.value is not None and type(node.value) not in (str, int, float, bool):
                raise FormulaError(f"{_describe(node)} is not a number or a text in quotes")
        elif isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
            path = _path_of(node)
            if path is None:
                raise FormulaError(
                    f"{_describe(node)} is not a field name; "
                    "list positions must be whole numbers, e.g. lines[0].price"
                )
            self.references.append(Reference(path, within))
        elif isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
            self.check(node.left, within)
            self.check(node.right, within)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
            self.check(node.operand, within)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self.check(value, within)
        elif isinstance(node, ast.Compare):
            self._check_compare(node, within)
        elif isinstance(node, ast.IfExp):
            for part in (node.test, node.body, node.orelse):
                self.check(part, within)
        elif isinstance(node, ast.Call):
            self._check_call(node, within)
        else:
            raise FormulaError(
                f"{_describe(node)} is not allowed in a formula; use field names, numbers, text in quotes, "
                "+ - * / %, comparisons, and/or/not, 'x if condition else y' and the functions "
                + FUNCTION_HELP
            )

    def _check_compare(self, node: ast.Compare, within: tuple[Path, ...]) -> None:
        self.check(node.left, within)
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                if not isinstance(right, ast.Tuple | ast.List) or not all(
                    isinstance(item, ast.Constant) and type(item.value) in (str, int, float)
                    for item in right.elts
                ):
                    raise FormulaError(
                        "after 'in' give a list of values in parentheses, e.g. status in ('95', '110')"
                    )
            elif isinstance(op, ast.Is | ast.IsNot):
                raise FormulaError("use == and != to compare (not 'is')")
            else:
                self.check(right, within)

    def _check_call(self, node: ast.Call, within: tuple[Path, ...]) -> None:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in _FUNCTIONS or node.keywords:
            raise FormulaError(f"{_describe(node.func)} is not a formula function; use {FUNCTION_HELP}")
        args = node.args
        if any(isinstance(arg, ast.Starred) for arg in args):
            raise FormulaError(f"{name}(...) takes plain values")
        if name in ("sum", "count"):
            usage = "sum(list, formula), e.g. sum(lines, price * num)" if name == "sum" else "count(list)"
            if len(args) != (2 if name == "sum" else 1):
                raise FormulaError(f"write {usage}")
            listed = _path_of(args[0])
            if listed is None:
                raise FormulaError(
                    f"the first thing in {name}(...) must be the name of a list; write {usage}"
                )
            self.references.append(Reference(listed, within, is_list=True))
            if name == "sum":
                self.check(args[1], (*within, listed))
        elif name == "round":
            if len(args) not in (1, 2) or (
                len(args) == 2 and not (isinstance(args[1], ast.Constant) and type(args[1].value) is int)
            ):
                raise FormulaError("write round(value) or round(value, places) with places a whole number")
            self.check(args[0], within)
        elif name == "abs":
            if len(args) != 1:
                raise FormulaError("abs(...) takes one value")
            self.check(args[0], within)
        else:
            if not args:
                raise FormulaError(f"{name}(...) needs at least one value")
            for arg in args:
                self.check(arg, within)


def parse_formula(text: Any) -> Formula:
    """Parse and check a formula; raises FormulaError with a plain message."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError('a formula must be a text such as "price * num - discount"')
    too_deep = FormulaError(
        f"this formula is too long or nests too deeply (at most {MAX_PARTS} names, numbers and "
        f"operators, {MAX_NESTING} levels of brackets, functions, 'if', 'not' and signs); work out "
        "parts of it in fields of their own and combine them with $target."
    )
    try:
        tree = ast.parse(_desugar(text.strip()), mode="eval").body
    except SyntaxError as exc:
        where = f" near position {exc.offset}" if exc.offset else ""
        raise FormulaError(f"this formula cannot be read{where}: {text.strip()!r}") from None
    except (RecursionError, MemoryError):  # Python's parser gives up on a formula this long
        raise too_deep from None
    if _nesting(tree) > MAX_NESTING or sum(isinstance(node, ast.expr) for node in ast.walk(tree)) > MAX_PARTS:
        raise too_deep
    checker = _Checker()
    checker.check(tree, ())
    return Formula(text=text, tree=tree, references=tuple(checker.references))


# How deep a formula may nest: its code is nested as deep, and Python compiles at most 200 brackets.
MAX_NESTING = 40
# Checking and compiling a formula walk it recursively, one step per operator of `a + b + c ...`.
MAX_PARTS = 300


def _nesting(tree: ast.AST) -> int:
    """How deeply a formula nests, without recursion; `a + b + c` (one operator after another,
    as formulas add up fields) counts as one level, since its code is written a step at a time."""
    deepest = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, ast.BoolOp):  # as a value, each part is a fallback nested in the one before
            stack.extend((child, depth + position) for position, child in enumerate(node.values, 1))
            continue
        for child in ast.iter_child_nodes(node):
            chained = isinstance(node, ast.BinOp) and isinstance(child, ast.BinOp) and child is node.left
            stack.append((child, depth if chained else depth + 1))
    return deepest


def path_of(node: ast.expr) -> Path | None:
    """The source path a formula's Name/Attribute/Subscript chain spells, or None."""
    return _path_of(node)


def outer_sums(node: ast.expr) -> list[tuple[ast.Call, Path]]:
    """The `sum(list, ...)` calls of a formula that are not inside another sum's body, with their list."""
    found: list[tuple[ast.Call, Path]] = []

    def visit(part: ast.AST) -> None:
        if isinstance(part, ast.Call) and _called(part) == "sum" and len(part.args) == 2:
            listed = _path_of(part.args[0])
            if listed is not None:
                found.append((part, listed))
            return
        for child in ast.iter_child_nodes(part):
            visit(child)

    visit(node)
    return found


def plain_arithmetic(node: ast.expr, names: set[str]) -> bool:
    """Whether a formula is only + - * on numbers and on the item fields `names`: it cannot fail."""
    if isinstance(node, ast.BinOp):
        return (
            isinstance(node.op, ast.Add | ast.Sub | ast.Mult)
            and plain_arithmetic(node.left, names)
            and plain_arithmetic(node.right, names)
        )
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.USub | ast.UAdd) and plain_arithmetic(node.operand, names)
    if isinstance(node, ast.Name):
        path = _path_of(node)
        return (
            path is not None and path.scope == "self" and len(path.steps) == 1 and str(path.steps[0]) in names
        )
    return _is_number(node)


# --- code generation --------------------------------------------------------------------------------

NUM, TEXT, BOOL, ANY = "num", "text", "bool", "any"


class CodeHost(Protocol):
    """What the code generator offers a formula: reading paths, naming constants and temporaries."""

    def access(self, path: Path, scopes: list[str], iterable: bool = False) -> str:
        """Code that reads `path` from the record variables in `scopes` (innermost last); `iterable`:
        code that can stand as a comprehension's iterable."""

    def read(self, path: Path, scopes: list[str]) -> str:
        """Like `access`, but a host may read each path once per record and reuse it (reads never fail)."""

    def hoist(self, value: Any) -> str:
        """A module-level name bound to a constant."""

    def fresh(self, prefix: str) -> str:
        """A new temporary variable name."""

    def number(self, path: Path, scopes: list[str], shared: bool) -> str | None:
        """Code for the path's value as a decimal when the host can do better than `_arith(read)`:
        a local converted once per record (only if `shared`), or a direct read of a known decimal."""

    def value_once(self, code: str) -> str:
        """A local holding `code`'s value, computed once per record where the host can; else `code`."""

    def holds_records(self, path: Path, item: str) -> None:
        """Told that `item` iterates the list at `path` (a host that knows its items are dicts notes it)."""

    def number_of(self, code: str) -> str:
        """Code for an evaluated value (`code` is a name) as a decimal for arithmetic, missing = 0."""

    def to_number(self, code: str) -> str:
        """Code for an evaluated value (`code` is a name) as a decimal, or None when it is missing."""

    def first_number(self, parts: list[tuple[str, str]]) -> str | None:
        """A local holding `coalesce(...)` of these evaluated parts (names, with their kinds) as a decimal,
        worked out by statements once per record, or None where the host cannot write statements."""

    def fused_sum(self, node: ast.Call) -> str | None:
        """A local holding this `sum(...)`'s result if the host worked it out already, else None."""


class FormulaEmitter:
    """Turns a checked formula into one Python expression over the record variables in `scopes`."""

    def __init__(self, host: CodeHost) -> None:
        self.host = host
        self.access = host.access
        self.hoist = host.hoist
        self.fresh = host.fresh
        # Inside a branch (`x if c else y`, the later parts of `and`/`or`, a sum's body) a value may not be
        # read at all, so converting it ahead of time could raise an error the formula would not.
        self._branch = 0

    def value(self, formula: Formula, scopes: list[str]) -> tuple[str, str]:
        return self._emit(formula.tree, scopes)

    def condition(self, formula: Formula, scopes: list[str]) -> str:
        return self._truth(formula.tree, scopes)

    def _truth(self, node: ast.expr, scopes: list[str]) -> str:
        if isinstance(node, ast.BoolOp):
            joiner = " and " if isinstance(node.op, ast.And) else " or "
            first = self._truth(node.values[0], scopes)
            self._branch += 1
            rest = [self._truth(value, scopes) for value in node.values[1:]]
            self._branch -= 1
            return "(" + joiner.join([first, *rest]) + ")"
        code, kind = self._emit(node, scopes)
        return code if kind == BOOL else f"_truthy({code})"

    def _num(self, node: ast.expr, scopes: list[str]) -> str:
        if isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
            path = _path_of(node)
            better = self.host.number(path, scopes, not self._branch) if path is not None else None
            if better is not None:
                return better
        if isinstance(node, ast.Call) and _called(node) == "coalesce" and len(node.args) > 1:
            # Every part is worked out first, as a call to coalesce would.
            parts = [self._emit(arg, scopes) for arg in node.args]
            if not self._branch and all(code.isidentifier() for code, _kind in parts):
                first = self.host.first_number(parts)
                if first is not None:
                    return first
            return self._once(self._coalesce_number(parts))
        code, kind = self._emit(node, scopes)
        return code if kind == NUM else self._once(f"_arith({code})")

    def _text(self, emitted: tuple[str, str]) -> str:
        """Code for a value as text; text already (a quoted constant, a concatenation) needs no conversion."""
        code, kind = emitted
        if kind == TEXT:
            return code
        if code.isidentifier():
            return f"({code} if {code}.__class__ is str else _text({code}))"
        temp = self.fresh("_e")
        return f"({temp} if ({temp} := {code}).__class__ is str else _text({temp}))"

    def _coalesce_number(self, parts: list[tuple[str, str]]) -> str:
        """`coalesce(a, b, ...)` as a number: the first present value, converted; 0 if none is present.
        The choice and the conversion are inline, so a vendor amount goes through the text -> decimal memo."""
        names: list[tuple[str, str]] = []
        evaluate: list[str] = []
        for code, kind in parts:
            if code.isidentifier():
                names.append((code, kind))
            else:
                temp = self.fresh("_e")
                evaluate.append(f"({temp} := {code})")
                names.append((temp, kind))
        chosen = self.hoist(Decimal(0))
        for name, kind in reversed(names):
            if kind == NUM:  # a formula's number is always present
                chosen = name
            else:
                chosen = f"({self.host.number_of(name)} if {_present(name, name)} else {chosen})"
        if evaluate:
            return f"(({', '.join(evaluate)},) and {chosen})"
        return chosen

    def _pick(self, name: str, args: list[ast.expr], scopes: list[str]) -> str:
        """`max(a, b)`/`min(a, b)` as one comparison: the builtins cost a call and a rich comparison more,
        and give the same (max(a, b) is a unless b > a; min(a, b) is a unless b < a)."""
        first, second = (self._num(arg, scopes) for arg in args)
        values = []
        for code in (first, second):
            if code.isidentifier():
                values.append((code, code))
            else:
                temp = self.fresh("_e")
                values.append((f"({temp} := {code})", temp))
        (a_code, a), (b_code, b) = values
        op = "<" if name == "max" else ">"
        return f"({b} if {a_code} {op} {b_code} else {a})"

    def _once(self, code: str) -> str:
        """Formulas are pure, so a part computed again in the same record can reuse the first result."""
        return code if self._branch else self.host.value_once(code)

    def _emit(self, node: ast.expr, scopes: list[str]) -> tuple[str, str]:
        if isinstance(node, ast.Constant):
            value = node.value
            if type(value) in (int, float):
                return self.hoist(Decimal(repr(value))), NUM
            if type(value) is bool:
                return repr(value), BOOL
            return repr(value), TEXT if isinstance(value, str) else ANY
        if isinstance(node, ast.Name | ast.Attribute | ast.Subscript):
            path = _path_of(node)
            assert path is not None  # the checker accepted it
            return self.host.read(path, scopes), ANY
        if isinstance(node, ast.BinOp):
            # Each part is emitted once: emitting may write statements (values computed once per record).
            if isinstance(node.op, ast.Add) and TEXT in (kind_of(node.left), kind_of(node.right)):
                left, right = self._emit(node.left, scopes), self._emit(node.right, scopes)
                return f"({self._text(left)} + {self._text(right)})", TEXT
            op = _ARITH[type(node.op)]
            return self._once(f"({self._num(node.left, scopes)} {op} {self._num(node.right, scopes)})"), NUM
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return f"(not {self._truth(node.operand, scopes)})", BOOL
            sign = "-" if isinstance(node.op, ast.USub) else "+"
            return f"({sign}{self._num(node.operand, scopes)})", NUM
        if isinstance(node, ast.BoolOp):
            return self._boolop(node, scopes)
        if isinstance(node, ast.Compare):
            return self._compare(node, scopes), BOOL
        if isinstance(node, ast.IfExp):
            test = self._truth(node.test, scopes)
            self._branch += 1
            body, orelse = self._emit(node.body, scopes), self._emit(node.orelse, scopes)
            self._branch -= 1
            kind = body[1] if body[1] == orelse[1] else ANY
            return f"({body[0]} if {test} else {orelse[0]})", kind
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        fused = self.host.fused_sum(node)
        if fused is not None:
            return fused, NUM
        return self._call(node.func.id, node.args, scopes)

    def fused_body(self, node: ast.expr, scopes: list[str]) -> str:
        """A sum's body for one item, written where the host builds the items (see fused_sum)."""
        self._branch += 1
        try:
            return self._num(node, scopes)
        finally:
            self._branch -= 1

    def _boolop(self, node: ast.BoolOp, scopes: list[str]) -> tuple[str, str]:
        # As a value, `a or b` is a fallback: a when a is present (even "0"), else b.
        parts = [self._emit(node.values[0], scopes)]
        self._branch += 1
        parts.extend(self._emit(value, scopes) for value in node.values[1:])
        self._branch -= 1
        if all(kind == BOOL for _code, kind in parts):
            joiner = " and " if isinstance(node.op, ast.And) else " or "
            return "(" + joiner.join(code for code, _kind in parts) + ")", BOOL
        code, _ = parts[-1]
        for part, _kind in reversed(parts[:-1]):
            temp = part if part.isidentifier() else self.fresh("_e")
            if isinstance(node.op, ast.Or):
                code = f"({temp} if {_present(temp, part)} else {code})"
            else:
                code = f"({code} if {_present(temp, part)} else {temp})"
        kinds = {kind for _code, kind in parts}
        return code, kinds.pop() if len(kinds) == 1 else ANY

    def _compare(self, node: ast.Compare, scopes: list[str]) -> str:
        checks = []
        left_node = node.left
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            checks.append(self._pair(left_node, op, right_node, scopes))
            left_node = right_node
        return checks[0] if len(checks) == 1 else "(" + " and ".join(checks) + ")"

    def _pair(self, left_node: ast.expr, op: ast.cmpop, right_node: ast.expr, scopes: list[str]) -> str:
        left = self._emit(left_node, scopes)
        if isinstance(op, ast.In | ast.NotIn):
            assert isinstance(right_node, ast.Tuple | ast.List)
            values = [item.value for item in right_node.elts if isinstance(item, ast.Constant)]
            negate = "not " if isinstance(op, ast.NotIn) else ""
            if all(isinstance(v, str) for v in values):
                return f"({negate}{self._text(left)} in {self.hoist(frozenset(values))})"
            numbers = frozenset(Decimal(repr(v)) for v in values)
            return f"({negate}_number({left[0]}) in {self.hoist(numbers)})"
        right = self._emit(right_node, scopes)
        kinds = {left[1], right[1]}
        if isinstance(op, ast.Eq | ast.NotEq):
            symbol = "==" if isinstance(op, ast.Eq) else "!="
            if NUM in kinds:
                return f"(_number({left[0]}) {symbol} _number({right[0]}))"
            if BOOL in kinds:
                return f"(_truthy({left[0]}) {symbol} _truthy({right[0]}))"
            return f"({self._text(left)} {symbol} {self._text(right)})"
        order = _ORDER[type(op)]
        if TEXT in kinds and NUM not in kinds:
            return f"({self._text(left)} {order} {self._text(right)})"
        constant = [_is_number(left_node), _is_number(right_node)]
        if constant.count(True) == 1:
            # `amount > 0`: convert the one value, inline; missing makes the comparison false.
            value = left[0] if constant[1] else right[0]
            if not value.isidentifier():
                temp = self.fresh("_e")
                value, assign = temp, f"({temp} := {value})"
            else:
                assign = value
            number = self.fresh("_n")
            convert = self.host.to_number(value)
            if assign != value:
                convert = f"({assign}, {convert})[1]"
            pair = f"{number} {order} {right[0]}" if constant[1] else f"{left[0]} {order} {number}"
            return f"(({number} := {convert}) is not None and {pair})"
        # A missing number makes an ordering comparison false rather than an error.
        return f"_order({left[0]}, {order!r}, {right[0]})"

    def _call(self, name: str, args: list[ast.expr], scopes: list[str]) -> tuple[str, str]:
        if name == "sum":
            listed = _path_of(args[0])
            assert listed is not None
            item = self.fresh("_i")
            self.host.holds_records(listed, item)
            self._branch += 1
            body = self._num(args[1], [*scopes, item])
            self._branch -= 1
            items = self.access(listed, scopes, iterable=True)
            return f"_sum([{body} for {item} in _items({items})])", NUM
        if name == "count":
            listed = _path_of(args[0])
            assert listed is not None
            return self.hoist(Decimal) + f"(len(_items({self.access(listed, scopes)})))", NUM
        if name == "round":
            places = args[1].value if len(args) == 2 and isinstance(args[1], ast.Constant) else 0
            return f"_round({self._num(args[0], scopes)}, {places!r})", NUM
        if name == "abs":
            return f"abs({self._num(args[0], scopes)})", NUM
        if name in ("min", "max"):
            if len(args) == 1:
                return self._num(args[0], scopes), NUM
            if len(args) == 2:
                return self._once(self._pick(name, args, scopes)), NUM
            return self._once(f"{name}({', '.join(self._num(arg, scopes) for arg in args)})"), NUM
        parts = [self._emit(arg, scopes) for arg in args]
        kinds = {kind for _code, kind in parts}
        code = self._once(f"_coalesce({', '.join(code for code, _kind in parts)})")
        return code, kinds.pop() if len(kinds) == 1 else ANY
