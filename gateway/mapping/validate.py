"""Checks that span a whole spec: declared source and target schemas, lookup tables, `$target.` order."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.mapping.formula import Formula
from gateway.mapping.paths import Path
from gateway.mapping.spec import FieldSpec, Issues, MappingSpec, suggest

_SCALAR_TYPES = ("string", "int", "decimal", "bool", "datetime")


def _join(base: str, key: str) -> str:
    return f"{base}.{key}" if base and key else base or key


class _SourceSchema:
    """Answers 'does the source have this path?' for a declared source schema."""

    def __init__(self, fields: dict[str, str | None]) -> None:
        self.fields = fields
        self.prefixes = {key.rsplit(".", n)[0] for key in fields for n in range(1, key.count(".") + 1)}

    def knows(self, key: str) -> bool:
        if key in self.fields or key in self.prefixes:
            return True
        # An object declared without any of its own fields is opaque: anything under it is accepted.
        parts = key.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            ancestor = ".".join(parts[:cut])
            if ancestor in self.fields:
                return ancestor not in self.prefixes and self.fields[ancestor] in (None, "object", "list")
        return False

    def type_of(self, key: str) -> str | None:
        if key in self.prefixes:
            return "object or list"
        return self.fields.get(key)


class _Checker:
    def __init__(self, spec: MappingSpec, issues: Issues, tables: set[str] | None) -> None:
        self.spec = spec
        self.issues = issues
        self.tables = tables
        self.source = _SourceSchema(spec.source_fields) if spec.source_fields is not None else None
        self.top_names = {field.name for field in spec.fields}

    # -- source paths -------------------------------------------------------------------------------

    def resolve(self, path: Path, stack: list[str], place: str, what: str) -> str | None:
        """The path's absolute schema key (`details_list.goods_count`), or None for `$target.` paths."""
        named = f"{what} '{path.text}'," if what.endswith(" uses") else f"{what} '{path.text}'"
        if path.scope == "target":
            head = str(path.steps[0]) if path.steps else ""
            if head not in self.top_names:
                inner = any(key.endswith("." + head) for key in _produced(self.spec.fields, ""))
                why = (
                    f"'{head}' is a field inside a list or object, and $target. reads only the top-level "
                    "fields; read the same source again instead"
                    if inner
                    else f"this spec maps no top-level field '{head}'" + suggest(head, self.top_names)
                )
                self.issues.add(place, f"{what} '{path.text}': {why}")
            return None
        if path.scope == "root":
            base = stack[0]
        elif path.scope == "parent":
            if path.up >= len(stack):
                self.issues.add(place, f"{named} goes above the top record; there is no $parent here")
                return None
            base = stack[-1 - path.up]
        else:
            base = stack[-1]
        key = _join(base, path.schema_key())
        if self.source is not None and not self.source.knows(key):
            here = f" (inside the list '{base}')" if base else ""
            self.issues.add(
                place,
                f"{named} {'which ' if named.endswith(',') else ''}is not a field of the source{here}"
                + suggest(key, self.source.fields)
                + "; check the spelling against the declared source fields",
            )
            return None
        return key

    def formula(self, formula: Formula | None, stack: list[str], place: str, what: str) -> None:
        if formula is None:
            return
        for ref in formula.references:
            inner = list(stack)
            in_target = False
            for listed in ref.within:
                in_target = in_target or listed.scope == "target"
                key = None if in_target else self.resolve(listed, inner, place, f"the list in {what}")
                inner.append(key or listed.schema_key())
            if in_target:  # the items of an already-mapped target list
                self.target_item(ref.path, inner[-1], place, what)
                continue
            key = self.resolve(ref.path, inner, place, f"{what} uses")
            kind = self.source.type_of(key) if self.source and key else None
            if kind in ("object", "list", "object or list") and not ref.is_list:
                self.issues.add(
                    place, f"{what} uses '{ref.path.text}', which is a group of fields, not one value"
                )

    def target_item(self, path: Path, base: str, place: str, what: str) -> None:
        declared = self.spec.target_fields
        key = _join(base, path.schema_key())
        if declared is not None and path.scope == "self" and key not in declared:
            self.issues.add(
                place, f"{what} uses '{path.text}', which is not a field of the target list '{base}'"
            )

    # -- fields -------------------------------------------------------------------------------------

    def field(self, field: FieldSpec, stack: list[str], target_base: str) -> None:
        place = field.place
        for path in () if field.is_object else field.sources:
            key = self.resolve(path, stack, place, "its 'from' path")
            kind = self.source.type_of(key) if self.source and key else None
            if field.type and kind in ("list", "object", "object or list") and not path.has_wildcard:
                self.issues.add(
                    place,
                    f"'{path.text}' is a {kind.replace('object or list', 'group of fields')} in the source, "
                    f"so it cannot become type: {field.type}",
                )
        for part in field.template:
            if part.path is not None:
                self.resolve(part.path, stack, place, "the template uses")
        for path in field.concat:
            self.resolve(path, stack, place, "its 'concat' path")
        self.formula(field.expr, stack, place, "the formula")
        self.formula(field.when, stack, place, "the condition")
        if field.lookup is not None and self.tables is not None and field.lookup not in self.tables:
            known = ", ".join(sorted(self.tables)) or "none"
            self.issues.add(
                place,
                f"looks up table '{field.lookup}', which does not exist{suggest(field.lookup, self.tables)} "
                f"(tables: {known})",
            )
        self.target(field, target_base)
        if field.is_object:
            inner = stack
            if field.sources:
                key = self.resolve(field.sources[0], stack, place, "its 'from' path")
                inner = [*stack, key or field.sources[0].schema_key()]
            for child in field.fields:
                self.field(child, inner, _join(target_base, field.name))
        if field.each is not None:
            key = self.resolve(field.each, stack, f"{place}.each", "the list to map")
            kind = self.source.type_of(key) if self.source and key else None
            if kind in _SCALAR_TYPES:
                self.issues.add(
                    f"{place}.each", f"'{field.each.text}' is a single {kind} in the source, not a list"
                )
            inner = [*stack, key or field.each.schema_key()]
            self.formula(field.filter, inner, f"{place}.each", "the filter")
            for child in field.fields:
                self.field(child, inner, _join(target_base, field.name))

    def target(self, field: FieldSpec, base: str) -> None:
        declared = self.spec.target_fields
        if declared is None:
            return
        key = _join(base, field.name)
        if key not in declared and not any(name.startswith(key + ".") for name in declared):
            names = [name for name in declared if name.count(".") == key.count(".")]
            self.issues.add(field.place, f"the target has no field '{key}'{suggest(key, names)}")
            return
        kind = declared.get(key)
        if kind is None or (field.has_const and field.const is None):
            return
        if field.each is not None and kind != "list":
            self.issues.add(
                field.place, f"the target field '{key}' is a single {kind}, but this makes a list"
            )
        elif field.is_object and kind != "object":
            self.issues.add(
                field.place, f"the target field '{key}' is a single {kind}, but this makes an object"
            )
        elif field.each is None and kind == "list":
            self.issues.add(field.place, f"the target field '{key}' is a list; map it with 'each'")
        elif field.type is not None and kind in _SCALAR_TYPES and field.type != kind:
            self.issues.add(
                field.place,
                f"the target field '{key}' is {kind}, but this field converts the value to {field.type}",
            )

    def required(self) -> None:
        produced = set(_produced(self.spec.fields, ""))
        for name in self.spec.target_required:
            key = Path(text=name, steps=tuple(name.replace("[*]", "").split("."))).schema_key()
            if key not in produced:
                self.issues.add(
                    "target.required", f"the target requires '{name}', but no field of this spec fills it"
                )


def _produced(fields: tuple[FieldSpec, ...], base: str) -> Iterator[str]:
    for field in fields:
        key = _join(base, field.name)
        yield key
        yield from _produced(field.fields, key)


def _target_refs(field: FieldSpec) -> Iterator[str]:
    formulas = [field.expr, field.when, field.filter]
    paths = [*field.sources, *field.concat, *(p.path for p in field.template if p.path is not None)]
    for formula in formulas:
        if formula is not None:
            paths.extend(ref.path for ref in formula.references)
            paths.extend(listed for ref in formula.references for listed in ref.within)
    for path in paths:
        if path.scope == "target" and path.steps:
            yield str(path.steps[0])
    for child in field.fields:
        yield from _target_refs(child)


def evaluation_order(fields: tuple[FieldSpec, ...], issues: Issues) -> list[FieldSpec]:
    """Top-level fields ordered so that a `$target.x` reader comes after the field `x` it reads."""
    by_name = {field.name: field for field in fields}
    needs = {field.name: {dep for dep in _target_refs(field) if dep in by_name} for field in fields}
    ordered: list[FieldSpec] = []
    done: set[str] = set()
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            issues.add(by_name[name].place, f"fields read each other in a circle ({cycle}) through $target.")
            return
        visiting.append(name)
        for dep in sorted(needs[name]):
            visit(dep)
        visiting.pop()
        done.add(name)
        ordered.append(by_name[name])

    for field in fields:
        visit(field.name)
    return ordered


def check_spec(spec: MappingSpec, issues: Issues, tables: set[str] | None = None) -> None:
    """Add to `issues` what is wrong across the spec; `tables`, when known, are the lookup tables at hand."""
    checker = _Checker(spec, issues, tables)
    if spec.key is not None:
        checker.resolve(spec.key, [""], "key", "the record key path")
    for field in spec.fields:
        checker.field(field, [""], "")
    checker.required()
    evaluation_order(spec.fields, issues)
