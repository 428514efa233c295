"""The public face of the engine: load a spec, compile it once, map one record or many."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from gateway.mapping.compile import build
from gateway.mapping.errors import MappingError, MappingSpecError, SpecIssue
from gateway.mapping.spec import Issues, MappingSpec, parse_spec, read_document
from gateway.mapping.validate import check_spec, evaluation_order

Tables = dict[str, dict[str, Any]]


class BulkResult(msgspec.Struct):
    """What a bulk run produced: the mapped records (in input order) and one error per record that failed."""

    records: list[dict[str, Any]]
    errors: list[MappingError]

    @property
    def ok(self) -> bool:
        return not self.errors


def _parse(source: Any, tables: set[str] | None) -> MappingSpec:
    spec, issues = parse_spec(read_document(source))
    check_spec(spec, issues, tables)
    if issues.items:
        raise MappingSpecError(issues.items)
    return spec


def load_spec(source: Any) -> MappingSpec:
    """Read and check a spec (dict, YAML/JSON text or file path); MappingSpecError lists every problem.

    Lookup tables are checked by compile_mapping, because admins may supply them only then.
    """
    if isinstance(source, MappingSpec):
        return source
    return _parse(source, None)


class Mapping:
    """A compiled mapping: call it with one record, or use `many` for a batch."""

    __slots__ = ("_fn", "_key", "name", "source_code", "spec")

    def __init__(
        self, spec: MappingSpec, fn: Callable[[Any], dict[str, Any]], key: Callable[[Any], Any], source: str
    ):
        self.spec = spec
        self.name = spec.name
        self.source_code = source
        self._fn = fn
        self._key = key

    def __call__(self, record: Any) -> dict[str, Any]:
        return self._fn(record)

    def key_of(self, record: Any) -> Any:
        """The record's key (the spec's `key:` path), for logs and per-record results."""
        try:
            return self._key(record)
        except Exception:
            return None

    def many(self, records: Iterable[Any]) -> BulkResult:
        """Map every record; a bad record becomes an error (with its index) and the others carry on."""
        fn = self._fn
        out: list[dict[str, Any]] = []
        errors: list[MappingError] = []
        append = out.append
        for position, record in enumerate(records):
            try:
                append(fn(record))
            except MappingError as error:
                error.index = position
                errors.append(error)
        return BulkResult(records=out, errors=errors)

    def __repr__(self) -> str:
        return f"<Mapping {self.name!r}: {len(self.spec.fields)} fields>"


def compile_mapping(source: Any, tables: Tables | None = None) -> Mapping:
    """Check and compile a spec (a MappingSpec, dict, YAML/JSON text or path) into a Mapping.

    `tables` adds lookup tables to (and overrides) the spec's inline `tables:`.
    """
    document_spec = source if isinstance(source, MappingSpec) else None
    merged_names = None
    if document_spec is None:
        spec, issues = parse_spec(read_document(source))
    else:
        spec, issues = document_spec, Issues()
    merged: Tables = {**spec.tables, **(tables or {})}
    merged_names = set(merged)
    check_spec(spec, issues, merged_names)
    if issues.items:
        raise MappingSpecError(issues.items)
    order = evaluation_order(spec.fields, Issues())
    try:
        fn, key, code = build(spec, merged, order)
    except (SyntaxError, RecursionError, MemoryError) as exc:
        # The checks above keep nesting within what Python compiles; this is the net under them.
        reason = exc.msg if isinstance(exc, SyntaxError) else type(exc).__name__
        raise MappingSpecError(
            [SpecIssue("", f"the spec is too large or nests too deeply to compile ({reason}); split it up")]
        ) from None
    return Mapping(spec, fn, key, code)
