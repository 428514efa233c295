"""The mapping engine's errors: problems in a spec (found once, at load) and problems in a record."""

from __future__ import annotations

from typing import Any

import msgspec


class SpecIssue(msgspec.Struct, frozen=True):
    """One problem in a mapping spec: where it is (`fields.order_list.each.fields.num`) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class MappingSpecError(ValueError):
    """A spec that cannot be used; `issues` lists every problem found, not only the first."""

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = issues
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(f"the mapping spec has {len(issues)} problem(s):\n{lines}")


class MappingError(ValueError):
    """A record that could not be mapped: which record (`key`), which target field, and why."""

    def __init__(self, key: Any, field: str | None, message: str, index: int | None = None) -> None:
        self.key = key
        self.field = field
        self.message = message
        self.index = index
        super().__init__(message)

    def __str__(self) -> str:
        where = []
        if self.index is not None:
            where.append(f"record #{self.index}")
        if self.key is not None:
            where.append(f"key {self.key!r}")
        if self.field:
            where.append(f"field {self.field}")
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def to_dict(self) -> dict[str, Any]:
        """A plain form for run logs and problem+json bodies."""
        return {"index": self.index, "key": self.key, "field": self.field, "message": self.message}


class ValueProblem(ValueError):
    """Raised inside a compiled mapping with a plain-words message; the mapping adds key and field."""
