"""The client address behind trusted proxies, and the start-up checks of the throttle settings."""
from __future__ import annotations

import pytest

from nexus_pyramid import settings as nexus_settings
from nexus_pyramid.client_address import parse_trusted_proxies, resolve
from nexus_pyramid.services.ratelimit import address_key

TRUSTED = parse_trusted_proxies("10.0.0.0/8, 192.0.2.7, 2001:db8:1::/48")


@pytest.mark.parametrize("remote_addr, forwarded_for, expected", [
    # No trusted proxy, or an untrusted peer: the header is not read.
    ("198.51.100.1", "203.0.113.9", "198.51.100.1"),
    ("192.0.2.8", "203.0.113.9", "192.0.2.8"),
    # A trusted peer: walk from the right, skipping trusted hops.
    ("192.0.2.7", "203.0.113.9", "203.0.113.9"),
    ("10.1.1.1", "203.0.113.9, 10.2.2.2, 10.3.3.3", "203.0.113.9"),
    # Whatever the client wrote on the left is ignored.
    ("10.1.1.1", "1.2.3.4, 5.6.7.8, 203.0.113.9, 10.2.2.2", "203.0.113.9"),
    # A trusted peer without the header, or only trusted hops: the leftmost trusted one.
    ("10.1.1.1", None, "10.1.1.1"),
    ("10.1.1.1", "10.9.9.9", "10.9.9.9"),
    # Garbage from a trusted hop stops the walk at the last address it could vouch for.
    ("10.1.1.1", "203.0.113.9, not-an-address", "10.1.1.1"),
    ("10.1.1.1", "203.0.113.9, not-an-address, 10.2.2.2", "10.2.2.2"),
    # Ports and brackets as some proxies write them; IPv4-mapped IPv6 is IPv4.
    ("10.1.1.1", "203.0.113.9:4711", "203.0.113.9"),
    ("10.1.1.1", "[2001:db8:9::1]:443", "2001:db8:9::1"),
    ("::ffff:10.1.1.1", "203.0.113.9", "203.0.113.9"),
    ("::ffff:198.51.100.1", None, "198.51.100.1"),
    # IPv6 proxies given as a CIDR network.
    ("2001:db8:1::5", "2001:db8:2::1", "2001:db8:2::1"),
    ("2001:db8:2::5", "2001:db8:3::1", "2001:db8:2::5"),
    # No peer address at all.
    (None, "203.0.113.9", ""),
])
def test_client_address(remote_addr, forwarded_for, expected):
    assert resolve(remote_addr, forwarded_for, TRUSTED) == expected


def test_forwarded_for_is_never_read_without_trusted_proxies():
    assert resolve("10.1.1.1", "203.0.113.9", parse_trusted_proxies("")) == "10.1.1.1"


def test_ipv6_clients_are_counted_per_64():
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("198.51.100.1") == "198.51.100.1"
    assert address_key("") == "unknown"


BASE = {"sqlalchemy.url": "sqlite://", "jwt.secret": "development-only-x"}


@pytest.mark.parametrize("setting, value, message", [
    ("nexus.trusted_proxies", "10.0.0.0/8, proxy.internal", "'proxy.internal' is not an IP address"),
    ("nexus.trusted_proxies", "10.0.0.1/8", "'10.0.0.1/8'"),  # host bits set: say 10.0.0.0/8
    ("auth.login_limit_per_account", "lots", "auth.login_limit_per_account"),
    ("auth.register_limit_per_address", "10 per fortnight", "auth.register_limit_per_address"),
    ("auth.argon2.max_concurrent", "0", "auth.argon2.max_concurrent"),
    ("auth.argon2.max_wait", "-1", "auth.argon2.max_wait"),
    ("auth.login_limit_per_email", "5/minute", "replaced by 'auth.login_limit_per_account'"),
    ("nexus.trust_x_forwarded_for", "true", "replaced by 'nexus.trusted_proxies'"),
])
def test_bad_throttle_settings_are_refused_at_start_up(setting, value, message):
    with pytest.raises(nexus_settings.ConfigurationError, match=message.replace("(", r"\(").replace(".", r"\.")):
        nexus_settings.load({**BASE, setting: value}, {})


def test_trusted_proxies_come_from_the_environment():
    loaded = nexus_settings.load(BASE, {"NEXUS_TRUSTED_PROXIES": "10.0.0.0/8,192.0.2.7"})
    assert parse_trusted_proxies(loaded["nexus.trusted_proxies"]) == parse_trusted_proxies("10.0.0.0/8, 192.0.2.7")
    with pytest.raises(nexus_settings.ConfigurationError, match="NEXUS_TRUSTED_PROXIES"):
        nexus_settings.load(BASE, {"NEXUS_TRUSTED_PROXIES": "10.0.0.0/33"})
