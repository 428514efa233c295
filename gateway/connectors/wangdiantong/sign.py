"""Wangdiantong enterprise (openapi2) request signing, shared by the client and the simulator."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def pack_pair(key: str, value: str) -> str:
    """One pair as the sign packs it: `LL-key:VVVV-value` (lengths count characters)."""
    return f"{len(key):02d}-{key}:{len(value):04d}-{value}"


def pack(params: Mapping[str, str]) -> str:
    """The pairs in ASCII key order, joined with `;`."""
    return ";".join(pack_pair(key, value) for key, value in sorted(params.items()) if key != "sign")


def sign_packed(packed: str, appsecret: str) -> str:
    """The lowercase MD5 hex of the packed params followed directly by the app secret."""
    return hashlib.md5((packed + appsecret).encode("utf-8")).hexdigest()


def sign(params: Mapping[str, str], appsecret: str) -> str:
    return sign_packed(pack(params), appsecret)
