"""Verification pages: submit on the run page, the verifier's review, the
admin's issue form, resubmission; and what the project page shows after."""

from datetime import date

import pytest
from django.urls import reverse
from django.utils.html import escape

from estimation.models import Verification
from estimation.services.issuance import issue_verification
from estimation.services.verification import (
    approve_verification,
    submit_for_verification,
)
from registry import services as registry_services
from registry.roles import Role
from trading.models import CreditBatch

pytestmark = pytest.mark.django_db
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


@pytest.fixture
def submitted(staff, verified_run):
    return submit_for_verification(actor=staff, run=verified_run)


@pytest.fixture
def approved(submitted, verifier):
    return approve_verification(actor=verifier, verification=submitted)


def detail_url(verification):
    return reverse("estimation:verification-detail", args=[verification.pk])


# Submitting --------------------------------------------------------------------------


def test_the_run_page_offers_submission_to_the_owners_staff_only(
    client, staff, verified_run, make_user, verifier
):
    url = reverse("estimation:run-detail", args=[verified_run.pk])
    client.force_login(staff)
    body = client.get(url, **EN).content.decode()
    assert "Submit for verification" in body
    assert reverse("estimation:verification-submit", args=[verified_run.pk]) in body
    client.force_login(make_user(role=Role.BUREAU_STAFF))
    assert client.get(url, **EN).status_code == 404
    client.force_login(verifier)  # not submitted to them: they cannot see it
    assert client.get(url, **EN).status_code == 404
    submit_for_verification(actor=staff, run=verified_run)
    response = client.get(url, **EN)
    assert response.status_code == 200
    assert "Submit for verification" not in response.content.decode()


def test_submitting_from_the_run_page(client, staff, verified_run):
    client.force_login(staff)
    response = client.post(
        reverse("estimation:verification-submit", args=[verified_run.pk]),
        {
            "monitoring_start": "2021-01-01",
            "monitoring_end": "2023-12-31",
            "note": "Please verify.",
        },
    )
    verification = Verification.objects.get()
    assert response.status_code == 302
    assert response.url == detail_url(verification)
    assert verification.monitoring_end == date(2023, 12, 31)
    assert verification.note == "Please verify."


def test_a_bad_period_is_shown_on_the_run_page_and_nothing_is_submitted(
    client, staff, verified_run
):
    client.force_login(staff)
    response = client.post(
        reverse("estimation:verification-submit", args=[verified_run.pk]),
        {"monitoring_start": "2019-01-01", "monitoring_end": "2021-12-31"},
        HTTP_ACCEPT_LANGUAGE="zh-CN",
    )
    assert response.status_code == 400
    assert "监测期" in response.content.decode()
    assert not Verification.objects.exists()


def test_staff_of_another_organization_cannot_submit(client, make_user, verified_run):
    client.force_login(make_user(role=Role.BUREAU_STAFF))
    response = client.post(
        reverse("estimation:verification-submit", args=[verified_run.pk]),
        {"monitoring_start": "2021-01-01", "monitoring_end": "2025-12-31"},
    )
    assert response.status_code == 404  # they cannot even see the run
    assert not Verification.objects.exists()


# The verifier's review ---------------------------------------------------------------


def test_the_queue_lists_runs_awaiting_this_verifier(
    client, submitted, verifier, make_user, owner, verification_body
):
    client.force_login(verifier)
    response = client.get(reverse("estimation:verification-list"), **EN)
    queue = response.context["queue"]
    assert list(queue) == [submitted]
    insider = make_user(role=Role.VERIFIER, organization=verification_body)
    registry_services.add_member(user=insider, organization=owner)
    client.force_login(insider)
    response = client.get(reverse("estimation:verification-list"), **EN)
    assert list(response.context["queue"]) == []


def test_buyers_and_visitors_have_no_verification_pages(client, make_user, submitted):
    response = client.get(reverse("estimation:verification-list"))
    assert response.status_code == 302
    client.force_login(make_user(role=Role.BUYER))
    assert client.get(reverse("estimation:verification-list")).status_code == 403
    assert client.get(detail_url(submitted)).status_code == 404
    other_staff = make_user(role=Role.BUREAU_STAFF)
    client.force_login(other_staff)
    assert client.get(detail_url(submitted)).status_code == 404
    response = client.get(reverse("estimation:verification-list"))
    assert list(response.context["verifications"]) == []


def test_the_review_page_shows_everything_the_number_rests_on(
    client, verifier, submitted, verified_run
):
    client.force_login(verifier)
    response = client.get(detail_url(submitted), **EN)
    assert response.status_code == 200
    body = response.content.decode()
    run, dataset = verified_run, verified_run.dataset
    methodology = run.methodology
    assert run.project.code in body
    assert '"boundary"' in body  # the map's layers
    assert reverse("estimation:run-landcover", args=[run.pk]) in body
    assert dataset.sha256 in body
    assert run.fingerprint in body
    assert "unchanged" in body
    assert dataset.scheme.display_name in body
    for mapping in dataset.scheme.mappings.all():
        assert f"<code>{escape(mapping.code)}</code>" in body
        assert escape(mapping.label) in body
    assert str(methodology) in body
    for coefficient in methodology.coefficients.all():
        assert coefficient.citation in body
    assert "Sink by ecosystem" in body
    assert "Outside the map" in body and "No data" in body
    # The credits the approval would lead to.
    preview = response.context["preview"]
    assert preview.quantity > 0
    assert f'data-issuance="quantity">{preview.quantity}<' in body
    assert "Approve" in body and "Reject with findings" in body


def test_the_review_page_in_chinese(client, verifier, submitted):
    client.force_login(verifier)
    body = client.get(detail_url(submitted), HTTP_ACCEPT_LANGUAGE="zh-CN")
    text = body.content.decode()
    assert "核查" in text
    assert "各生态系统碳汇" in text


def test_the_submitter_sees_the_review_page_without_decision_buttons(
    client, staff, submitted
):
    client.force_login(staff)
    response = client.get(detail_url(submitted), **EN)
    assert response.status_code == 200
    assert "decision_form" not in response.context
    assert "Reject with findings" not in response.content.decode()


def test_approving_and_rejecting_through_the_page(
    client, verifier, submitted, staff, verified_run
):
    client.force_login(verifier)
    url = reverse("estimation:verification-decide", args=[submitted.pk, "reject"])
    response = client.post(url, {"reasons": ""}, **EN)
    assert response.status_code == 400
    assert "Give the reasons" in response.content.decode()
    submitted.refresh_from_db()
    assert submitted.status == Verification.Status.SUBMITTED

    response = client.post(url, {"reasons": "Use the 30 m map."})
    assert response.status_code == 302
    submitted.refresh_from_db()
    assert submitted.status == Verification.Status.REJECTED

    # The submitter answers from the rejected verification's page.
    client.force_login(staff)
    page = client.get(detail_url(submitted), **EN)
    assert "Revise and resubmit" in page.content.decode()
    response = client.post(
        reverse("estimation:verification-resubmit", args=[submitted.pk]),
        {
            "run": verified_run.pk,
            "monitoring_start": "2021-01-01",
            "monitoring_end": "2025-12-31",
            "note": "Added the land-tenure proofs.",
        },
    )
    revised = Verification.objects.exclude(pk=submitted.pk).get()
    assert response.status_code == 302
    assert revised.revises == submitted

    client.force_login(verifier)
    response = client.post(
        reverse("estimation:verification-decide", args=[revised.pk, "approve"]),
        {"reasons": "Confirmed."},
    )
    assert response.status_code == 302
    revised.refresh_from_db()
    assert revised.status == Verification.Status.APPROVED


def test_a_verifier_of_the_owner_gets_403_and_nothing_changes(
    client, submitted, make_user, owner, verification_body
):
    insider = make_user(role=Role.VERIFIER, organization=verification_body)
    registry_services.add_member(user=insider, organization=owner)
    client.force_login(insider)
    response = client.post(
        reverse("estimation:verification-decide", args=[submitted.pk, "approve"]),
        {"reasons": ""},
    )
    assert response.status_code == 403
    submitted.refresh_from_db()
    assert submitted.status == Verification.Status.SUBMITTED


# Issuing -----------------------------------------------------------------------------


def test_the_admin_issues_from_the_page_and_lands_on_the_batch(
    client, registry_admin, approved
):
    client.force_login(registry_admin)
    page = client.get(detail_url(approved), **EN)
    assert "Issue credits" in page.content.decode()
    response = client.post(
        reverse("estimation:verification-issue", args=[approved.pk]),
        {"buffer_share_percent": "10", "buffer_share_reason": ""},
    )
    batch = CreditBatch.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("trading:batch-detail", args=[batch.pk])


def test_a_buffer_share_over_100_percent_is_refused_on_the_form(
    client, registry_admin, approved
):
    client.force_login(registry_admin)
    response = client.post(
        reverse("estimation:verification-issue", args=[approved.pk]),
        {"buffer_share_percent": "150", "buffer_share_reason": "Very risky."},
        HTTP_ACCEPT_LANGUAGE="zh-CN",
    )
    assert response.status_code == 400
    assert "缓冲" in response.content.decode()
    assert not CreditBatch.objects.exists()


def test_issuing_an_unverified_run_is_refused_on_the_page(
    client, registry_admin, submitted
):
    client.force_login(registry_admin)
    response = client.post(
        reverse("estimation:verification-issue", args=[submitted.pk]),
        {"buffer_share_percent": "10"},
        **EN,
    )
    assert response.status_code == 400
    assert "has not been verified yet" in response.content.decode()
    assert not CreditBatch.objects.exists()


def test_only_admins_issue_through_the_page(client, verifier, staff, approved):
    for user in (verifier, staff):
        client.force_login(user)
        response = client.post(
            reverse("estimation:verification-issue", args=[approved.pk]),
            {"buffer_share_percent": "10"},
        )
        assert response.status_code == 403
    assert not CreditBatch.objects.exists()


# What the project page shows ---------------------------------------------------------


def test_the_project_page_shows_batches_credits_to_date_and_every_step(
    client, approved, registry_admin, registered_project
):
    batch = issue_verification(actor=registry_admin, verification=approved).batch
    response = client.get(
        reverse("registry:project-detail", args=[registered_project.code]), **EN
    )
    body = response.content.decode()
    assert reverse("trading:batch-detail", args=[batch.pk]) in body
    assert batch.serial_label in body
    assert response.context["credit_totals"] == {
        "batches": 1,
        "issued": batch.quantity,
        "buffer": batch.buffer_quantity,
    }
    assert f"To date: {batch.quantity} t CO2e in 1 batch" in body
    for step in (
        "Submitted for verification",
        "Verification approved",
        "Credits issued",
        "Registered",
    ):
        assert step in body
    history = response.context["history"]
    assert [item.at for item in history] == sorted(item.at for item in history)


def test_the_verifier_sees_verification_in_the_navigation(client, verifier):
    client.force_login(verifier)
    body = client.get("/", **EN).content.decode()
    assert reverse("estimation:verification-list") in body


def test_the_review_page_warns_when_the_inputs_have_changed(
    client, verifier, submitted, verified_run
):
    from estimation.models import ClassMapping

    ClassMapping.objects.filter(scheme=verified_run.dataset.scheme, code="12").update(
        ecosystem="grassland"
    )
    client.force_login(verifier)
    body = client.get(detail_url(submitted), **EN).content.decode()
    assert "The inputs have changed" in body
    assert "✗ changed" in body


def test_the_admin_sees_approved_verifications_awaiting_issuance(
    client, registry_admin, approved, verifier
):
    client.force_login(registry_admin)
    response = client.get(reverse("estimation:verification-list"), **EN)
    assert list(response.context["to_issue"]) == [approved]
    assert "Approved, awaiting issuance" in response.content.decode()
    client.force_login(verifier)
    response = client.get(reverse("estimation:verification-list"), **EN)
    assert response.context["to_issue"] == []
    assert list(response.context["queue"]) == []  # decided: no longer queued
