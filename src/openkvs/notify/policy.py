"""Where callbacks may go: the form of a callback URL and the addresses it may reach.

Pure code: name resolution is passed in, so the same rules serve task creation (a bounded
look-up, :func:`check_callback_url`) and delivery (the sender resolves once, checks every
address with :meth:`AddressPolicy.refusal` and connects only to an address it checked).

Refused by default: loopback, link-local, private, shared (100.64.0.0/10), unspecified,
multicast and reserved addresses, the IPv6 forms that embed such an IPv4 address, and the
names of cloud metadata services. The operator lifts the address rules for chosen ranges
(``OPENKVS_CALLBACK_ALLOW``); metadata names stay refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

#: The longest callback URL accepted.
MAX_URL_LENGTH = 2048


class CallbackRefused(ValueError):
    """A callback destination that may not be used; the message says why."""


class UnusableUrl(CallbackRefused):
    """The URL itself cannot be used (form, scheme, credentials, host, port): it never will."""


class AddressRefused(CallbackRefused):
    """The destination is, or resolves to, an address or name the policy refuses."""


#: Names of cloud metadata services (and the like): refused whatever they resolve to.
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "metadata.tencentyun.com",
        "instance-data",
        "instance-data.ec2.internal",
        "kubernetes.default",
        "kubernetes.default.svc",
    }
)

#: Refused address ranges, named for the messages. ``ipaddress``'s own flags (private,
#: reserved, not global, ...) are checked as well, so this list is the documented minimum.
REFUSED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ip_network(net), why)
    for net, why in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "reserved"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible"),
        ("100::/64", "discard"),
        ("2001::/23", "reserved"),
        ("2001:db8::/32", "documentation"),
        ("fc00::/7", "private (unique local)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)

_NAT64 = (ip_network("64:ff9b::/96"), ip_network("64:ff9b:1::/48"))
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")


@dataclass(frozen=True)
class Target:
    """A callback URL taken apart: what the sender connects to and what it sends."""

    scheme: str  # http or https
    host: str  # lower case, without brackets or a trailing dot
    port: int
    target: str  # the request target: path and query
    literal: IPAddress | None  # the host when it is an address

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the host as named, with the port when it is not the default."""
        host = f"[{self.host}]" if isinstance(self.literal, IPv6Address) else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_callback_url(url: str) -> Target:
    """Take a callback URL apart, or raise :class:`UnusableUrl` saying what is wrong.

    Only printable ASCII without spaces (percent-encode anything else; international names
    in their ``xn--`` form), http or https, a host, no credentials, a port in 1-65535. A host
    name must be a DNS name: numeric forms such as ``2130706433`` or ``0x7f.1`` (which
    resolvers turn into addresses) are refused; addresses are written in full.
    """
    if len(url) > MAX_URL_LENGTH:
        raise UnusableUrl(f"is longer than {MAX_URL_LENGTH} characters")
    for char in url:
        if ord(char) > 0x7E:
            raise UnusableUrl("must be ASCII (percent-encode other characters)")
        if ord(char) <= 0x20 or char == "\x7f":
            raise UnusableUrl("must not contain spaces or control characters")
    if "\\" in url:
        raise UnusableUrl("must not contain a backslash")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnusableUrl(f"is not a usable URL ({exc})") from exc
    if parts.scheme not in ("http", "https"):
        raise UnusableUrl("must be an http:// or https:// URL")
    if "@" in parts.netloc:
        raise UnusableUrl("must not carry credentials (user:password@)")
    host = parts.hostname or ""
    if not host:
        raise UnusableUrl("has no host")
    if port == 0:
        raise UnusableUrl("has a bad port")
    literal = _literal(host, bracketed="[" in parts.netloc)
    if literal is None:
        host = host.removesuffix(".")
        _check_name(host)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not target.startswith("/"):
        raise UnusableUrl("is not a usable URL")
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, host, port or default, target, literal)


def _literal(host: str, *, bracketed: bool) -> IPAddress | None:
    if bracketed and "%" in host:
        raise UnusableUrl("must not name an IPv6 zone")
    try:
        address = ip_address(host)
    except ValueError:
        if bracketed:
            raise UnusableUrl("has a bad IPv6 address") from None
        return None
    if isinstance(address, IPv6Address) != bracketed:
        raise UnusableUrl("has a bad host")
    return address


def _check_name(host: str) -> None:
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise UnusableUrl("has a bad host name")
    if _NUMERIC_LABEL.match(labels[-1]):
        raise UnusableUrl("has a host that is neither a DNS name nor a full IP address")


#: What ``localhost`` names stand for (RFC 6761), whatever a resolver says at creation.
LOOPBACK: list[IPAddress] = [IPv4Address("127.0.0.1"), IPv6Address("::1")]


def is_localhost(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost")


def is_refused_name(host: str) -> str | None:
    """Why a host name is refused whatever it resolves to, or None."""
    if host in METADATA_NAMES:
        return "is a cloud metadata name"
    return None


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address that 6to4 and Teredo forms lead to."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def _why_special(address: IPAddress) -> str | None:
    for net, why in REFUSED_NETWORKS:
        if address.version == net.version and address in net:
            return why
    if address.is_multicast:
        return "multicast"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


def _is_literal(host: str, address: IPAddress) -> bool:
    try:
        return ip_address(host) == address
    except ValueError:
        return False


@dataclass(frozen=True)
class AddressPolicy:
    """The address rules, with the ranges the operator allows (``OPENKVS_CALLBACK_ALLOW``)."""

    allow: tuple[IPNetwork, ...] = ()

    def _allowed(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.allow)

    def refusal(self, address: IPAddress) -> str | None:
        """Why a callback may not go to ``address``, or None when it may."""
        if self._allowed(address):
            return None
        if isinstance(address, IPv6Address):
            # Forms that reach an IPv4 address directly are judged by that address.
            if address.ipv4_mapped is not None:
                why = self.refusal(address.ipv4_mapped)
                return None if why is None else f"{why} (IPv4-mapped)"
            if any(address in net for net in _NAT64):
                target = IPv4Address(int(address) & 0xFFFFFFFF)
                why = self.refusal(target)
                return None if why is None else f"{why} (NAT64 of {target})"
        why = _why_special(address)
        if why is not None:
            return why
        if isinstance(address, IPv6Address):
            embedded = _embedded_ipv4(address)
            if embedded is not None:
                inner = self.refusal(embedded)
                if inner is not None:
                    return f"{inner} (embedded IPv4 {embedded})"
        return None

    def check_addresses(self, host: str, addresses: Iterable[IPAddress]) -> None:
        """Raise :class:`AddressRefused` unless every address of ``host`` may be reached
        (one refused address refuses the name: a resolver may answer with any of them)."""
        seen = False
        for address in addresses:
            seen = True
            why = self.refusal(address)
            if why is not None:
                shown = (
                    host if _is_literal(host, address) else f"{host} resolves to {address}, which"
                )
                raise AddressRefused(f"{shown} is {why}; not allowed for callbacks")
        if not seen:
            raise AddressRefused(f"{host} has no address")

    def check_target(self, target: Target) -> None:
        """The checks that need no look-up: refused names and refused literal addresses."""
        why = is_refused_name(target.host)
        if why is not None:
            raise AddressRefused(f"{target.host} {why}; not allowed for callbacks")
        if target.literal is not None:
            self.check_addresses(target.host, [target.literal])


#: ``resolve(host)``: the addresses of a name, or None when the look-up failed or took too
#: long (the name is then checked again at delivery).
Resolve = Callable[[str], list[IPAddress] | None]


def check_callback_url(url: str, policy: AddressPolicy, resolve: Resolve) -> Target:
    """The checks at task creation: the URL's form, its name or address, and the addresses
    the name resolves to now. A name that does not resolve (yet) is accepted; delivery checks
    it again. Raises :class:`CallbackRefused`."""
    target = parse_callback_url(url)
    policy.check_target(target)
    if target.literal is None:
        addresses = LOOPBACK if is_localhost(target.host) else resolve(target.host)
        if addresses is not None:
            policy.check_addresses(target.host, addresses)
    return target


def host_key(url: str) -> str:
    """The destination a callback counts against for the per-host bound. Never raises."""
    try:
        return parse_callback_url(url).host
    except CallbackRefused:
        return ""
