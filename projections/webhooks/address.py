"""The SSRF guard: a webhook may only reach the public internet, unless the deployment says otherwise.

An endpoint URL is chosen by a store's admin, and the deliverer runs inside the
deployment's network: without a guard, `http://169.254.169.254/…` or
`http://10.0.0.5:5432/` would make Trafi probe its own infrastructure. So at
delivery time (not when the endpoint is saved: DNS can change in between) the host
is resolved and every address it resolves to must be global unicast. The request
then goes to the very address that was checked — the URL's host is replaced by it,
`Host` and the TLS server name (SNI, and so certificate verification) keep the
original name — so a DNS answer that changes between the check and the connection
(DNS rebinding) cannot slip a private address in.

TRAFI_WEBHOOKS_ALLOW_PRIVATE=1 turns the refusal off (development, tests, an
integration on the same private network); the pinning stays.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Callable

import httpx

Resolver = Callable[..., list]


class UnsafeAddress(Exception):
    """The host resolves to an address webhooks may not reach."""


@dataclass(frozen=True)
class Target:
    url: httpx.URL  # with the checked IP address as its host
    headers: dict[str, str] = field(default_factory=dict)  # Host: the original name
    extensions: dict[str, str] = field(default_factory=dict)  # sni_hostname for https


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback, whatever Python 3.11 says
    return address.is_global and not address.is_multicast


def resolve(url: str, *, allow_private: bool, resolver: Resolver = socket.getaddrinfo) -> Target:
    """Where to send a request for `url`. UnsafeAddress if refused; OSError if the name does not resolve."""
    parsed = httpx.URL(url)
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
        addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    if not allow_private:
        refused = [str(a) for a in addresses if not is_public(a)]
        if refused:
            raise UnsafeAddress(
                f"{host} resolves to {', '.join(refused)}, a private, loopback, link-local or reserved address; "
                "webhooks only go to public addresses (TRAFI_WEBHOOKS_ALLOW_PRIVATE=1 lifts this)"
            )
    pinned = str(addresses[0])
    headers = {"Host": parsed.netloc.decode("ascii")}
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return Target(parsed.copy_with(host=pinned), headers, extensions)
