"""What a spec reads of its source record, as a tree, and a msgspec type that decodes only that.

A vendor record carries far more than a mapping uses (a Wangdiantong stockout: 152 fields, of which the
canonical mapping reads 34). Decoding JSON straight into `source_type(spec)` builds only the values the
mapping reads, with the same values a plain decode gives them, so the mapping's output is the same.
"""

from __future__ import annotations

from typing import Any, TypedDict

from gateway.mapping.formula import Formula
from gateway.mapping.paths import Path
from gateway.mapping.spec import FieldSpec, MappingSpec

# A node of the read tree: key -> child node; ITEMS is "the items of this list"; WHOLE means the value is
# read as it is (copied, counted, compared), so everything under it must be decoded.
ITEMS = "[]"
WHOLE: dict[str, Any] = {}
ReadTree = dict[str, Any]


def read_tree(spec: MappingSpec) -> ReadTree:
    """The source paths `spec` reads, merged into one tree rooted at the record."""
    root: ReadTree = {}
    if spec.key is not None:
        _add(spec.key, [root])
    _fields(spec.fields, [root])
    return root


def source_type(spec: MappingSpec) -> Any:
    """A msgspec-decodable type for the record: TypedDicts (every key optional) of what the spec reads."""
    return _type_of(read_tree(spec), spec.name)


def _fields(fields: tuple[FieldSpec, ...], scopes: list[ReadTree]) -> None:
    """Walk fields with the scopes the generated code gives them (innermost last, as in compile.py)."""
    for field in fields:
        for path in (*field.concat, *(part.path for part in field.template if part.path is not None)):
            _add(path, scopes)
        if not (field.is_object or field.each is not None):
            for path in field.sources:
                _add(path, scopes)
        for formula in (field.expr, field.when):
            _formula(formula, scopes)
        if field.each is not None:
            items = _items(_add(field.each, scopes, container=True))
            _formula(field.filter, [*scopes, items])
            _fields(field.fields, [*scopes, items])
        elif field.is_object:
            # A nested object reads from its own source when it names one, else from the same record.
            if field.sources:
                node = _add(field.sources[0], scopes, container=True)
                # (a `$target.` object is not the source's: what its fields read goes to a detached tree)
                _fields(field.fields, [*scopes, {} if node is None else node])
            else:
                _fields(field.fields, scopes)


def _formula(formula: Formula | None, scopes: list[ReadTree]) -> None:
    """A reference inside `sum(list, ...)` reads the list's items: its scopes gain one per list."""
    if formula is None:
        return
    for ref in formula.references:
        inner = list(scopes)
        for listed in ref.within:
            inner.append(_items(_add(listed, inner, container=True)))
        _add(ref.path, inner, container=ref.is_list)


def _items(node: ReadTree | None) -> ReadTree:
    """The tree of a list's items; a `$target.` list's items are not the source's (a detached tree)."""
    if node is None:
        return {}
    if node is WHOLE:
        return WHOLE
    items: ReadTree = node.setdefault(ITEMS, {})
    return items


def _add(path: Path, scopes: list[ReadTree], container: bool = False) -> ReadTree | None:
    """Add `path` to the tree of the scope it reads; the node it ends on (None for `$target.` paths).
    A `container` (a list walked by `each:`, an object with fields of its own) is read by its parts."""
    if path.scope == "target":
        return None
    if path.scope == "root":
        node = scopes[0]
    elif path.scope == "parent":
        node = scopes[max(0, len(scopes) - 1 - path.up)]
    else:
        node = scopes[-1]
    for position, step in enumerate(path.steps):
        if node is WHOLE:
            return WHOLE
        key = step if isinstance(step, str) and not step.startswith("[") else ITEMS
        last = position == len(path.steps) - 1
        if last and not container:
            node[key] = WHOLE
            return WHOLE
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        node = child
    return node


def _type_of(node: ReadTree, name: str) -> Any:
    if node is WHOLE or not node:
        return Any
    if ITEMS in node:
        if len(node) > 1:  # read both as a list and as an object: let the mapping see it as sent
            return Any
        # None too: a vendor that sends null for an empty list must not fail the whole decode.
        return list[_type_of(node[ITEMS], name + "_item")] | None  # type: ignore[misc]
    fields = {key: _type_of(child, f"{name}_{key}") for key, child in node.items()}
    return TypedDict(_identifier(name), fields, total=False)  # type: ignore[operator]


def _identifier(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name) or "record"
