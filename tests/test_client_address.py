"""Client addresses from the proxy (issue 13, item 5): sign-in lockouts and
every API throttle key on the address the outermost trusted proxy appended to
X-Forwarded-For, so a client's own X-Forwarded-For neither dodges a limit nor
locks anyone else out."""

import itertools

import pytest
from django.core.cache.backends.locmem import LocMemCache
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from api.throttles import ClientAddressThrottleMixin
from common.client_address import client_address
from registry.roles import Role

PROXY = "10.0.0.2"  # the reverse proxy's own address, as the app sees it
CLIENT = "203.0.113.7"  # the attacker's real address
VICTIM = "198.51.100.20"  # somebody else's real address
TOKEN_URL = "/api/v1/auth/token/"
PASSWORD = "correct horse battery"  # the factories' password

_caches = itertools.count()


def request_from(remote, forwarded=None):
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **meta)


def through_proxy(client_sent=None, *, real=CLIENT):
    """What the app receives when ``real`` connects through the one proxy
    having sent ``client_sent`` as its own X-Forwarded-For: the proxy appends
    the address it saw and connects from its own."""
    forwarded = f"{client_sent}, {real}" if client_sent else real
    return {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": forwarded}


@pytest.fixture
def behind_one_proxy(settings):
    settings.TRUSTED_PROXY_COUNT = 1


@pytest.fixture(autouse=True)
def fresh_throttles(monkeypatch):
    monkeypatch.setattr(
        SimpleRateThrottle, "cache", LocMemCache(f"address-{next(_caches)}", {})
    )


# The function ------------------------------------------------------------------


def test_without_proxies_the_header_is_ignored():
    request = request_from(CLIENT, forwarded="1.2.3.4")
    assert client_address(request, trusted_proxies=0) == CLIENT


def test_behind_one_proxy_the_address_it_appended_counts():
    request = request_from(PROXY, forwarded=f"1.2.3.4, 5.6.7.8,{CLIENT}")
    assert client_address(request, trusted_proxies=1) == CLIENT


def test_behind_two_proxies_the_outer_ones_entry_counts():
    # The outer proxy appended CLIENT, the inner one the outer's address.
    request = request_from("10.0.0.3", forwarded=f"1.2.3.4, {CLIENT}, 10.0.0.9")
    assert client_address(request, trusted_proxies=2) == CLIENT


def test_fewer_entries_than_proxies_fall_back_to_the_connection():
    assert client_address(request_from(PROXY), trusted_proxies=1) == PROXY
    request = request_from(PROXY, forwarded=CLIENT)
    assert client_address(request, trusted_proxies=2) == PROXY


def test_a_malformed_entry_falls_back_to_the_connection():
    request = request_from(PROXY, forwarded="1.2.3.4, not-an-address")
    assert client_address(request, trusted_proxies=1) == PROXY


def test_the_setting_is_the_default(settings):
    request = request_from(PROXY, forwarded=f"1.2.3.4, {CLIENT}")
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_address(request) == PROXY
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_address(request) == CLIENT


def test_axes_uses_the_function(settings):
    from axes.helpers import get_client_ip_address

    settings.TRUSTED_PROXY_COUNT = 1
    request = request_from(PROXY, forwarded=f"1.2.3.4, {CLIENT}")
    assert get_client_ip_address(request) == CLIENT


# Web sign-in -------------------------------------------------------------------


def web_sign_in(client, username, password, **meta):
    return client.post(
        reverse("login"), {"username": username, "password": password}, **meta
    )


@pytest.mark.django_db
def test_a_spoofed_header_does_not_dodge_the_web_lockout(
    client, make_user, behind_one_proxy
):
    make_user(username="target", role=Role.BUYER)
    statuses = [
        web_sign_in(
            client, "target", "guess", **through_proxy(f"1.2.3.{attempt}")
        ).status_code
        for attempt in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]  # the fifth failure locks
    again = web_sign_in(client, "target", PASSWORD, **through_proxy("9.9.9.9"))
    assert again.status_code == 429


@pytest.mark.django_db
def test_a_spoofed_victim_address_does_not_lock_the_victim_out_of_the_web(
    client, make_user, behind_one_proxy
):
    make_user(username="victim", role=Role.BUYER)
    for _attempt in range(6):
        web_sign_in(client, "victim", "guess", **through_proxy(VICTIM))
    # The attacker is locked; the victim, from their own address, is not.
    assert (
        web_sign_in(client, "victim", PASSWORD, **through_proxy(VICTIM)).status_code
        == 429
    )
    victim = web_sign_in(client, "victim", PASSWORD, **through_proxy(real=VICTIM))
    assert victim.status_code == 302


@pytest.mark.django_db
def test_without_proxies_the_web_lockout_ignores_the_header(client, make_user):
    make_user(username="target", role=Role.BUYER)
    for attempt in range(5):
        web_sign_in(client, "target", "guess", HTTP_X_FORWARDED_FOR=f"1.2.3.{attempt}")
    locked = web_sign_in(client, "target", PASSWORD, HTTP_X_FORWARDED_FOR="9.9.9.9")
    assert locked.status_code == 429
    # Another connection (REMOTE_ADDR), naming the locked-out address in the
    # header, is not locked.
    other = web_sign_in(
        client,
        "target",
        PASSWORD,
        REMOTE_ADDR=VICTIM,
        HTTP_X_FORWARDED_FOR="127.0.0.1",
    )
    assert other.status_code == 302


# API token sign-in --------------------------------------------------------------


def token_sign_in(client, username, password, **meta):
    return client.post(TOKEN_URL, {"username": username, "password": password}, **meta)


@pytest.fixture
def generous_auth_rate(monkeypatch):
    """The lockout, not the sign-in throttle, is under test."""
    monkeypatch.setattr(
        SimpleRateThrottle,
        "THROTTLE_RATES",
        {"anon": "1000/minute", "auth": "1000/minute"},
    )


@pytest.mark.django_db
def test_a_spoofed_header_does_not_dodge_the_api_lockout(
    client, make_user, behind_one_proxy, generous_auth_rate
):
    make_user(username="target", role=Role.BUYER)
    statuses = [
        token_sign_in(
            client, "target", "guess", **through_proxy(f"1.2.3.{attempt}")
        ).status_code
        for attempt in range(5)
    ]
    assert statuses == [400] * 5
    locked = token_sign_in(client, "target", PASSWORD, **through_proxy("9.9.9.9"))
    assert locked.status_code == 429
    assert locked.json()["code"] == "throttled"


@pytest.mark.django_db
def test_a_spoofed_victim_address_does_not_lock_the_victim_out_of_the_api(
    client, make_user, behind_one_proxy, generous_auth_rate
):
    make_user(username="victim", role=Role.BUYER)
    for _attempt in range(6):
        token_sign_in(client, "victim", "guess", **through_proxy(VICTIM))
    victim = token_sign_in(client, "victim", PASSWORD, **through_proxy(real=VICTIM))
    assert victim.status_code == 200
    assert victim.json()["token"]


@pytest.mark.django_db
def test_without_proxies_the_api_lockout_ignores_the_header(
    client, make_user, generous_auth_rate
):
    make_user(username="target", role=Role.BUYER)
    for attempt in range(5):
        token_sign_in(
            client, "target", "guess", HTTP_X_FORWARDED_FOR=f"1.2.3.{attempt}"
        )
    locked = token_sign_in(client, "target", PASSWORD, HTTP_X_FORWARDED_FOR="9.9.9.9")
    assert locked.status_code == 429


# Throttles -----------------------------------------------------------------------


@pytest.fixture
def tight_rates(monkeypatch):
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"anon": "2/minute", "auth": "2/minute"}
    )


@pytest.mark.django_db
def test_a_spoofed_header_does_not_dodge_the_anonymous_throttle(
    client, behind_one_proxy, tight_rates
):
    url = "/api/v1/methodologies/"
    statuses = [
        client.get(url, **through_proxy(f"1.2.3.{attempt}")).status_code
        for attempt in range(3)
    ]
    assert statuses == [200, 200, 429]
    # Somebody else behind the same proxy has their own allowance.
    assert client.get(url, **through_proxy(CLIENT, real=VICTIM)).status_code == 200


@pytest.mark.django_db
def test_without_proxies_the_throttle_ignores_the_header(client, tight_rates):
    url = "/api/v1/methodologies/"
    statuses = [
        client.get(url, HTTP_X_FORWARDED_FOR=f"1.2.3.{attempt}").status_code
        for attempt in range(3)
    ]
    assert statuses == [200, 200, 429]


@pytest.mark.django_db
def test_a_spoofed_header_does_not_dodge_the_sign_in_throttle(
    client, make_user, behind_one_proxy, tight_rates
):
    make_user(username="target", role=Role.BUYER)
    statuses = [
        token_sign_in(
            client, "target", "guess", **through_proxy(f"1.2.3.{attempt}")
        ).status_code
        for attempt in range(3)
    ]
    assert statuses == [400, 400, 429]


def _api_views(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _api_views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "cls", None)
            if view_class is not None and issubclass(view_class, APIView):
                yield view_class


def test_every_api_throttle_keys_on_the_client_address():
    """A view with a stock DRF throttle would trust X-Forwarded-For."""
    views = set(_api_views(get_resolver().url_patterns))
    assert views
    throttled = {view: view().get_throttles() for view in views}
    assert any(throttled.values())
    offenders = {
        view.__name__: [type(throttle).__name__ for throttle in throttles]
        for view, throttles in throttled.items()
        if not all(
            isinstance(throttle, ClientAddressThrottleMixin) for throttle in throttles
        )
    }
    assert offenders == {}
