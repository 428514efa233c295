"""Wangdiantong enterprise (openapi2) request signing, shared by the client and the simulator."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def pack(params: Mapping[str, str]) -> str:
    """`LL-key:VVVV-value` pairs in ASCII key order, joined with `;` (lengths count characters)."""
    return ";".join(
        f"{len(key):02d}-{key}:{len(value):04d}-{value}"
        for key, value in sorted((k, v) for k, v in params.items() if k != "sign")
    )


def sign(params: Mapping[str, str], appsecret: str) -> str:
    """The lowercase MD5 hex of the packed params followed directly by the app secret."""
    return hashlib.md5((pack(params) + appsecret).encode("utf-8")).hexdigest()
