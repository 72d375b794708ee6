"""The database guards itself against the application (production-stack stage):
connected as the application role, every raw write to the journal, its head
and the credit blocks is refused, the append-only guard cannot be lifted, and
the ordinary ledger path still works through the ledger's functions.

The suite itself runs as the owner role; these tests open their own
connections to the test database as DATABASE_APP_ROLE."""

import os
from datetime import timedelta

import psycopg
import pytest
from django.db import DatabaseError, connection
from django.utils import timezone

from registry.models import Account
from trading import services
from trading.apps import grant_rights_after_migrate
from trading.db_guards import (
    APPEND_ONLY_TABLES,
    GUARDED_TABLES,
    LEDGER_FUNCTIONS,
    ApplicationRoleError,
    grant_application_role,
)
from trading.models import CreditBlock, LedgerEntry, LedgerHead, TradeRequest
from trading.selectors import get_account_balance
from trading.verification import verify_ledger

pytestmark = [pytest.mark.production_stack, pytest.mark.django_db(transaction=True)]

Refused = psycopg.errors.InsufficientPrivilege


@pytest.fixture
def app_role(settings):
    """The application role's name and password, or a skip outside the stage
    (a failure under REQUIRE_PRODUCTION_STACK=1)."""
    role = settings.DATABASE_APP_ROLE
    if connection.vendor != "postgresql" or not role:
        message = (
            "needs PostgreSQL and DATABASE_APP_ROLE (the production-stack stage "
            "of `make test`; scripts/production_stack.sh creates the role)"
        )
        if os.environ.get("REQUIRE_PRODUCTION_STACK") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return role, os.environ.get("DATABASE_APP_PASSWORD", "")


@pytest.fixture(autouse=True)
def _stage(app_role, reference_data):
    """Every test: the stage's check first, then the reference data a
    transactional test's flush removed."""


@pytest.fixture
def as_app(app_role):
    """A connection to the test database as the application role."""
    role, password = app_role
    database = connection.settings_dict
    with psycopg.connect(
        host=database["HOST"],
        port=database["PORT"] or 5432,
        dbname=database["NAME"],
        user=role,
        password=password,
        autocommit=True,
    ) as app:
        yield app


@pytest.fixture
def django_as_app(app_role):
    """Django's own connection as the application role, for the test body and
    the fixtures after this one; the owner again for the teardown's flush."""
    role, password = app_role
    original = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(USER=role, PASSWORD=password)
    try:
        yield role
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(original)


def _journal() -> list[tuple]:
    return list(
        LedgerEntry.objects.order_by("sequence").values_list(
            "sequence", "quantity", "entry_hash"
        )
    )


def _blocks() -> list[tuple]:
    return list(
        CreditBlock.objects.order_by("pk").values_list(
            "pk", "account_id", "first_serial", "last_serial", "state"
        )
    )


def _refused(app, sql: str, params=()) -> str:
    with pytest.raises(Refused) as refusal:
        app.execute(sql, params)
    return str(refusal.value)


def test_the_application_role_has_no_power_and_owns_nothing(as_app, issue):
    issue()
    powers = as_app.execute(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolreplication"
        " FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert powers == (False, False, False, False, False)
    (owned,) = as_app.execute(
        "SELECT count(*) FROM pg_class WHERE relowner ="
        " (SELECT oid FROM pg_roles WHERE rolname = current_user)"
    ).fetchone()
    assert owned == 0
    (owner,) = as_app.execute(
        "SELECT pg_has_role(current_user, relowner, 'MEMBER') FROM pg_class"
        " WHERE relname = 'trading_ledgerentry'"
    ).fetchone()
    assert owner is False


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE trading_ledgerentry SET quantity = quantity + 1",
        "DELETE FROM trading_ledgerentry",
        "TRUNCATE trading_ledgerentry",
        "TRUNCATE trading_ledgerentry CASCADE",
    ],
)
def test_the_application_role_cannot_rewrite_the_journal(as_app, issue, statement):
    issue()
    before = _journal()
    message = _refused(as_app, statement)
    assert "permission denied for table trading_ledgerentry" in message
    assert _journal() == before


def test_the_application_role_cannot_insert_journal_entries_itself(as_app, issue):
    """Entries come only with the block changes they record, from the ledger's
    functions: a forged issue entry is refused."""
    batch = issue()
    before = _journal()
    message = _refused(
        as_app,
        "INSERT INTO trading_ledgerentry (kind, batch_id, first_serial, last_serial,"
        " quantity, to_account_id, currency, idempotency_key, created_at)"
        " VALUES ('issue', %s, 1, 1, 1, %s, '', '', now())",
        (batch.pk, batch.blocks.first().account_id),
    )
    assert "permission denied for table trading_ledgerentry" in message
    assert _journal() == before


def test_setting_the_purge_flag_does_not_let_the_application_role_delete(as_app, issue):
    issue()
    before = _journal()
    as_app.execute("SET registry.ledger_purge = 'on'")
    _refused(as_app, "DELETE FROM trading_ledgerentry")
    _refused(as_app, "TRUNCATE trading_ledgerentry")
    assert _journal() == before


def test_the_purge_flag_counts_only_for_the_owner_even_after_a_stray_grant(
    as_app, app_role, issue
):
    """Were DELETE granted by mistake, the append-only trigger still refuses
    the application role: it honours the purge flag only for the owner."""
    issue()
    before = _journal()
    role = connection.ops.quote_name(app_role[0])
    with connection.cursor() as cursor:
        cursor.execute(f"GRANT DELETE ON trading_ledgerentry TO {role}")
    try:
        as_app.execute("SET registry.ledger_purge = 'on'")
        message = _refused(as_app, "DELETE FROM trading_ledgerentry")
        assert "append-only: DELETE refused" in message
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"REVOKE DELETE ON trading_ledgerentry FROM {role}")
    assert _journal() == before


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO trading_creditblock (batch_id, account_id, first_serial,"
        " last_serial, quantity, state, updated_at)"
        " SELECT batch_id, account_id, last_serial + 1000000, last_serial + 1000000,"
        " 1, 'active', now() FROM trading_creditblock LIMIT 1",
        "UPDATE trading_creditblock SET account_id = account_id",
        "UPDATE trading_creditblock SET state = 'active' WHERE state = 'retired'",
        "DELETE FROM trading_creditblock",
        "TRUNCATE trading_creditblock CASCADE",
        "SELECT * FROM trading_creditblock FOR UPDATE",
    ],
)
def test_the_application_role_cannot_write_credit_blocks(as_app, issue, statement):
    issue()
    before = _blocks()
    message = _refused(as_app, statement)
    assert "permission denied for table trading_creditblock" in message
    assert _blocks() == before


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE trading_ledgerhead SET last_sequence = 0, last_hash = repeat('0', 64)",
        "DELETE FROM trading_ledgerhead",
        "INSERT INTO trading_ledgerhead (id, last_sequence, last_hash)"
        " VALUES (2, 0, repeat('0', 64))",
    ],
)
def test_the_application_role_cannot_write_the_journal_head(as_app, issue, statement):
    issue()
    before = list(LedgerHead.objects.values_list("pk", "last_sequence", "last_hash"))
    message = _refused(as_app, statement)
    assert "permission denied for table trading_ledgerhead" in message
    assert list(LedgerHead.objects.values_list("pk", "last_sequence", "last_hash")) == (
        before
    )


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        (
            "ALTER TABLE trading_ledgerentry DISABLE TRIGGER"
            " trading_ledgerentry_append_only",
            "must be owner of table trading_ledgerentry",
        ),
        (
            "DROP TRIGGER trading_ledgerentry_append_only ON trading_ledgerentry",
            "must be owner of relation trading_ledgerentry",
        ),
        (
            "ALTER TABLE trading_creditblock DROP CONSTRAINT trading_block_no_overlap",
            "must be owner of table trading_creditblock",
        ),
        (
            "CREATE OR REPLACE FUNCTION trading_ledger_append_only_row()"
            " RETURNS trigger AS 'BEGIN RETURN OLD; END' LANGUAGE plpgsql",
            "permission denied for schema public",
        ),
        (
            "CREATE TABLE trading_ledgerentry_shadow (id bigint)",
            "permission denied for schema public",
        ),
        (
            "SET session_replication_role = replica",
            'permission denied to set parameter "session_replication_role"',
        ),
    ],
)
def test_the_application_role_cannot_lift_the_guards(as_app, issue, statement, refusal):
    issue()
    assert refusal in _refused(as_app, statement)
    # The owner's own session: the guard is still in place.
    with pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cur:
        cur.execute("DELETE FROM trading_ledgerentry")


def test_the_ledger_functions_run_as_their_owner_and_only_for_the_app_role(
    as_app, app_role
):
    rows = as_app.execute(
        "SELECT p.oid::regprocedure::text, p.prosecdef, p.proconfig,"
        " has_function_privilege('public', p.oid, 'EXECUTE'),"
        " has_function_privilege(current_user, p.oid, 'EXECUTE'),"
        " pg_get_userbyid(p.proowner) = ("
        "   SELECT pg_get_userbyid(relowner) FROM pg_class"
        "   WHERE relname = 'trading_ledgerentry')"
        " FROM pg_proc p WHERE p.proname LIKE 'trading\\_%%'"
        " ORDER BY 1"
    ).fetchall()
    functions = {row[0]: row[1:] for row in rows}
    for signature in [*LEDGER_FUNCTIONS, "trading_ledger_link()"]:
        signature = signature.replace(", ", ",")
        definer, config, public, app, same_owner = functions[signature]
        assert definer, signature
        assert config == ["search_path=public, pg_temp"], signature
        assert same_owner, signature
        if signature != "trading_ledger_link()":  # a trigger: never called
            assert (public, app) == (False, True), signature


def test_every_other_table_is_open_to_the_app_role_and_the_guarded_ones_read_only(
    as_app,
):
    rows = as_app.execute(
        "SELECT c.relname,"
        " has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT'),"
        " has_table_privilege(c.oid, 'UPDATE'), has_table_privilege(c.oid, 'DELETE'),"
        " has_table_privilege(c.oid, 'TRUNCATE')"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind = 'r'"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid"
        "   AND d.classid = 'pg_class'::regclass AND d.deptype = 'e')"
    ).fetchall()
    rights = {name: tuple(granted) for name, *granted in rows}
    assert {"trading_traderequest", "registry_account", "django_session"} <= set(rights)
    for name, granted in rights.items():
        if name in GUARDED_TABLES:
            assert granted == (True, False, False, False, False), name
        elif name in APPEND_ONLY_TABLES:
            assert granted == (True, True, False, False, False), name
        else:
            assert granted == (True, True, True, True, False), name


def test_grants_cover_tables_of_later_migrations_and_undo_stray_grants(
    as_app, app_role
):
    """The post-migrate grants: a table made after the last grant becomes
    usable, and a privilege granted by hand on the journal is taken back."""
    role = connection.ops.quote_name(app_role[0])
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE h3_later_table (id bigint PRIMARY KEY)")
        cursor.execute(f"GRANT UPDATE ON trading_ledgerentry TO {role}")
    try:
        _refused(as_app, "INSERT INTO h3_later_table VALUES (1)")
        grant_rights_after_migrate(using="default")
        as_app.execute("INSERT INTO h3_later_table VALUES (1)")
        _refused(as_app, "UPDATE trading_ledgerentry SET quantity = quantity")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE h3_later_table")
            cursor.execute(f"REVOKE UPDATE ON trading_ledgerentry FROM {role}")


def test_grants_refuse_a_missing_or_powerful_application_role(app_role):
    with pytest.raises(ApplicationRoleError, match="does not exist"):
        grant_application_role(connection, "registry_no_such_role")
    with pytest.raises(ApplicationRoleError, match="too powerful"):
        grant_application_role(
            connection, connection.settings_dict["USER"]
        )  # the superuser owner


def test_release_refuses_a_pending_request(
    as_app, issue, seller, seller_account, buyer_account
):
    """The application may call the ledger's functions in any order; a pending
    request keeps its reservation whatever it calls."""
    issue()
    request = services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=100,
        price_per_tonne="80",
        idempotency_key="pending-release",
    )
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        as_app.execute("SELECT trading_release(%s, NULL)", (request.pk,))
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        as_app.execute("SELECT trading_reserve(%s, %s)", (request.pk, seller.pk))
    assert get_account_balance(account=seller_account)["reserved"] == 100
    assert verify_ledger(record=False).ok


def test_settle_refuses_the_initiator_and_issue_refuses_a_second_time(
    as_app, issue, admin, seller_account
):
    batch = issue()
    request = services.request_cancellation(
        actor=admin,
        from_account=seller_account,
        quantity=10,
        note="reversal",
        idempotency_key="self-settle",
    )
    with pytest.raises(Refused, match="initiator"):
        as_app.execute("SELECT * FROM trading_settle(%s, %s)", (request.pk, admin.pk))
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        as_app.execute(
            "SELECT trading_issue_blocks(%s, %s, NULL, %s)",
            (batch.pk, seller_account.pk, admin.pk),
        )
    request.refresh_from_db()
    assert request.status == TradeRequest.Status.PENDING
    assert verify_ledger(record=False).ok


def test_the_whole_ledger_path_works_as_the_application_role(
    django_as_app,
    issue,
    seller,
    seller_account,
    buyer,
    buyer_account,
    admin,
    second_admin,
):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (django_as_app,)

    issue(quantity=1000, buffer=100)
    transfer = services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=100,
        price_per_tonne="80",
        idempotency_key="app-transfer",
    )
    services.approve_request(actor=admin, request=transfer)
    retirement = services.request_retirement(
        actor=buyer,
        from_account=buyer_account,
        quantity=40,
        beneficiary="贵州绿筑建设集团有限公司",
        purpose=TradeRequest.Purpose.VOLUNTARY,
        reporting_year=2025,
        idempotency_key="app-retirement",
    )
    services.approve_request(actor=admin, request=retirement)
    cancellation = services.request_cancellation(
        actor=admin,
        from_account=seller_account,
        quantity=10,
        note="reversal",
        idempotency_key="app-cancellation",
    )
    services.approve_request(actor=second_admin, request=cancellation)
    rejected = services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=50,
        price_per_tonne="80",
        idempotency_key="app-rejected",
    )
    services.reject_request(actor=admin, request=rejected, reason="wrong price")
    services.request_transfer(
        actor=seller,
        from_account=seller_account,
        to_account=buyer_account,
        quantity=25,
        price_per_tonne="80",
        idempotency_key="app-expired",
    )
    later = timezone.now() + timedelta(days=30)
    assert services.expire_stale_requests(now=later) == 1

    report = verify_ledger()
    assert report.ok, report.violations
    seller_balance = get_account_balance(account=seller_account)
    assert (seller_balance["active"], seller_balance["reserved"]) == (790, 0)
    assert get_account_balance(account=buyer_account)["active"] == 60
    retired = Account.objects.get(kind=Account.Kind.RETIREMENT)
    assert get_account_balance(account=retired)["retired"] == 40
    assert retirement.certificate.quantity == 40
    assert list(
        LedgerEntry.objects.order_by("sequence").values_list("kind", flat=True)
    ) == [
        "issue",
        "buffer",
        "reserve",
        "transfer",
        "reserve",
        "retire",
        "reserve",
        "cancel",
        "reserve",
        "release",
        "reserve",
        "release",
    ]
