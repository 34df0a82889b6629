"""Where a webhook may be sent: the SSRF guard, checked when an endpoint is saved and again at each delivery.

1. Only http and https URLs, with a host; https unless the host is in WEBHOOK_ALLOWED_HOSTS.
2. The host is resolved, and every address it resolves to must be public (ipaddress's is_global: no
   loopback, private, link-local (169.254.169.254, the metadata service), carrier-grade NAT, multicast,
   reserved, unique-local IPv6 (fd00:ec2::254) or IPv4-mapped versions of them).
3. A host named in WEBHOOK_ALLOWED_HOSTS (exact name, e.g. a receiver inside the VPC) skips rule 2.
4. The delivery connects to the address checked here, not to a second lookup (api/delivery.py), so a DNS
   answer that changes between check and connect (rebinding) cannot point the request inside.
5. The lookup has our own deadline, RESOLVE_SECONDS (the resolver's own can reach tens of seconds): it runs in a
   daemon thread, and a host that has not resolved by then is refused (a form's error at save, a failed attempt
   retried later at delivery). At most MAX_LOOKUPS lookups are in flight in a process; beyond that a URL is
   refused at once, so a hanging resolver cannot pile up threads. An IP literal needs no lookup and no thread.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

RESOLVE_SECONDS = 3.0
MAX_LOOKUPS = 16
_in_flight = threading.BoundedSemaphore(MAX_LOOKUPS)


class Refused(Exception):
    """The URL may not be called; the message says why (no personal data: a URL an admin typed)."""


def resolve(url: str) -> tuple[str, int, list[str]]:
    """Return (host, port, addresses) for `url`, or raise Refused when it may not be called."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise Refused("only http(s) URLs with a host")
    allowed = host in settings.WEBHOOK_ALLOWED_HOSTS
    if parts.scheme != "https" and not allowed:
        raise Refused("https is required (unless the host is in WEBHOOK_ALLOWED_HOSTS)")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise Refused("bad port") from exc
    try:
        infos = _lookup(host, port)
    except (OSError, ValueError) as exc:  # ValueError: UnicodeError (a bad IDNA label), a NUL in the name
        raise Refused(f"host does not resolve ({exc.__class__.__name__})") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not allowed:
        for address in addresses:
            if not is_public(address):
                raise Refused(f"{host} resolves to a non-public address ({address})")
    if not addresses:
        raise Refused("host does not resolve")
    return host, port, addresses


def _lookup(host: str, port: int) -> list:
    """Return socket.getaddrinfo's answer for (host, port), or raise Refused once RESOLVE_SECONDS have passed."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)  # a literal: nothing to wait for
    if not _in_flight.acquire(blocking=False):
        raise Refused(f"{MAX_LOOKUPS} DNS lookups are already waiting; try again later")
    answer: dict = {}
    done = threading.Event()

    def run() -> None:
        try:
            answer["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except BaseException as exc:  # handed to the caller below
            answer["error"] = exc
        finally:
            _in_flight.release()
            done.set()

    threading.Thread(target=run, name="dns-lookup", daemon=True).start()
    if not done.wait(RESOLVE_SECONDS):  # the thread finishes on its own, later; nobody waits for it
        raise Refused(f"host did not resolve within {RESOLVE_SECONDS:g} s")
    if "error" in answer:
        raise answer["error"]
    return answer["infos"]


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url_for_save(url: str) -> None:
    """Raise a form's ValidationError when `url` may not be an endpoint."""
    try:
        resolve(url)
    except Refused as exc:
        raise ValidationError({"url": f"Refused: {exc}."}) from exc
