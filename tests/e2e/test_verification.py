"""Estimate, verify and issue in a real browser, through to the public batch page."""

from datetime import date

import pytest
from django.core.management import call_command

from estimation.models import Verification
from registry.models import Project
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_verified_estimate_becomes_a_credit_batch(page_factory, screenshot):
    call_command("load_bijie_demo")
    baili = Project.objects.get(name_en__startswith="Baili")
    assert baili.batches.count() == 1  # the demo issued 2021-2023

    # Bureau staff estimate 2024-2025 and submit the run for verification.
    staff = page_factory(locale="en-US")
    log_in(staff, "bureau_demo")
    staff.goto(f"/estimation/runs/new/?project={baili.code}")
    staff.locator("#id_dataset").select_option(index=1)
    staff.get_by_label("Monitoring period start").fill("2024-01-01")
    staff.get_by_label("Monitoring period end").fill("2025-12-31")
    staff.get_by_role("button", name="Run the estimate").click()
    staff.wait_for_selector(".bar-chart")
    staff.get_by_role("button", name="Submit for verification").click()
    staff.wait_for_url("**/estimation/verifications/*/")
    verification = Verification.objects.get(status="submitted")
    assert verification.monitoring_start == date(2024, 1, 1)
    assert "Awaiting verification" in staff.locator(".page-head").first.inner_text()

    # The verifier finds it in the queue and reviews everything behind it.
    verifier = page_factory(locale="en-US", width=1280)
    log_in(verifier, "verifier_demo")
    verifier.get_by_role("link", name="Verification", exact=True).click()
    queue = verifier.locator("section", has_text="Awaiting your verification")
    assert baili.code in queue.inner_text()
    queue.get_by_role("link", name=str(verification.pk), exact=True).click()
    verifier.wait_for_selector("[data-project-map] img.leaflet-image-layer")
    main = verifier.locator("main").inner_text()
    for text in (
        verification.run.dataset.sha256,
        "unchanged",
        "Coefficients",
        "Sink by ecosystem",
        "Area the map does not describe",
    ):
        assert text in main
    screenshot(verifier, "verification-review-en")
    verifier.get_by_label("Findings (required to reject)").fill(
        "Boundary, MODIS 2019 map and coefficients checked."
    )
    verifier.get_by_role("button", name="Approve").click()
    verifier.wait_for_selector(".messages")
    assert "approved" in verifier.locator(".messages").inner_text()

    # A registry admin issues it, at the methodology's buffer share.
    admin = page_factory(locale="zh-CN")
    log_in(admin, "registry_admin_demo")
    admin.goto(f"/estimation/verifications/{verification.pk}/")
    admin.get_by_role("button", name="签发碳信用").click()
    admin.wait_for_url("**/ledger/batches/*/")
    batch = baili.batches.get(monitoring_start=date(2024, 1, 1))
    assert batch.serial_label in admin.locator("h1").inner_text()
    buffer = admin.locator('[data-whereabouts="buffer"]').inner_text()
    assert buffer.startswith(f"{batch.buffer_quantity} ")
    screenshot(admin, "credit-batch-zh")

    # The public project page lists both batches, without logging in.
    visitor = page_factory(locale="en-US")
    visitor.goto(f"/projects/{baili.code}/")
    credits = visitor.locator("#credits")
    assert credits.locator("tbody tr").count() == 2
    assert batch.serial_label in credits.inner_text()
