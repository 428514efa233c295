"""kuaidi100 connector: express tracking on the canonical Tracking record."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from gateway.connectors.base import ConnectionConfig, Connector, OperationInfo, Record, load_mappings
from gateway.connectors.kuaidi100.client import SYSTEM, Kd100Client
from gateway.errors import InvalidParameter, UnigateError, VendorError
from gateway.upstream import Upstream

MAPPINGS = Path(__file__).parent / "mappings"
# Carriers that refuse a query without the receiver's phone (last four digits), per protocols.md 3.
PHONE_REQUIRED = frozenset({"shunfeng", "shunfengkuaiyun", "zhongtong"})
BAD_REQUEST, PHONE_CHECK_FAILED = "400", "408"
QUERY = OperationInfo(
    name="query",
    role="enrich",
    title="Real-time tracking of one waybill (the raw kuaidi100 answer)",
    key="nu",
    params={
        "com": "kuaidi100 carrier code (zhongtong, ...)",
        "num": "waybill number",
        "phone": "receiver phone",
    },
    fields={
        name: "string"
        for name in (
            "message",
            "nu",
            "ischeck",
            "com",
            "status",
            "data",
            "state",
            "condition",
            "routeInfo",
            "isLoop",
        )
    },
)


class Kuaidi100Connector(Connector):
    system: ClassVar[str] = SYSTEM
    operations: ClassVar[tuple[OperationInfo, ...]] = (QUERY,)

    def __init__(self, config: ConnectionConfig, upstream: Upstream) -> None:
        super().__init__(config, upstream)
        for field in ("customer", "key"):
            if not config.credentials.get(field):
                raise InvalidParameter(f"credentials.{field}", f"a kuaidi100 connection needs {field}")
        self.client = Kd100Client(
            base_url=config.base_url,
            customer=config.credentials["customer"],
            key=config.credentials["key"],
            upstream=upstream,
            target=self.target,
        )
        self.mappings = load_mappings(MAPPINGS, ["tracking"])

    async def track(self, carrier: str, tracking_no: str, phone: str | None) -> Record:
        if len(tracking_no) > 32:
            raise InvalidParameter("tracking_no", "tracking_no is at most 32 characters")
        if phone:
            phone = phone[-4:]
        try:
            answer = await self.client.query(carrier.lower(), tracking_no, phone)
        except VendorError as exc:
            raise _refused(exc, carrier) from None
        record = self.mappings["tracking"](answer)
        record.update(
            connection=self.name, carrier=carrier.lower(), tracking_no=tracking_no, remote_data=answer
        )
        return record

    async def check(self) -> Record:
        # A query for a number no carrier knows proves the sign and credentials without a real waybill.
        try:
            await self.client.query("zhongtong", "0000000000", "0000")
        except VendorError as exc:
            if exc.vendor_code in {"500", "400", "408"}:  # the vendor checked our sign, then found nothing
                return {"ok": True, "vendor": {"code": exc.vendor_code, "message": exc.vendor_message}}
            raise
        return {"ok": True, "vendor": {"code": "200", "message": "ok"}}

    async def enrich(self, operation: str, inputs: dict[str, Any]) -> Record:
        """kuaidi100's own answer for one waybill (`com`, `num`, optional `phone`), unmapped."""
        self.operation(operation, "enrich")
        com, num = str(inputs.get("com") or "").lower(), str(inputs.get("num") or "")
        if not com or not num:
            raise InvalidParameter("enrich.inputs", "a kuaidi100 query needs com and num")
        phone = str(inputs.get("phone") or "")[-4:] or None
        return await self.client.query(com, num, phone)


def _refused(exc: VendorError, carrier: str) -> UnigateError:
    """kuaidi100's refusals of what the caller sent, as invalid_parameter naming it (the answer kept as
    `vendor`): an unknown carrier code (400 找不到对应公司) and a phone that does not check (408)."""
    vendor = exc.extra["vendor"]  # as VendorError keeps it
    if exc.vendor_code == BAD_REQUEST and "公司" in exc.vendor_message:
        detail = f"kuaidi100 has no carrier {carrier!r}; use kuaidi100's codes (zhongtong, shunfeng, ...)"
        return InvalidParameter("carrier", detail, vendor=vendor)
    if exc.vendor_code == PHONE_CHECK_FAILED:
        needs = ", ".join(sorted(PHONE_REQUIRED))
        detail = f"kuaidi100 could not check the receiver's phone ({needs} need it, or its last four digits)"
        return InvalidParameter("phone", detail, vendor=vendor)
    return exc
