"""The client's address, as the proxies in front of the registry report it.

Each proxy appends the address it received the connection from to
``X-Forwarded-For``; anything to the left of what the outermost trusted proxy
appended was written by the client and proves nothing. With N trusted proxies
the client is therefore the N-th entry from the right. Sign-in lockouts
(django-axes) and every API throttle key on this one answer.
"""

import ipaddress

from django.conf import settings

FORWARDED_FOR = "HTTP_X_FORWARDED_FOR"


def _valid_address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def client_address(request, *, trusted_proxies: int | None = None) -> str | None:
    """The address the outermost of ``trusted_proxies`` proxies (default:
    ``settings.TRUSTED_PROXY_COUNT``) appended to ``X-Forwarded-For``; the
    connection's own address (``REMOTE_ADDR``) when there are no proxies, or
    when the header is missing, too short or malformed at that position."""
    if trusted_proxies is None:
        trusted_proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    meta = getattr(request, "META", None) or {}
    remote = meta.get("REMOTE_ADDR") or None
    if trusted_proxies <= 0:
        return remote
    hops = [hop for hop in meta.get(FORWARDED_FOR, "").split(",") if hop.strip()]
    if len(hops) < trusted_proxies:
        return remote
    return _valid_address(hops[-trusted_proxies]) or remote
