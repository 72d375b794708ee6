"""Verifiers see only the runs submitted to them for verification (issue 13).

A submission is open to every verification body without a conflict of
interest until one of them decides it; from then on it belongs to that body.
So a verifier sees a run while a verification of it awaits a decision they may
take, and afterwards only if they or their body decided it."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from estimation.services.verification import (
    approve_verification,
    reject_verification,
    submit_for_verification,
)
from registry import services as registry_services
from registry.models import Organization
from registry.roles import Role
from tests.registry.factories import OrganizationFactory

pytestmark = pytest.mark.django_db

RUN_PAGES = ("run-detail", "run-status", "run-csv", "run-landcover")


@pytest.fixture
def other_verifier(make_user):
    """A verifier of a second verification body."""
    body = OrganizationFactory(
        name_en="Second verifier", kind=Organization.Kind.VERIFIER
    )
    return make_user(role=Role.VERIFIER, organization=body)


def page_statuses(client, user, run) -> set[int]:
    client.force_login(user)
    return {
        client.get(reverse(f"estimation:{name}", args=[run.pk])).status_code
        for name in RUN_PAGES
    }


def api_for(user) -> APIClient:
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.force_authenticate(user)
    return api


def api_sees_run(user, run) -> bool:
    api = api_for(user)
    detail = api.get(f"/api/v1/estimation-runs/{run.pk}/")
    listed = [
        item["id"] for item in api.get("/api/v1/estimation-runs/").json()["results"]
    ]
    assert (detail.status_code == 200) == (run.pk in listed)
    if detail.status_code != 200:
        assert detail.status_code == 404
        assert detail.json()["code"] == "not_found"
    return detail.status_code == 200


def api_sees_verification(user, verification) -> bool:
    response = api_for(user).get(f"/api/v1/verifications/{verification.pk}/")
    assert response.status_code in (200, 404)
    return response.status_code == 200


def test_a_verifier_cannot_see_a_draft_projects_run_of_another_organization(
    client, verifier, run_for
):
    run = run_for()  # the project is still a draft
    assert run.project.status == "draft"
    assert page_statuses(client, verifier, run) == {404}
    assert not api_sees_run(verifier, run)


def test_a_verifier_cannot_see_a_run_not_submitted_for_verification(
    client, verifier, verified_run
):
    assert page_statuses(client, verifier, verified_run) == {404}
    assert not api_sees_run(verifier, verified_run)


def test_a_submitted_run_is_open_to_every_eligible_verification_body(
    client, staff, verifier, other_verifier, verified_run
):
    verification = submit_for_verification(actor=staff, run=verified_run)
    for user in (verifier, other_verifier):
        assert page_statuses(client, user, verified_run) == {200}
        assert api_sees_run(user, verified_run)
        assert api_sees_verification(user, verification)
        client.force_login(user)
        queue = client.get(reverse("estimation:verification-list")).context["queue"]
        assert list(queue) == [verification]


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_once_decided_the_run_belongs_to_the_deciding_body_only(
    client, staff, verifier, other_verifier, verified_run, decision
):
    verification = submit_for_verification(actor=staff, run=verified_run)
    if decision == "approve":
        approve_verification(actor=verifier, verification=verification)
    else:
        reject_verification(
            actor=verifier, verification=verification, reasons="Coefficients?"
        )
    # The deciding verifier keeps the run and their decision in view.
    assert page_statuses(client, verifier, verified_run) == {200}
    assert api_sees_run(verifier, verified_run)
    assert api_sees_verification(verifier, verification)
    detail = reverse("estimation:verification-detail", args=[verification.pk])
    assert client.get(detail).status_code == 200
    # The other body no longer sees either.
    assert page_statuses(client, other_verifier, verified_run) == {404}
    assert not api_sees_run(other_verifier, verified_run)
    assert not api_sees_verification(other_verifier, verification)
    client.force_login(other_verifier)
    assert client.get(detail).status_code == 404


def test_a_colleague_of_the_deciding_verifier_sees_the_decided_run(
    client, staff, verifier, verification_body, make_user, verified_run
):
    verification = submit_for_verification(actor=staff, run=verified_run)
    approve_verification(actor=verifier, verification=verification)
    colleague = make_user(role=Role.VERIFIER, organization=verification_body)
    assert page_statuses(client, colleague, verified_run) == {200}
    assert api_sees_verification(colleague, verification)


def test_a_conflicted_verifier_is_not_offered_the_run(
    client, staff, owner, make_user, verification_body, verified_run
):
    """A verifier who also acts for the project owner sees the run as a member
    of the owner, but it is not in their queue."""
    insider = make_user(role=Role.VERIFIER, organization=verification_body)
    registry_services.add_member(user=insider, organization=owner)
    submit_for_verification(actor=staff, run=verified_run)
    client.force_login(insider)
    queue = client.get(reverse("estimation:verification-list")).context["queue"]
    assert list(queue) == []


def test_a_verifier_reviews_a_run_through_the_api(staff, verifier, verified_run):
    """The review keeps working: see the run, then approve it."""
    verification = submit_for_verification(actor=staff, run=verified_run)
    api = api_for(verifier)
    run = api.get(f"/api/v1/estimation-runs/{verified_run.pk}/").json()
    assert run["results"]
    approved = api.post(
        f"/api/v1/verifications/{verification.pk}/approve/",
        {"reasons": "Map and coefficients checked."},
        format="json",
    )
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "approved"
