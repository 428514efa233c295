"""kuaidi100 real-time query signing, shared by the client and the simulator."""

from __future__ import annotations

import hashlib


def sign(param: str, key: str, customer: str) -> str:
    """UPPER(MD5(param + key + customer)), where `param` is the exact JSON string sent."""
    return hashlib.md5((param + key + customer).encode("utf-8")).hexdigest().upper()
