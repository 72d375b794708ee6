"""Rate limits per client address, as the trusted proxies report it."""

from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle

from common.client_address import client_address


class ClientAddressThrottleMixin:
    """Counts per the client address the trusted proxies report, never per
    what the client wrote into X-Forwarded-For (common/client_address.py)."""

    def get_ident(self, request):
        return client_address(request) or "unknown"


class AnonThrottle(ClientAddressThrottleMixin, AnonRateThrottle):
    """Anonymous requests per client address."""


class AuthThrottle(ClientAddressThrottleMixin, ScopedRateThrottle):
    """Sign-in attempts per client address (anonymous by definition)."""

    scope_attr = "throttle_scope"
