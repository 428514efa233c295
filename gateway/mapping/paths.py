"""Source paths (`a.b`, `lines[0].x`, `lines[*].x`, `$parent.x`): parsing and their schema form."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

# A step is a dict key (str), a list index (int) or every item of a list (the WILDCARD marker).
WILDCARD = "[*]"
Step = str | int

Scope = Literal["self", "parent", "root", "target"]

# Each step of a path is a nested read in the generated code, which Python compiles to 200 brackets deep.
MAX_STEPS = 32
_BRACKET = re.compile(r"\[(\*|-?\d+)\]")


class Path(msgspec.Struct, frozen=True):
    """A parsed source path. `up` counts `$parent.` hops; scope `target` reads already-mapped fields."""

    text: str
    steps: tuple[Step, ...]
    scope: Scope = "self"
    up: int = 0

    @property
    def has_wildcard(self) -> bool:
        return WILDCARD in self.steps

    def schema_key(self) -> str:
        """The names only, as schemas match them: `lines[3].x`, `lines[*].x`, `lines.x` -> `lines.x`."""
        return ".".join(step for step in self.steps if isinstance(step, str) and step != WILDCARD)


class PathSyntaxError(ValueError):
    """A path that cannot be read; the message is meant for the person who wrote the spec."""


def parse_path(text: str) -> Path:
    """Parse `a.b[0].c`, `lines[*].x`, `$parent.shop_no`, `$root.x`, `$target.order_list`."""
    if not isinstance(text, str) or not text.strip():
        raise PathSyntaxError("a source path must be a non-empty text such as 'shop_no' or 'lines[0].price'")
    rest = text.strip()
    scope: Scope = "self"
    up = 0
    while rest.startswith("$"):
        head, _, tail = rest.partition(".")
        if head == "$parent" and scope in ("self", "parent"):
            scope, up = "parent", up + 1
        elif head == "$root" and scope == "self":
            scope = "root"
        elif head == "$target" and scope == "self":
            scope = "target"
        else:
            raise PathSyntaxError(
                f"'{head}' is not understood in path '{text}'; use $parent. (the enclosing record), "
                "$root. (the top record) or $target. (a field already mapped)"
            )
        if not tail:
            raise PathSyntaxError(f"path '{text}' stops after '{head}'; name a field, e.g. '{head}.shop_no'")
        rest = tail
    steps: list[Step] = []
    for part in rest.split("."):
        name, _, brackets = part.partition("[")
        brackets = "[" + brackets if brackets else ""
        if not name and not (brackets and steps):
            raise PathSyntaxError(f"path '{text}' has an empty part; write names separated by single dots")
        if name:
            steps.append(name)
        pos = 0
        while pos < len(brackets):
            match = _BRACKET.match(brackets, pos)
            if not match:
                raise PathSyntaxError(
                    f"path '{text}' has a bracket that is not '[number]' or '[*]' (found '{brackets[pos:]}')"
                )
            token = match.group(1)
            steps.append(WILDCARD if token == "*" else int(token))
            pos = match.end()
    if len(steps) > MAX_STEPS:
        shown = text if len(text) <= 60 else text[:60] + "..."
        raise PathSyntaxError(f"path '{shown}' has {len(steps)} parts; at most {MAX_STEPS} are allowed")
    return Path(text=text, steps=tuple(steps), scope=scope, up=up)


def schema_key_of(text: str) -> str:
    """Normalize a declared schema path: `order_list.oid` and `order_list[*].oid` name the same field."""
    return parse_path(text).schema_key()
