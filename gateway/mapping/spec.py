"""The mapping spec: its typed model and how YAML, JSON or a dict becomes one, with every problem reported."""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from pathlib import Path as FilePath
from typing import Any

import msgspec
import yaml

from gateway.mapping import coerce, functions
from gateway.mapping.errors import MappingSpecError, SpecIssue, ValueProblem
from gateway.mapping.formula import Formula, FormulaError, parse_formula
from gateway.mapping.paths import Path, PathSyntaxError, parse_path

ON_UNKNOWN = ("default", "error", "keep")
OUTPUTS = {
    "string": (),
    "int": ("number", "string"),
    "decimal": ("string", "number"),
    "bool": ("bool", "int", "string"),
}
TOP_KEYS = ("name", "description", "key", "source", "target", "tables", "fields", "omit_none")
FIELD_KEYS = (
    "from", "const", "template", "concat", "sep", "expr", "each", "fields", "filter", "when", "split",
    "join", "map", "lookup", "on_unknown", "refuse", "fn", "type", "scale", "format", "tz", "output",
    "output_tz", "default", "required", "max_length", "description",
)  # fmt: skip
VALUE_SOURCES = ("from", "const", "template", "concat", "expr", "each")


class FnCall(msgspec.Struct, frozen=True):
    name: str
    args: tuple[Any, ...] = ()


class TemplatePart(msgspec.Struct, frozen=True):
    """Literal text followed by the value of `path` (None at the end of the template)."""

    text: str
    path: Path | None = None


class FieldSpec(msgspec.Struct, frozen=True):
    """One target field: where its value comes from and the steps it goes through, in order."""

    name: str
    place: str
    sources: tuple[Path, ...] = ()
    has_const: bool = False
    const: Any = None
    template: tuple[TemplatePart, ...] = ()
    concat: tuple[Path, ...] = ()
    sep: str = ""
    expr: Formula | None = None
    each: Path | None = None
    is_object: bool = False  # `fields:` without `each`: a nested object (from `sources[0]` if given)
    fields: tuple[FieldSpec, ...] = ()
    filter: Formula | None = None
    when: Formula | None = None
    split: str | None = None
    join: str | None = None
    value_map: dict[str, Any] | None = None
    lookup: str | None = None
    on_unknown: str = "default"
    refuse: dict[str, str] | None = None  # source value -> why it cannot be mapped (a MappingError)
    fn: tuple[FnCall, ...] = ()
    type: str | None = None
    scale: int | None = None
    format: str = coerce.RFC3339
    tz: str = "UTC"
    output: str | None = None
    output_tz: str | None = None
    has_default: bool = False
    default: Any = None
    required: bool = False
    max_length: int | None = None


class MappingSpec(msgspec.Struct, frozen=True):
    """A loaded, checked spec; `source_fields`/`target_fields` map schema paths to a declared type."""

    name: str
    fields: tuple[FieldSpec, ...]
    key: Path | None = None
    description: str = ""
    source_fields: dict[str, str | None] | None = None
    target_fields: dict[str, str | None] | None = None
    target_required: tuple[str, ...] = ()
    tables: dict[str, dict[str, Any]] = {}
    omit_none: bool = False
    raw: dict[str, Any] = {}


class Issues:
    """Collects problems so a spec author sees all of them at once."""

    def __init__(self) -> None:
        self.items: list[SpecIssue] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(SpecIssue(path=path, message=message))


def suggest(word: str, choices: Any) -> str:
    """A 'did you mean' hint; a swap of letters (`form` for `from`) beats a merely similar word."""
    names = [str(c) for c in choices]
    swapped = [name for name in names if sorted(name) == sorted(str(word))]
    close = swapped or difflib.get_close_matches(str(word), names, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def read_document(source: Any) -> dict[str, Any]:
    """A spec from a dict, a YAML/JSON text, or a path to a .yaml/.yml/.json file."""
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml", ".json"))
    ):
        file = FilePath(source)
        if not file.is_file():
            raise MappingSpecError([SpecIssue("", f"there is no spec file at {file}")])
        source = file.read_text(encoding="utf-8")
    if not isinstance(source, str | bytes):
        raise MappingSpecError([SpecIssue("", "a spec must be a YAML or JSON text, a file path or a dict")])
    try:
        document = yaml.safe_load(source) if not str(source).lstrip().startswith("{") else json.loads(source)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise MappingSpecError([SpecIssue("", f"the spec is not valid YAML/JSON: {exc}")]) from None
    if not isinstance(document, dict):
        raise MappingSpecError([SpecIssue("", "a spec must be a set of 'key: value' settings at the top")])
    return document


def _path(issues: Issues, place: str, text: Any, what: str) -> Path | None:
    try:
        return parse_path(text)
    except PathSyntaxError as exc:
        issues.add(place, f"{what}: {exc}")
        return None


def _formula(issues: Issues, place: str, text: Any, what: str) -> Formula | None:
    try:
        return parse_formula(text)
    except FormulaError as exc:
        issues.add(place, f"{what} {text!r}: {exc}")
        return None


def _schema(issues: Issues, place: str, value: Any) -> dict[str, str | None] | None:
    """`fields:` of a source/target schema: a list of paths, or a mapping path -> type."""
    if value is None:
        return None
    entries = value.items() if isinstance(value, dict) else ((item, None) for item in value or ())
    if not isinstance(value, dict | list):
        issues.add(place, "list the fields, e.g. fields: [shop_no, details_list[*].spec_no]")
        return None
    schema: dict[str, str | None] = {}
    for text, kind in entries:
        path = _path(issues, place, text, "this field name cannot be read")
        if path is None:
            continue
        if kind is not None and kind not in (*coerce.TYPES, "list", "object"):
            issues.add(
                place,
                f"'{text}' has type '{kind}', which is not one of {', '.join(coerce.TYPES)}, list, object",
            )
            kind = None
        schema[path.schema_key()] = kind
    return schema


def _template(issues: Issues, place: str, text: Any) -> tuple[TemplatePart, ...]:
    if not isinstance(text, str):
        issues.add(place, "template must be a text such as '{receiver_name} ({receiver_mobile})'")
        return ()
    parts: list[TemplatePart] = []
    literal = ""
    pos = 0
    while pos < len(text):
        char = text[pos]
        if text.startswith(("{{", "}}"), pos):
            literal += char
            pos += 2
        elif char == "{":
            end = text.find("}", pos)
            if end < 0:
                issues.add(
                    place, f"template {text!r} opens '{{' without closing it; write '{{{{' for a brace"
                )
                return ()
            path = _path(issues, place, text[pos + 1 : end].strip(), f"template {text!r}")
            if path is None:
                return ()
            parts.append(TemplatePart(literal, path))
            literal = ""
            pos = end + 1
        elif char == "}":
            issues.add(place, f"template {text!r} closes '}}' without opening it; write '}}}}' for a brace")
            return ()
        else:
            literal += char
            pos += 1
    parts.append(TemplatePart(literal))
    return tuple(parts)


def _fn_calls(issues: Issues, place: str, value: Any) -> tuple[FnCall, ...]:
    calls: list[FnCall] = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str):
            name, args = item, []
        elif isinstance(item, dict) and len(item) == 1:
            name, raw = next(iter(item.items()))
            args = list(raw) if isinstance(raw, list) else [raw]
        else:
            issues.add(
                place,
                f"fn {item!r} should be a function name, or one 'name: settings' pair like {{round: 2}}",
            )
            continue
        if name not in functions.FUNCTIONS:
            known = ", ".join(functions.FUNCTIONS)
            issues.add(
                place, f"there is no function '{name}'{suggest(name, functions.FUNCTIONS)}; known: {known}"
            )
            continue
        try:
            functions.build(name, args)
        except ValueError as exc:
            issues.add(place, f"fn {name}: {exc}")
            continue
        calls.append(FnCall(name, tuple(args)))
    return tuple(calls)


class _FieldParser:
    """Reads one field's settings into a FieldSpec, recording every problem in `issues`."""

    def __init__(self, issues: Issues) -> None:
        self.issues = issues

    def parse_fields(self, value: Any, place: str) -> tuple[FieldSpec, ...]:
        if not isinstance(value, dict) or not value:
            self.issues.add(place, "list the target fields as 'target_name: source' lines")
            return ()
        parsed = []
        for name, setting in value.items():
            field = self.parse(str(name), setting, f"{place}.{name}")
            if field is not None:
                parsed.append(field)
        return tuple(parsed)

    def parse(self, name: str, setting: Any, place: str) -> FieldSpec | None:
        add = self.issues.add
        if isinstance(setting, str):
            setting = {"from": setting}
        if not isinstance(setting, dict):
            add(place, f"write a source path (e.g. {name}: shop_no) or settings in braces, not {setting!r}")
            return None
        for key in setting:
            if key not in FIELD_KEYS:
                add(place, f"'{key}' is not a field setting{suggest(key, FIELD_KEYS)}")
        each = setting.get("each")
        if isinstance(each, dict):  # the long form: each: {from: lines, fields: {...}, filter: ...}
            inner = {k: v for k, v in each.items() if k != "from"}
            setting = {**{k: v for k, v in setting.items() if k != "each"}, **inner, "each": each.get("from")}
            for key in each:
                if key not in ("from", "fields", "filter"):
                    add(place, f"'each.{key}' is not understood; each takes from, fields and filter")
        if "fields" in setting and "each" not in setting:
            return self._object(name, setting, place)
        given = [key for key in VALUE_SOURCES if key in setting and not (key == "each" and each is None)]
        fn = _fn_calls(self.issues, place, setting["fn"]) if "fn" in setting else ()
        if len(given) > 1:
            add(place, f"says where the value comes from in {len(given)} ways ({', '.join(given)}); keep one")
        if not given and not (fn and fn[0].name in functions.SOURCES) and "default" not in setting:
            add(
                place,
                f"says nothing about where the value comes from; give one of {', '.join(VALUE_SOURCES)}",
            )
        values: dict[str, Any] = {"name": name, "place": place, "fn": fn}
        self._source(setting, place, values)
        self._steps(setting, place, values)
        self._type(setting, place, values)
        if "each" in setting:
            self._each(setting, place, values)
        elif "filter" in setting:
            add(place, "'filter' belongs with 'each' (a list of records)")
        try:
            return FieldSpec(**values)
        except (TypeError, msgspec.ValidationError) as exc:  # pragma: no cover - guards against a parser slip
            add(place, f"cannot be read: {exc}")
            return None

    def _source(self, setting: dict[str, Any], place: str, values: dict[str, Any]) -> None:
        add = self.issues.add
        if "from" in setting and "each" not in setting:
            raw = setting["from"]
            texts = raw if isinstance(raw, list) and raw else [raw]
            paths = [_path(self.issues, place, text, "its 'from' path") for text in texts]
            values["sources"] = tuple(p for p in paths if p is not None)
        if "const" in setting:
            values["has_const"], values["const"] = True, setting["const"]
        if "template" in setting:
            values["template"] = _template(self.issues, place, setting["template"])
        if "concat" in setting:
            raw = setting["concat"]
            if not isinstance(raw, list) or not raw:
                add(
                    place,
                    "concat takes a list of source paths, e.g. concat: [receiver_city, receiver_address]",
                )
            else:
                paths = [_path(self.issues, place, text, "a 'concat' path") for text in raw]
                values["concat"] = tuple(p for p in paths if p is not None)
        if "sep" in setting:
            if not isinstance(setting["sep"], str) or "concat" not in setting:
                add(place, "'sep' is the text put between 'concat' values, e.g. sep: ' '")
            else:
                values["sep"] = setting["sep"]
        if "expr" in setting:
            values["expr"] = _formula(self.issues, place, setting["expr"], "formula")

    def _steps(self, setting: dict[str, Any], place: str, values: dict[str, Any]) -> None:
        add = self.issues.add
        if "when" in setting:
            values["when"] = _formula(self.issues, place, setting["when"], "condition")
        for key in ("split", "join"):
            if key in setting:
                if isinstance(setting[key], str) and setting[key]:
                    values[key] = setting[key]
                else:
                    add(place, f"'{key}' takes the separator text, e.g. {key}: ','")
        if "map" in setting:
            if isinstance(setting["map"], dict) and setting["map"]:
                values["value_map"] = {str(k): v for k, v in setting["map"].items()}
            else:
                add(place, "'map' takes pairs of 'source value: target value', e.g. map: {'95': shipped}")
        if "lookup" in setting:
            if isinstance(setting["lookup"], str) and setting["lookup"]:
                values["lookup"] = setting["lookup"]
            else:
                add(place, "'lookup' takes the name of a table, e.g. lookup: carriers")
        if "map" in setting and "lookup" in setting:
            add(place, "use either 'map' or 'lookup', not both")
        if "on_unknown" in setting:
            if setting["on_unknown"] not in ON_UNKNOWN:
                add(place, f"'on_unknown' must be one of {', '.join(ON_UNKNOWN)}")
            elif "map" not in setting and "lookup" not in setting:
                add(place, "'on_unknown' only applies together with 'map' or 'lookup'")
            else:
                values["on_unknown"] = setting["on_unknown"]
        if "refuse" in setting:
            refuse = setting["refuse"]
            if not (
                isinstance(refuse, dict)
                and refuse
                and all(isinstance(why, str) and why.strip() for why in refuse.values())
            ):
                add(
                    place,
                    "'refuse' takes pairs of 'source value: why it is refused', e.g. refuse: {'5': ...}",
                )
            elif "map" not in setting and "lookup" not in setting:
                add(place, "'refuse' only applies together with 'map' or 'lookup'")
            else:
                reasons = {str(value): why.strip() for value, why in refuse.items()}
                mapped = set(values.get("value_map") or ()) & set(reasons)
                if mapped:
                    add(
                        place,
                        f"{', '.join(sorted(map(repr, mapped)))} is both mapped and refused; choose one",
                    )
                else:
                    values["refuse"] = reasons
        if "required" in setting:
            if isinstance(setting["required"], bool):
                values["required"] = setting["required"]
            else:
                add(place, "'required' must be true or false")
        if "max_length" in setting:
            length = setting["max_length"]
            if isinstance(length, int) and not isinstance(length, bool) and length > 0:
                values["max_length"] = length
            else:
                add(place, "'max_length' must be a whole number above 0")
        if "default" in setting:
            values["has_default"], values["default"] = True, setting["default"]

    def _type(self, setting: dict[str, Any], place: str, values: dict[str, Any]) -> None:
        add = self.issues.add
        kind = setting.get("type")
        if kind is not None and kind not in coerce.TYPES:
            add(
                place,
                f"type '{kind}' is not known{suggest(kind, coerce.TYPES)}; "
                f"use one of {', '.join(coerce.TYPES)}",
            )
            return
        values["type"] = kind
        if kind is not None and "each" in setting:
            add(place, "a list made with 'each' cannot have a type; give types to the fields inside it")
        for key, owner in (
            ("scale", "decimal"),
            ("format", "datetime"),
            ("tz", "datetime"),
            ("output_tz", "datetime"),
        ):
            if key in setting and kind != owner:
                add(place, f"'{key}' only applies to type: {owner} (this field is {_type_words(kind)})")
        if "scale" in setting and kind == "decimal":
            scale = setting["scale"]
            if isinstance(scale, int) and not isinstance(scale, bool) and 0 <= scale <= 18:
                values["scale"] = scale
            else:
                add(place, "'scale' is the number of decimal places, a whole number from 0 to 18")
        if "output" in setting:
            self._output(setting["output"], kind, place, values)
        if kind == "datetime":
            self._datetime(setting, place, values)
        self._shape(setting, kind, place, values)
        if kind is not None and kind != "datetime":
            self._precheck_values(setting, kind, place, values)

    def _output(self, output: Any, kind: str | None, place: str, values: dict[str, Any]) -> None:
        if kind == "datetime":
            values["output"] = output  # checked with the other date-time settings
        elif kind in OUTPUTS and output in OUTPUTS[kind]:
            values["output"] = output
        elif kind is not None and OUTPUTS.get(kind):
            self.issues.add(place, f"'output' for type: {kind} must be one of {', '.join(OUTPUTS[kind])}")
        else:
            self.issues.add(place, f"'output' does not apply to {_type_words(kind)}")

    def _datetime(self, setting: dict[str, Any], place: str, values: dict[str, Any]) -> None:
        add = self.issues.add
        for key in ("format", "output"):
            pattern = setting.get(key, coerce.RFC3339)
            if not isinstance(pattern, str) or not pattern:
                add(
                    place,
                    f"'{key}' must be rfc3339, epoch, epoch_ms or a pattern such as 'yyyy-MM-dd HH:mm:ss'",
                )
                continue
            if pattern not in coerce.DATETIME_KEYWORDS:
                try:
                    coerce.pattern_to_strftime(pattern)
                except ValueError as exc:
                    add(place, f"'{key}' {pattern!r}: {exc}")
                    continue
            values[key] = pattern
        for key in ("tz", "output_tz"):
            if key in setting:
                try:
                    coerce.zone(str(setting[key]))
                    values[key] = str(setting[key])
                except ValueError as exc:
                    add(place, f"'{key}': {exc}")

    def _shape(self, setting: dict[str, Any], kind: str | None, place: str, values: dict[str, Any]) -> None:
        """Catch steps that cannot follow each other: a list cannot become a single typed value."""
        sources: tuple[Path, ...] = values.get("sources", ())
        is_list = any(path.has_wildcard for path in sources)
        if "split" in setting:
            if is_list:
                self.issues.add(place, "'split' needs one text, but the 'from' path gives a list ([*])")
            is_list = True
        for call in values["fn"]:
            if call.name in functions.LIST_TO_ITEM:
                is_list = False
        if "join" in setting:
            is_list = False
        if is_list and kind is not None:
            self.issues.add(
                place,
                f"this value is a list, which cannot become {_type_words(kind)}; "
                "add join: ',' or fn: [first]",
            )

    def _precheck_values(
        self, setting: dict[str, Any], kind: str, place: str, values: dict[str, Any]
    ) -> None:
        """Constants, defaults and map results must fit the field's type; they are converted once, here."""
        coerce_value = coercer(FieldSpec(name="", place="", type=kind, scale=values.get("scale"),
                                         output=values.get("output")))  # fmt: skip
        checks = [("const", "has_const", "const"), ("default", "has_default", "default")]
        for label, flag, key in checks:
            if values.get(flag) and values[key] is not None:
                try:
                    values[key] = coerce_value(values[key])
                except ValueProblem as exc:
                    self.issues.add(place, f"its {label} does not fit type: {kind}: {exc}")
        table = values.get("value_map")
        if table:
            for source_value, target_value in table.items():
                try:
                    coerce_value(target_value)
                except ValueProblem as exc:
                    self.issues.add(place, f"map value for {source_value!r} does not fit type: {kind}: {exc}")

    def _object(self, name: str, setting: dict[str, Any], place: str) -> FieldSpec:
        """`fields:` without `each`: a nested target object, read from the same record or from `from`."""
        sources: tuple[Path, ...] = ()
        if "from" in setting:
            path = _path(self.issues, place, setting["from"], "its 'from' path")
            if path is not None and path.has_wildcard:
                self.issues.add(place, f"'{path.text}' is a list ([*]); map a list with 'each'")
            sources = (path,) if path is not None else ()
        for key in setting:
            if key not in ("from", "fields", "when", "description") and key in FIELD_KEYS:
                self.issues.add(place, f"'{key}' does not apply to a group of fields (an object)")
        when = _formula(self.issues, place, setting["when"], "condition") if "when" in setting else None
        fields = self.parse_fields(setting["fields"], f"{place}.fields")
        return FieldSpec(name=name, place=place, sources=sources, is_object=True, fields=fields, when=when)

    def _each(self, setting: dict[str, Any], place: str, values: dict[str, Any]) -> None:
        inner = f"{place}.each"
        values["each"] = _path(self.issues, inner, setting["each"], "the list to map ('each')")
        if "fields" not in setting:
            self.issues.add(inner, "a list mapping needs 'fields': the fields of each target item")
        else:
            values["fields"] = self.parse_fields(setting["fields"], f"{inner}.fields")
        if "filter" in setting:
            values["filter"] = _formula(self.issues, inner, setting["filter"], "filter")
        for key in ("split", "join", "map", "lookup", "fn", "template", "expr", "const", "concat"):
            if key in setting:
                self.issues.add(place, f"'{key}' does not apply to a list made with 'each'")


def _type_words(kind: str | None) -> str:
    return f"type: {kind}" if kind else "a field without a type"


def coercer(field: FieldSpec, memo: dict[str, Any] | None = None) -> Any:
    """The conversion the field's type asks for (None when it has no type); see make_decimal for memo."""
    kind = field.type
    if kind == "string":
        return coerce.to_text
    if kind == "int":
        return coerce.make_int(field.output or "number")
    if kind == "decimal":
        # A formula gives a Decimal already; the fast path for vendor text would only be a detour.
        as_text = (field.output or "string") == "string"
        return coerce.make_decimal(field.scale, as_text, from_text=field.expr is None, memo=memo)
    if kind == "bool":
        return coerce.make_bool(field.output or "bool")
    if kind == "datetime":
        tz = field.tz
        return coerce.make_datetime(field.format, tz, field.output or coerce.RFC3339, field.output_tz or tz)
    return None


def _tables(issues: Issues, value: Any) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        issues.add(
            "tables",
            "tables are named sets of 'code: value' pairs, e.g. tables: {carriers: {中通快递: zhongtong}}",
        )
        return {}
    tables: dict[str, dict[str, Any]] = {}
    for name, rows in value.items():
        if not isinstance(rows, dict):
            issues.add(f"tables.{name}", "a table is a set of 'code: value' pairs")
            continue
        tables[str(name)] = {str(k): v for k, v in rows.items()}
    return tables


def parse_spec(document: dict[str, Any]) -> tuple[MappingSpec, Issues]:
    """Read a spec document into a MappingSpec; the Issues list everything wrong in it.

    Fields with problems are left out of the returned spec, so later checks still see the rest.
    """
    issues = Issues()
    for setting in document:
        if setting not in TOP_KEYS:
            issues.add(str(setting), f"'{setting}' is not a spec setting{suggest(setting, TOP_KEYS)}")
    name = document.get("name")
    if not isinstance(name, str) or not name.strip():
        issues.add("name", "every mapping needs a name, e.g. name: wdt_stockout")
        name = ""
    key: Path | None = None
    if document.get("key") is not None:
        key = _path(issues, "key", document["key"], "the record key path")
    source = document.get("source") or {}
    target = document.get("target") or {}
    for label, block in (("source", source), ("target", target)):
        if not isinstance(block, dict):
            issues.add(label, f"'{label}' takes settings such as fields: [...]")
    source = source if isinstance(source, dict) else {}
    target = target if isinstance(target, dict) else {}
    source_fields = _schema(issues, "source.fields", source.get("fields"))
    target_fields = _schema(issues, "target.fields", target.get("fields"))
    required = target.get("required") or []
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        issues.add("target.required", "list the required target fields, e.g. required: [tid, order_list.oid]")
        required = []
    omit_none = document.get("omit_none", False)
    if not isinstance(omit_none, bool):
        issues.add("omit_none", "'omit_none' must be true or false")
        omit_none = False
    fields = _FieldParser(issues).parse_fields(document.get("fields"), "fields")
    spec = MappingSpec(
        name=name,
        fields=fields,
        key=key,
        description=str(document.get("description") or ""),
        source_fields=source_fields,
        target_fields=target_fields,
        target_required=tuple(required),
        tables=_tables(issues, document.get("tables")),
        omit_none=omit_none,
        raw=document,
    )
    return spec, issues
