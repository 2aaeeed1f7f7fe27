"""Who is calling, by network address, in a form fit to key rate limits on.

`X-Forwarded-For` is written by whoever sends it, so it is believed only hop by hop from the
right: starting at the TCP peer, each address that is a trusted proxy hands over to the address
it reports. The first untrusted address is the client. With no trusted proxies (the default) the
header is ignored and the TCP peer is the client, even on loopback. (The server's own forwarded-
header handling, `uvicorn --forwarded-allow-ips`, must trust the same networks; the CLI's `serve`
passes TRUSTED_PROXIES to it.)

IPv6 clients usually control a whole /64, so they are grouped by it; IPv4-mapped IPv6 addresses
(`::ffff:1.2.3.4`, from dual-stack sockets) count as the IPv4 address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPV6_GROUP_PREFIX = 64


def parse_networks(
    values: Iterable[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """`["10.0.0.0/8", "::1"]` into networks; raises ValueError naming a bad entry."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or network (CIDR)") from None
    return tuple(networks)


def parse_address(value: str) -> IPAddress | None:
    """An address from a header or the ASGI scope, normalised; None when it is not one."""
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "192.0.2.1:443"
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_group(address: IPAddress) -> str:
    """The rate-limit identity of an address: itself for IPv4, its /64 network for IPv6."""
    if isinstance(address, ipaddress.IPv4Address):
        return str(address)
    return str(ipaddress.IPv6Network((address, IPV6_GROUP_PREFIX), strict=False))


class ClientAddressResolver:
    """Finds the client's address in an ASGI scope, believing only `trusted_proxies`."""

    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        self.trusted = parse_networks(trusted_proxies)

    def is_trusted(self, address: IPAddress) -> bool:
        return any(address in network for network in self.trusted)

    def client_address(self, scope: dict[str, Any] | Any) -> IPAddress | None:
        """None when the peer is unknown (a Unix socket without trusted proxies)."""
        client = scope.get("client")
        peer = parse_address(client[0]) if client else None
        if peer is None or not self.trusted or not self.is_trusted(peer):
            return peer
        hops: list[str] = []
        for name, value in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                hops.extend(value.decode("latin-1").split(","))
        address = peer
        for hop in reversed(hops):
            reported = parse_address(hop)
            if reported is None:
                break  # garbage left of a trusted hop: the last good address is the client
            address = reported
            if not self.is_trusted(address):
                break
        return address

    def client_key(self, scope: dict[str, Any] | Any) -> str:
        """`ip:<address or /64>`, or `ip:unknown` when there is no peer address."""
        address = self.client_address(scope)
        return "ip:" + (address_group(address) if address is not None else "unknown")
