"""``registry.services.lock_project``: the one place a project's row is locked,
and the lifecycle steps that take their turn through it."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from registry import services
from registry.models import Project
from registry.roles import Role
from tests.registry.projects import make_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(make_user, organization):
    return make_user(role=Role.BUREAU_STAFF, organization=organization)


@pytest.fixture
def draft(staff, organization):
    return make_project(actor=staff, owner=organization)


def test_lock_project_reads_the_row_afresh(draft):
    Project.objects.filter(pk=draft.pk).update(status=Project.Status.SUBMITTED)
    with transaction.atomic():
        locked = services.lock_project(draft.pk)
    assert locked.pk == draft.pk
    assert locked.status == Project.Status.SUBMITTED  # not the caller's stale copy
    assert draft.status == Project.Status.DRAFT


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks")
def test_lock_project_locks_the_row_for_update(draft):
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        services.lock_project(draft.pk)
    (query,) = queries.captured_queries
    assert query["sql"].rstrip().endswith("FOR UPDATE")


def test_a_lifecycle_step_decides_on_the_locked_row(staff, draft, monkeypatch):
    """Submitting checks the status of the row lock_project returns: if a
    concurrent step already moved the project on, the stale copy passed in does
    not get through."""
    locked = []

    def lock_and_see_it_moved(project_id):
        locked.append(project_id)
        Project.objects.filter(pk=project_id).update(status=Project.Status.SUBMITTED)
        return Project.objects.get(pk=project_id)

    monkeypatch.setattr(services, "lock_project", lock_and_see_it_moved)
    with pytest.raises(ValidationError) as refused:
        services.submit_project(actor=staff, project=draft)
    assert locked == [draft.pk]
    assert refused.value.code == "state"
