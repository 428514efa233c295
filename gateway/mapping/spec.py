"""The mapping spec: its typed model and how YAML, JSON or a dict becomes one, with every problem reported."""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
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
# Nested lists and objects a spec may have: the generated code is one Python function, and Python
# refuses more than 20 nested blocks (a list takes two: its loop and each field's `try`).
MAX_DEPTH = 8
_NULL, _MERGE = "tag:yaml.org,2002:null", "tag:yaml.org,2002:merge"
_BOOL, _INT, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"


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


class _SpecLoader(yaml.SafeLoader):
    """YAML as a spec author means it (the YAML 1.2 core schema, not PyYAML's YAML 1.1).

    Under YAML 1.1 `yes`/`no`/`on`/`off` (and so Norway's `NO`) are booleans, `0123` is octal 83,
    `12:30` is 750, `1.10` is the float 1.1 and `2026-03-01` a date object, all silently. Here only
    `true`/`false` are booleans, only plain whole numbers without a leading zero are integers,
    numbers with a fraction or an exponent are exact Decimals, everything else is text, a key
    written as a number or a boolean stays the text it was written as, and a key written twice is
    an error rather than the second silently replacing the first.
    """


_SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag in (_NULL, _MERGE)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SpecLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_SpecLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))
_SpecLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^[-+]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> Decimal:
    text = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    try:
        return Decimal(text)
    except InvalidOperation:
        raise yaml.constructor.ConstructorError(
            None, None, f"{text!r} is not a number", node.start_mark
        ) from None


def _key(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode) and node.tag in (_BOOL, _INT, _FLOAT):
        return node.value  # `5: cancelled`, `1.10: x`, `true: y`: a key is the text written
    key = loader.construct_object(node, deep=True)
    try:
        hash(key)
    except TypeError:
        raise yaml.constructor.ConstructorError(
            None, None, "a key must be a name or a value, not a list or a group of settings", node.start_mark
        ) from None
    return key


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.Node) -> dict[Any, Any]:
    assert isinstance(node, yaml.MappingNode)
    written: set[Any] = set()
    for key_node, _value in node.value:
        if key_node.tag == _MERGE:  # `<<: *defaults` may be overridden by the block's own keys
            continue
        key = _key(loader, key_node)
        if key in written:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"{key!r} is written twice in the same block; the second would silently replace the first",
                key_node.start_mark,
            )
        written.add(key)
    loader.flatten_mapping(node)
    return {_key(loader, key): loader.construct_object(value, deep=True) for key, value in node.value}


_SpecLoader.add_constructor(_FLOAT, _construct_decimal)
_SpecLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's message in one line, with the line and column the author can find."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        context = f" ({exc.context})" if exc.context else ""
        return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}{context}"
    return str(exc).replace("\n", " ")


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"{key!r} is written twice in the same object; the second would replace it")
        document[key] = value
    return document


def load_yaml(text: str | bytes) -> Any:
    """YAML read the way specs are read (see _SpecLoader), for code that stores a spec file's content;
    raises yaml.YAMLError."""
    return yaml.load(text, Loader=_SpecLoader)  # a SafeLoader subclass: safe


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
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError:
            raise MappingSpecError([SpecIssue("", "the spec is not UTF-8 text")]) from None
    if not isinstance(source, str):
        raise MappingSpecError([SpecIssue("", "a spec must be a YAML or JSON text, a file path or a dict")])
    try:
        if source.lstrip().startswith("{"):
            document = json.loads(source, parse_float=Decimal, object_pairs_hook=_json_pairs)
        else:
            document = load_yaml(source)
    except yaml.YAMLError as exc:
        raise MappingSpecError([SpecIssue("", f"the spec is not valid YAML: {_yaml_problem(exc)}")]) from None
    except ValueError as exc:  # json.JSONDecodeError is one
        raise MappingSpecError([SpecIssue("", f"the spec is not valid JSON: {exc}")]) from None
    except RecursionError:
        raise MappingSpecError(
            [SpecIssue("", "the spec nests lists or settings too deeply to read")]
        ) from None
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
        issues.add(place, f"{what} {coerce.show(text)}: {exc}")
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
        self.depth = 0  # lists and objects around the fields being read

    def parse_fields(self, value: Any, place: str) -> tuple[FieldSpec, ...]:
        if not isinstance(value, dict) or not value:
            self.issues.add(place, "list the target fields as 'target_name: source' lines")
            return ()
        if self.depth > MAX_DEPTH:
            self.issues.add(
                place,
                f"lists and objects are nested more than {MAX_DEPTH} levels deep here; "
                "map the inner levels with a mapping of their own",
            )
            return ()
        self.depth += 1
        parsed = []
        for name, setting in value.items():
            field = self.parse(str(name), setting, f"{place}.{name}")
            if field is not None:
                parsed.append(field)
        self.depth -= 1
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
        if values.get("type") in (None, "datetime"):
            # Numbers YAML reads exactly (`1.10`) stay JSON numbers where no type converts them.
            for key in ("const", "default"):
                if key in values:
                    values[key] = plain_numbers(values[key])
        if values.get("type") is None and values.get("value_map"):
            values["value_map"] = plain_numbers(values["value_map"])
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
            if (flag := _flag(setting["required"])) is not None:
                values["required"] = flag
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
        limit: int = values.get("max_length") or 0
        written = [("const", values.get("const")), ("default", values.get("default"))]
        written += [
            (f"map value for {key!r}", value) for key, value in (values.get("value_map") or {}).items()
        ]
        for label, value in written if limit else ():
            # A constant is never checked per record (it cannot change), so it is checked here.
            if isinstance(value, str | int | Decimal) and len(coerce.text_or_empty(value)) > limit:
                add(place, f"its {label} {coerce.show(value)} is longer than max_length: {limit}")

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
        if any(key in setting and key not in values for key in ("format", "output", "tz", "output_tz")):
            return  # the constants cannot be checked against settings that are wrong themselves
        output = values.get("output", coerce.RFC3339)
        out_tz = values.get("output_tz") or values.get("tz", "UTC")
        convert = coercer(FieldSpec(name="", place="", type="datetime", **{
            key: values[key] for key in ("format", "tz", "output", "output_tz") if key in values
        }))  # fmt: skip
        # A constant is converted like a record's value, once, here; a default (and a map's value) is
        # written in the output's form and used as written, so it must read back in that form.
        as_written = coerce.make_datetime(output, out_tz, output, out_tz, shortcuts=False)
        if values.get("has_const") and values.get("const") is not None:
            try:
                values["const"] = convert(values["const"])
            except ValueProblem as exc:
                add(place, f"its const does not fit type: datetime: {exc}")
        if values.get("has_default") and values.get("default") is not None:
            try:
                as_written(values["default"])
            except ValueProblem as exc:
                add(
                    place, f"its default is used as written, so it must be in the output form {output}: {exc}"
                )
        for source_value, target_value in (values.get("value_map") or {}).items():
            try:
                convert(target_value)
            except ValueProblem as exc:
                add(place, f"map value for {source_value!r} does not fit type: datetime: {exc}")

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


def _flag(value: Any) -> bool | None:
    """A yes/no setting; `yes`/`no`/`on`/`off` are text to the spec loader, but plain here."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}.get(
            value.strip().lower()
        )
    return None


def plain_numbers(value: Any) -> Any:
    """Decimals (how the spec loader reads `1.10`) as floats, in lists and objects too: the JSON number
    an untyped constant has always given. A typed field converts the exact Decimal instead."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return [plain_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: plain_numbers(item) for key, item in value.items()}
    return value


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
        tables[str(name)] = {str(k): plain_numbers(v) for k, v in rows.items()}
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
    omit_none = _flag(document.get("omit_none", False))
    if omit_none is None:
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
