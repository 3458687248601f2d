"""The client's address: the peer's, or what a trusted proxy says the client's was.

``X-Forwarded-For`` is a list that every proxy appends the address of its own peer to,
so only its right end can be believed, and only as far as the hops that appended it are
ours. The peer (``REMOTE_ADDR``) must be in ``nexus.trusted_proxies`` for the header to
be read at all; then the list is walked from the right, skipping trusted hops, and the
first untrusted address is the client's. Entries left of it were written by the client
(or by proxies it chose) and are ignored, so a spoofed leftmost entry changes nothing.

Every throttle keys on ``request.client_address``; logs and sessions should use it too.
"""
from __future__ import annotations

import ipaddress

from .interfaces import ITrustedProxies

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TrustedProxiesError(ValueError):
    """A ``nexus.trusted_proxies`` entry that is neither an address nor a network."""


def parse_trusted_proxies(value) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 192.0.2.7, ::1"`` -> networks. Raises TrustedProxiesError naming a bad entry."""
    networks = []
    for entry in str(value or "").replace("\n", ",").split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError as exc:
            raise TrustedProxiesError(
                f"nexus.trusted_proxies (NEXUS_TRUSTED_PROXIES): {entry!r} is not an IP address or a CIDR "
                f"network ({exc}). Give comma-separated addresses or networks, e.g. '10.0.0.0/8, 192.0.2.7'."
            ) from None
    return tuple(networks)


def parse_address(value: str | None) -> Address | None:
    """An address as a peer or a proxy writes it; ``None`` if it is not one.

    Accepts a bare address, ``[v6]``, ``[v6]:port`` and ``v4:port`` (some proxies add the
    port); IPv4-mapped IPv6 addresses become IPv4, so that one client has one spelling.
    """
    text = (value or "").strip()
    if not text:
        return None
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # v4:port (a bare IPv6 address has at least two colons)
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def resolve(remote_addr: str | None, forwarded_for: str | None, networks: tuple[Network, ...]) -> str:
    """The client's address as text ("" when the peer's is unknown)."""
    peer = parse_address(remote_addr)
    if peer is None:
        return (remote_addr or "").strip()[:64]
    if not networks or not forwarded_for or not _trusted(peer, networks):
        return str(peer)
    client = peer
    for entry in reversed(forwarded_for.split(",")):
        hop = parse_address(entry)
        if hop is None:
            # A trusted proxy wrote something that is not an address: believe nothing
            # further left, and stay with the last hop we could vouch for.
            break
        client = hop
        if not _trusted(hop, networks):
            break
    return str(client)


def client_address(request) -> str:
    """The request's client address (reified as ``request.client_address``)."""
    networks = request.find_service(ITrustedProxies, context=None)
    return resolve(request.remote_addr, request.headers.get("X-Forwarded-For"), networks)


def includeme(config):
    config.register_service(parse_trusted_proxies(config.get_settings().get("nexus.trusted_proxies")),
                            ITrustedProxies)
    config.add_request_method(client_address, "client_address", reify=True)
