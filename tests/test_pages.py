import pytest
from django.urls import reverse

from registry.roles import Role

pytestmark = pytest.mark.django_db


def test_home_page_for_visitors_offers_login(client):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Bijie carbon-sink registry" in body
    assert reverse("login") in body
    assert reverse("account") not in body
    assert reverse("admin:index") not in body


def test_home_page_names_the_users_organizations_and_roles(client, make_user):
    user = make_user(role=Role.VERIFIER)
    client.force_login(user)
    body = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert user.organizations.get().name_en in body
    assert "Verifier" in body
    assert reverse("account") in body
    assert reverse("admin:index") not in body


def test_registry_admin_sees_the_administration_link(client, make_user):
    client.force_login(make_user(role=Role.REGISTRY_ADMIN))
    body = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert reverse("admin:index") in body
    assert client.get(reverse("admin:index")).status_code == 200


def test_account_page_needs_login(client):
    response = client.get(reverse("account"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_account_page_lists_only_own_organizations(client, make_user):
    mine = make_user(role=Role.BUYER)
    other = make_user(role=Role.BUYER)
    client.force_login(mine)
    body = client.get(reverse("account"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert mine.organizations.get().uscc in body
    assert other.organizations.get().uscc not in body


def test_login_and_logout(client, make_user):
    make_user(username="staff1", role=Role.BUREAU_STAFF)
    response = client.post(
        reverse("login"), {"username": "staff1", "password": "correct horse battery"}
    )
    assert response.status_code == 302
    assert client.get(reverse("account")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("account")).status_code == 302


def test_wrong_password_shows_a_translated_error(client, make_user):
    make_user(username="staff2")
    response = client.post(
        reverse("login"),
        {"username": "staff2", "password": "nope"},
        HTTP_ACCEPT_LANGUAGE="zh-CN",
    )
    assert response.status_code == 200
    assert "用户名或密码不正确" in response.content.decode()


def test_django_admin_is_closed_to_non_staff(client, make_user):
    client.force_login(make_user(role=Role.BUREAU_STAFF))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302


def test_logins_are_rate_limited_per_username_and_address(client, make_user):
    make_user(username="target", role=Role.BUYER)
    for _ in range(5):
        client.post(reverse("login"), {"username": "target", "password": "guess"})
    response = client.post(
        reverse("login"),
        {"username": "target", "password": "correct horse battery"},
        HTTP_ACCEPT_LANGUAGE="zh-CN",
    )
    assert response.status_code == 429
    assert "登录失败次数过多" in response.content.decode()
    assert client.get(reverse("account")).status_code == 302

    # Another username from the same address is not locked out.
    make_user(username="colleague", role=Role.BUYER)
    response = client.post(
        reverse("login"),
        {"username": "colleague", "password": "correct horse battery"},
    )
    assert response.status_code == 302


@pytest.mark.django_db
def test_an_unknown_address_is_a_translated_404_page_with_the_site_around_it(client):
    response = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert response.status_code == 404
    body = response.content.decode()
    assert "页面不存在" in body
    assert (
        'class="site-header"' in body
    )  # navigation stays, the visitor is not stranded


def test_the_server_error_page_needs_no_request_and_speaks_both_languages():
    from django.template import loader

    html = loader.get_template("500.html").render()
    assert "服务器错误" in html and "Server error" in html
