"""kuaidi100 real-time query wire protocol: a signed form POST of one JSON `param`."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.connectors.kuaidi100.sign import sign
from gateway.errors import VendorError, VendorNotFound
from gateway.upstream import Target, Upstream, json_answer

SYSTEM = "kuaidi100"
QUERY_PATH = "/poll/query.do"
NO_RESULT = "500"  # "no result yet": the waybill is unknown to the carrier so far


class Kd100Client:
    def __init__(
        self, *, base_url: str, customer: str, key: str, upstream: Upstream, target: Target | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.customer = customer
        self._key = key
        self.upstream = upstream
        # The connection's protection (caps, breaker, retries); a bare client is protected per base URL.
        self.target = target or upstream.target(self.base_url, SYSTEM)

    def signed_form(self, param: dict[str, Any]) -> dict[str, str]:
        # The sign covers the exact string sent, so encode once and sign that.
        text = msgspec.json.encode({k: v for k, v in param.items() if v is not None}).decode()
        return {"customer": self.customer, "param": text, "sign": sign(text, self._key, self.customer)}

    async def query(self, com: str, num: str, phone: str | None = None) -> dict[str, Any]:
        form = self.signed_form(
            {"com": com, "num": num, "phone": phone, "resultv2": "4", "show": "0", "order": "desc"}
        )
        return await self.upstream.post_form(self.target, self.base_url + QUERY_PATH, lambda: form, self.read)

    @staticmethod
    def read(status: int, body: bytes) -> dict[str, Any]:
        """The answer of a successful query, else the vendor's refusal as VendorError."""
        answer = json_answer(SYSTEM, status, body)
        if answer.get("result") is False or "returnCode" in answer:
            code = str(answer.get("returnCode", ""))
            error = VendorNotFound if code == NO_RESULT else VendorError
            raise error(system=SYSTEM, vendor_code=code, message=str(answer.get("message", "")))
        return answer
