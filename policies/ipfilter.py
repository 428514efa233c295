"""Policy: per-consumer IP allow and deny lists (CIDR), checked against the caller's real address.

Schema: lists of CIDR strings (`parse_networks`). Handler: `IpFilter` answers 403 `ip_forbidden`
when the address is denied, or when an allow list exists and the address is not on it (deny wins).
Behind a load balancer the peer is the balancer: only peers in UNIGATE_TRUSTED_PROXIES are believed
about `X-Forwarded-For`, read from the right, skipping trusted hops.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.errors import IpForbidden
from gateway.store.snapshot import Snapshot
from policies.chain import Context, Gate
from policies.config import invalid

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_RULES = 1000


def parse_networks(values: Iterable[str], field: str) -> list[str]:
    """CIDRs (`10.0.0.0/8`, `2001:db8::/32`) or single addresses, normalized; the bad one named."""
    networks = []
    for n, value in enumerate(values):
        try:
            networks.append(str(ipaddress.ip_network(str(value).strip(), strict=False)))
        except ValueError:
            raise invalid(
                f"{field}[{n}]", f"{value!r} is not an IP address or CIDR range like 10.0.0.0/8"
            ) from None
    if len(networks) > MAX_RULES:
        raise invalid(field, f"at most {MAX_RULES} ranges")
    return networks


def address_of(text: str) -> Address | None:
    """An address as a peer or a forwarding hop gives it: bare, or with the port some load balancers add
    (`203.0.113.9:51234`, `[2001:db8::1]:443`)."""
    text = text.strip().strip('"')
    address: Address | None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = _without_port(text)
    if address is None:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _without_port(text: str) -> Address | None:
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not (rest[:1] == ":" and rest[1:].isdigit())):
            return None
    else:
        host, colon, port = text.rpartition(":")
        if not colon or not port.isdigit() or ":" in host:  # a bare IPv6 address parsed already
            return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class Proxies:
    """The load balancers whose forwarding headers are believed."""

    def __init__(self, cidrs: Sequence[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)

    def trusts(self, address: Address | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def forwarded_https(self, peer: str | None, forwarded_proto: str | None) -> bool:
        """A trusted proxy that terminated TLS for this request says so in X-Forwarded-Proto."""
        return (forwarded_proto or "").strip() == "https" and self.trusts(address_of(peer) if peer else None)

    def client(self, peer: str | None, forwarded_for: str | None) -> Address | None:
        """The caller's address: the peer, or the last untrusted hop it forwarded for; None when that hop
        cannot be read (`unknown`, a name): skipping it would believe what the caller wrote further left."""
        address = address_of(peer) if peer else None
        if not forwarded_for or not self.trusts(address):
            return address
        hops = [part for part in forwarded_for.split(",") if part.strip()]
        for part in reversed(hops):
            hop = address_of(part)
            if hop is None or not self.trusts(hop):
                return hop
        return address_of(hops[0]) if hops else address


@dataclass(frozen=True, slots=True)
class IpRules:
    allow: tuple[Network, ...]
    deny: tuple[Network, ...]


class IpFilter(Gate):
    """Policy: refuse callers whose address the consumer's rules exclude."""

    def __init__(self, proxies: Proxies) -> None:
        self.proxies = proxies
        self._snapshot: Snapshot | None = None
        self._rules: dict[int, IpRules] = {}

    def rules_for(self, snapshot: Snapshot, consumer_id: int) -> IpRules | None:
        if snapshot is not self._snapshot:  # compiled once per config snapshot
            self._rules = {
                entry.consumer_id: IpRules(
                    tuple(ipaddress.ip_network(c) for c in entry.ip_allow),
                    tuple(ipaddress.ip_network(c) for c in entry.ip_deny),
                )
                for entry in snapshot.consumer_policies.values()
                if entry.ip_allow or entry.ip_deny
            }
            self._snapshot = snapshot
        return self._rules.get(consumer_id)

    def before(self, ctx: Context) -> None:
        assert ctx.consumer is not None
        rules = self.rules_for(ctx.snapshot, ctx.consumer.id)
        if rules is not None:
            address = self.proxies.client(ctx.client_ip, ctx.headers.get("x-forwarded-for"))
            if address is None:
                raise IpForbidden(
                    "the caller's address is unknown, and this application only accepts listed ones"
                )
            if any(address in network for network in rules.deny):
                raise IpForbidden(f"calls from {address} are denied for this application")
            if rules.allow and not any(address in network for network in rules.allow):
                raise IpForbidden(f"{address} is not on this application's list of allowed addresses")
