"""CreditBatch moved from registry to trading (trading 0009, estimation 0004,
registry 0007) in Django's state only: migrating back and forth with issued
credits keeps every row, the keys that point at them, the permission granted
on the model and, on PostgreSQL, the table's exclusion constraints and the
ledger functions that read it."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from registry.roles import Role
from trading.models import CreditBatch, CreditBlock, LedgerEntry

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_THE_MOVE = [("trading", "0008_database_roles")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    # The state of everything now applied, every app included.
    applied = MigrationExecutor(connection).loader.applied_migrations
    return executor.loader.project_state(list(applied)).apps


def _latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def _exclusion_constraints() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint"
            " WHERE conrelid = 'registry_creditbatch'::regclass AND contype = 'x'"
        )
        return {name for (name,) in cursor.fetchall()}


def _batch_permission_holders() -> set[str]:
    return set(
        Group.objects.filter(
            permissions__codename="view_creditbatch",
            permissions__content_type__app_label="trading",
        ).values_list("name", flat=True)
    )


def test_the_move_keeps_rows_keys_and_grants_both_ways(reference_data, issue):
    batch = issue(quantity=1000, buffer=100)
    rows = (
        list(CreditBatch.objects.values().order_by("pk")),
        list(CreditBlock.objects.values().order_by("pk")),
        list(LedgerEntry.objects.values().order_by("pk")),
    )
    assert Role.REGISTRY_ADMIN.value in _batch_permission_holders()
    constraints = (
        _exclusion_constraints() if connection.vendor == "postgresql" else set()
    )

    old = _migrate(BEFORE_THE_MOVE)
    old_batch = old.get_model("registry", "CreditBatch")
    assert list(old_batch.objects.values().order_by("pk")) == rows[0]
    for model, field in (
        ("trading.CreditBlock", "batch"),
        ("trading.LedgerEntry", "batch"),
        ("trading.TradeRequest", "batch"),
        ("estimation.Verification", "batch"),
    ):
        key = old.get_model(model)._meta.get_field(field)
        assert key.related_model is old_batch, model
    assert old.get_model("trading.CreditBlock").objects.filter(
        batch__quantity=1000
    ).count() == len(rows[1])
    # The permission went back with the model: the group still holds it.
    content_types = old.get_model("contenttypes", "ContentType")
    assert content_types.objects.filter(
        app_label="registry", model="creditbatch"
    ).exists()
    assert not content_types.objects.filter(
        app_label="trading", model="creditbatch"
    ).exists()
    assert Group.objects.filter(
        permissions__codename="view_creditbatch",
        permissions__content_type__app_label="registry",
    ).exists()

    new = _migrate(_latest())
    assert not any(
        model._meta.label == "registry.CreditBatch" for model in new.get_models()
    )
    assert new.get_model("estimation.Verification")._meta.get_field(
        "batch"
    ).related_model is new.get_model("trading", "CreditBatch")
    assert (
        list(CreditBatch.objects.values().order_by("pk")),
        list(CreditBlock.objects.values().order_by("pk")),
        list(LedgerEntry.objects.values().order_by("pk")),
    ) == rows
    assert CreditBatch.objects.get().blocks.count() == len(rows[1])
    assert Role.REGISTRY_ADMIN.value in _batch_permission_holders()
    assert Permission.objects.filter(codename="view_creditbatch").count() == 1
    if connection.vendor == "postgresql":
        assert constraints == {
            "registry_batch_no_overlap",
            "registry_batch_periods_no_overlap",
        }
        assert _exclusion_constraints() == constraints

    # The ledger still issues through its functions and constraints after the
    # round trip: a second batch, and serials continuing the first.
    second = issue(quantity=10, buffer=0)
    assert second.first_serial == batch.last_serial + 1
    assert CreditBatch.objects.count() == 2
