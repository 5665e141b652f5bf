"""Where data may go: only to loopback and private-network hosts unless the user allows more.

Used for every address the user gives (an LLM server, a Dask scheduler): the host is resolved and every address
it resolves to must be loopback, private (RFC 1918, unique-local) or link-local.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from scelmo_desktop.core._infra.errors import ScelmoError


def check_address(
    base_url: str,
    *,
    allow_remote: bool = False,
    schemes=("http", "https"),
    example: str = "http://127.0.0.1:8080/v1",
    what: str = "LLM server",
) -> None:
    """Refuse an address outside loopback and private networks unless ``allow_remote``."""
    parts = urlsplit(base_url)
    if parts.scheme not in schemes or not parts.hostname:
        raise ScelmoError(f"'{base_url}' is not a {what} address; give one like {example}.")
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 80)}
    except socket.gaierror as exc:
        raise ScelmoError(f"The {what} host '{parts.hostname}' cannot be resolved ({exc.strerror}).") from exc
    public = sorted(a for a in addresses if not _is_internal(ipaddress.ip_address(a.split("%")[0])))
    if public and not allow_remote:
        raise ScelmoError(
            f"The {what} {base_url} resolves to a public address ({', '.join(public)}); data "
            "would leave the site's network. Use a server on loopback or a private network, or turn on "
            "the allow-remote setting if this address is inside your network."
        )


def _is_internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_loopback or address.is_private or address.is_link_local
