"""Wangdiantong enterprise (openapi2) wire protocol: signed form POSTs and the `{code, message}` envelope."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import lru_cache, partial
from typing import Any

import msgspec

from gateway.connectors.wangdiantong.sign import pack_pair, sign, sign_packed
from gateway.errors import UpstreamError, VendorError, VendorRateLimited
from gateway.upstream import Target, Upstream, form_body, form_pair, json_answer

SYSTEM = "wangdiantong"
# The vendor says "too frequent" in words, not with a documented code (protocols.md 1.3).
TOO_FREQUENT = "频率超限"
# The form keys the client sets itself.
_SET_HERE = frozenset(("sid", "appkey", "timestamp", "sign"))


def encode_param(value: Any) -> str:
    """Nested data goes as one JSON string with Chinese unescaped, as the vendor's PHP SDK sends it."""
    if type(value) is str:  # the common case, first
        return value
    if isinstance(value, list | dict):
        return msgspec.json.encode(value).decode()
    return str(value)


@lru_cache(maxsize=4096)
def _part(key: str, value: str) -> tuple[str, str, str]:
    """A form pair: its key, the pair as the sign packs it (sign.pack) and as the form carries it."""
    return key, pack_pair(key, value), form_pair(key, value)


class WdtClient:
    def __init__(
        self,
        *,
        base_url: str,
        sid: str,
        appkey: str,
        appsecret: str,
        upstream: Upstream,
        target: Target | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.sid = sid
        self.appkey = appkey
        self._appsecret = appsecret
        self.upstream = upstream
        # The connection's protection (caps, breaker, retries); a bare client is protected per base URL.
        self.target = target or upstream.target(self.base_url, SYSTEM)
        self.clock = clock
        self._constant = [_part("sid", sid), _part("appkey", appkey)]

    def signed_form(self, params: Mapping[str, Any]) -> dict[str, str]:
        form = {key: encode_param(value) for key, value in params.items() if value is not None}
        form.update(sid=self.sid, appkey=self.appkey, timestamp=str(int(self.clock())))
        form["sign"] = sign(form, self._appsecret)
        return form

    def signed_body(self, params: Mapping[str, Any]) -> bytes:
        """`form_body(signed_form(params))`, byte for byte, built faster: a list request signs a form on
        every call, and its parts (times, page numbers, sid, appkey) repeat from call to call, so each
        pair's packed and quoted forms are remembered (`_part`) and only joined here."""
        if not _SET_HERE.isdisjoint(params):  # the caller's own sid, timestamp...: signed_form's overwrite
            return form_body(self.signed_form(params))
        parts = [_part(key, encode_param(value)) for key, value in params.items() if value is not None]
        parts += self._constant
        parts.append(_part("timestamp", str(int(self.clock()))))
        # Sorted by key (each key once): the sign packs the pairs in key order, the form keeps them as given.
        packed = ";".join([part[1] for part in sorted(parts)])
        signature = sign_packed(packed, self._appsecret)
        return f"{'&'.join([part[2] for part in parts])}&sign={signature}".encode()

    async def call(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        idempotent: bool = True,
        decoder: msgspec.json.Decoder[Any] | None = None,
    ) -> dict[str, Any]:
        """Call `<base>/openapi2/<method>.php`; the way out retries a "too frequent" answer with backoff.
        `decoder` decodes only what the caller reads of the answer (see `json_answer`)."""
        return await self.upstream.post_form(
            self.target,
            f"{self.base_url}/openapi2/{method}.php",
            # Re-signed for each attempt: the timestamp is part of the sign.
            lambda: self.signed_body(params),
            self.read if decoder is None else partial(self.read, decoder=decoder),
            idempotent=idempotent,
        )

    @staticmethod
    def read(status: int, body: bytes, decoder: msgspec.json.Decoder[Any] | None = None) -> dict[str, Any]:
        """The envelope of a successful call, else the vendor's refusal (VendorError, VendorRateLimited)."""
        envelope = WdtClient._parse(status, body, decoder)
        code = envelope.get("code")
        if code in (0, "0"):
            return envelope
        message = str(envelope.get("message", ""))
        if TOO_FREQUENT in message:
            raise VendorRateLimited(system=SYSTEM, vendor_code=str(code), message=message)
        raise VendorError(system=SYSTEM, vendor_code=str(code), message=message)

    @staticmethod
    def _parse(status: int, body: bytes, decoder: msgspec.json.Decoder[Any] | None = None) -> dict[str, Any]:
        envelope = json_answer(SYSTEM, status, body, decoder)
        if "code" not in envelope:
            raise UpstreamError(f"{SYSTEM} answered without its envelope", system=SYSTEM)
        return envelope
