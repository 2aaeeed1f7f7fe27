"""The client address: normalised, grouped, and taken from X-Forwarded-For only via trusted hops."""

from __future__ import annotations

import re
from typing import Any

import pytest

from {{ cookiecutter.project_slug }}.core.client_ip import (
    ClientAddressResolver,
    address_group,
    parse_address,
    parse_networks,
)


def scope(peer: str | None, *forwarded: str) -> dict[str, Any]:
    return {
        "client": (peer, 50000) if peer else None,
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }


class TestNormalisation:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("192.0.2.1", "192.0.2.1"),
            (" 192.0.2.1 ", "192.0.2.1"),
            ("192.0.2.1:8080", "192.0.2.1"),
            ("::ffff:192.0.2.1", "192.0.2.1"),
            ("[2001:db8::1]:443", "2001:db8::/64"),
            ("2001:db8:0:0:ffff::1", "2001:db8::/64"),
            ("2001:DB8::abcd", "2001:db8::/64"),
        ],
    )
    def test_addresses_are_normalised_and_grouped(self, raw: str, expected: str) -> None:
        address = parse_address(raw)
        assert address is not None
        assert address_group(address) == expected

    @pytest.mark.parametrize("raw", ["", "unknown", "example.com", "999.1.1.1", "1.2.3.4.5"])
    def test_garbage_is_not_an_address(self, raw: str) -> None:
        assert parse_address(raw) is None

    def test_a_thousand_addresses_of_one_64_are_one_group(self) -> None:
        groups = {address_group(parse_address(f"2001:db8:1:2::{n:x}")) for n in range(1000)}  # type: ignore[arg-type]
        assert groups == {"2001:db8:1:2::/64"}

    def test_a_bad_network_is_named(self) -> None:
        with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33'")):
            parse_networks(["10.0.0.0/8", "10.0.0.0/33"])


class TestForwardedFor:
    def test_no_trusted_proxy_ignores_the_header_even_from_loopback(self) -> None:
        resolver = ClientAddressResolver()
        assert resolver.client_key(scope("127.0.0.1", "203.0.113.9")) == "ip:127.0.0.1"

    def test_an_untrusted_peer_cannot_spoof(self) -> None:
        resolver = ClientAddressResolver(["10.0.0.0/8"])
        assert resolver.client_key(scope("198.51.100.7", "203.0.113.9")) == "ip:198.51.100.7"

    def test_behind_one_trusted_proxy_the_rightmost_entry_is_the_client(self) -> None:
        resolver = ClientAddressResolver(["10.0.0.1"])
        forwarded = scope("10.0.0.1", "6.6.6.6, 203.0.113.9")  # the client wrote 6.6.6.6
        assert resolver.client_key(forwarded) == "ip:203.0.113.9"

    def test_the_walk_goes_through_every_trusted_hop(self) -> None:
        resolver = ClientAddressResolver(["10.0.0.0/8", "::1"])
        forwarded = scope("::1", "6.6.6.6, 203.0.113.9", "10.1.1.1, 10.2.2.2")
        assert resolver.client_key(forwarded) == "ip:203.0.113.9"

    def test_garbage_left_of_trusted_hops_stops_the_walk(self) -> None:
        resolver = ClientAddressResolver(["10.0.0.0/8"])
        assert resolver.client_key(scope("10.0.0.1", "bogus, 10.0.0.2")) == "ip:10.0.0.2"

    def test_only_trusted_hops_yield_the_leftmost(self) -> None:
        resolver = ClientAddressResolver(["10.0.0.0/8"])
        assert resolver.client_key(scope("10.0.0.1", "10.0.0.3, 10.0.0.2")) == "ip:10.0.0.3"

    def test_an_ipv6_client_is_keyed_by_its_64(self) -> None:
        resolver = ClientAddressResolver(["10.0.0.0/8"])
        assert resolver.client_key(scope("10.0.0.1", "2001:db8:5::77")) == "ip:2001:db8:5::/64"

    def test_an_ipv4_mapped_peer_counts_as_ipv4(self) -> None:
        resolver = ClientAddressResolver(["192.0.2.0/24"])
        assert resolver.client_key(scope("::ffff:192.0.2.1", "203.0.113.9")) == "ip:203.0.113.9"

    def test_no_peer_is_unknown(self) -> None:
        assert ClientAddressResolver().client_key(scope(None)) == "ip:unknown"
