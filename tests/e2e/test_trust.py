"""Trust in a real browser: a role grant needs a second registry admin, and
anyone checks a published journal head against today's journal."""

import json

import pytest
from django.core.management import call_command

from registry import services as registry_services
from registry.models import RoleGrant, User
from registry.roles import Role
from tests.e2e.conftest import log_in
from trading.anchors import publish_head

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_role_grant_waits_for_a_second_admin_and_is_audited(page_factory, screenshot):
    call_command("load_bijie_demo")
    second = User.objects.create_user("registry_admin_two", password="bijie-demo")
    registry_services.grant_role(user=second, role=Role.REGISTRY_ADMIN)
    buyer = User.objects.get(username="buyer_demo")
    assert not buyer.groups.filter(name=Role.VERIFIER).exists()

    maker = page_factory(locale="en-US")
    log_in(maker, "registry_admin_demo")
    maker.goto("/roles/new/")
    maker.locator("#id_kind").select_option(RoleGrant.Kind.GRANT_ROLE)
    maker.get_by_label("Username", exact=True).fill("buyer_demo")
    maker.locator("#id_role").select_option(Role.VERIFIER)
    maker.get_by_label("Reason").fill("Joins the verification team from January.")
    screenshot(maker, "role-grant-request-en")
    maker.get_by_role("button", name="Send the request").click()
    maker.wait_for_selector(".messages")
    # The maker's own request waits: no approve button for it on their queue.
    assert maker.get_by_role("button", name="Approve and apply").count() == 0
    assert not buyer.groups.filter(name=Role.VERIFIER).exists()

    checker = page_factory(locale="zh-CN")
    log_in(checker, "registry_admin_two")
    checker.goto("/roles/")
    assert "buyer_demo" in checker.locator("main").inner_text()
    screenshot(checker, "role-grant-queue-zh")
    checker.get_by_role("button", name="批准并生效").first.click()
    checker.wait_for_selector(".messages")
    assert buyer.groups.filter(name=Role.VERIFIER).exists()

    maker.goto("/roles/audit/")
    row = maker.locator("tbody tr").first.inner_text()
    assert "buyer_demo" in row
    assert "registry_admin_demo" in row and "registry_admin_two" in row
    assert "Joins the verification team" in row
    screenshot(maker, "role-grant-audit-en")


def test_anyone_checks_a_kept_head_on_the_public_page(page_factory, screenshot):
    call_command("load_bijie_demo")
    anchor, _created = publish_head()
    kept = json.dumps(anchor.document(), indent=2)

    visitor = page_factory(locale="zh-CN")
    visitor.goto("/public/journal-heads/")
    assert anchor.entry_hash in visitor.locator("main").inner_text()
    visitor.locator("#id_head").fill(kept)
    visitor.get_by_role("button", name="核验").click()
    verdict = visitor.locator(".verdict")
    assert verdict.get_attribute("data-valid") == "true"
    assert "此链头有效" in verdict.inner_text()
    screenshot(visitor, "journal-heads-zh")

    forged = json.loads(kept)
    forged["entry_hash"] = "0" * 64
    visitor.locator("#id_head").fill(json.dumps(forged))
    visitor.get_by_role("button", name="核验").click()
    assert visitor.locator(".verdict").get_attribute("data-valid") == "false"
