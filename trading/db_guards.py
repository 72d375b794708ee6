"""SQL for the ledger's database side (used by migrations, the flush command
and the post-migrate grants): append-only journal triggers on PostgreSQL and
SQLite, exclusion constraints over serial ranges on PostgreSQL, PostgreSQL's
chaining trigger, its one-statement issue, reserve, settle and release
functions, and the application role's grants."""

from contextlib import contextmanager

from django.utils.translation import gettext as _

POSTGRES_FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist",
    """
    CREATE OR REPLACE FUNCTION trading_ledger_append_only() RETURNS trigger AS $$
    BEGIN
        IF current_setting('registry.ledger_purge', true) = 'on' THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION 'trading_ledgerentry is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE FUNCTION trading_ledger_append_only_row() RETURNS trigger AS $$
    BEGIN
        IF current_setting('registry.ledger_purge', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'trading_ledgerentry is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER trading_ledgerentry_append_only
    BEFORE UPDATE OR DELETE ON trading_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION trading_ledger_append_only_row()
    """,
    """
    CREATE TRIGGER trading_ledgerentry_no_truncate
    BEFORE TRUNCATE ON trading_ledgerentry
    FOR EACH STATEMENT EXECUTE FUNCTION trading_ledger_append_only()
    """,
    """
    ALTER TABLE trading_creditblock ADD CONSTRAINT trading_block_no_overlap
    EXCLUDE USING gist (
        batch_id WITH =, int8range(first_serial, last_serial, '[]') WITH &&
    )
    """,
    """
    ALTER TABLE registry_creditbatch ADD CONSTRAINT registry_batch_no_overlap
    EXCLUDE USING gist (int8range(first_serial, last_serial, '[]') WITH &&)
    """,
]
POSTGRES_BACKWARD = [
    "ALTER TABLE registry_creditbatch DROP CONSTRAINT registry_batch_no_overlap",
    "ALTER TABLE trading_creditblock DROP CONSTRAINT trading_block_no_overlap",
    "DROP TRIGGER trading_ledgerentry_no_truncate ON trading_ledgerentry",
    "DROP TRIGGER trading_ledgerentry_append_only ON trading_ledgerentry",
    "DROP FUNCTION trading_ledger_append_only_row()",
    "DROP FUNCTION trading_ledger_append_only()",
]
# The journal's hash chain, computed by the database as each entry is inserted
# (the same formulas as trading.chain: the content as jsonb text, then the
# link). The head is locked inside the INSERT, the last statement of every
# ledger transaction, rather than a round trip earlier, so concurrent
# transactions queue on it only for their commit. A client cannot choose its
# own sequence or hashes.
LINK_FUNCTION = """
CREATE OR REPLACE FUNCTION trading_ledger_link() RETURNS trigger AS $$
DECLARE
    head_sequence bigint;
    head_hash varchar(64);
BEGIN
    NEW.content_hash := encode(sha256(convert_to(jsonb_build_object(
        'kind', NEW.kind,
        'batch', NEW.batch_id,
        'first_serial', NEW.first_serial,
        'last_serial', NEW.last_serial,
        'quantity', NEW.quantity,
        'from_account', NEW.from_account_id,
        'to_account', NEW.to_account_id,
        'price_per_tonne', NEW.price_per_tonne::text,
        'currency', NEW.currency,
        'trade_request', NEW.trade_request_id,
        'actor', NEW.actor_id,
        'idempotency_key', NEW.idempotency_key,
        'created_at', (extract(epoch FROM NEW.created_at) * 1000000)::bigint
    )::text, 'UTF8')), 'hex');
    SELECT last_sequence, last_hash INTO head_sequence, head_hash
      FROM trading_ledgerhead WHERE id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO trading_ledgerhead (id, last_sequence, last_hash)
        VALUES (1, 0, repeat('0', 64)) ON CONFLICT (id) DO NOTHING;
        SELECT last_sequence, last_hash INTO head_sequence, head_hash
          FROM trading_ledgerhead WHERE id = 1 FOR UPDATE;
    END IF;
    NEW.sequence := head_sequence + 1;
    NEW.previous_hash := head_hash;
    NEW.entry_hash := encode(sha256(convert_to(
        head_hash || ':' || NEW.sequence || ':' || NEW.content_hash, 'UTF8'
    )), 'hex');
    UPDATE trading_ledgerhead
       SET last_sequence = NEW.sequence, last_hash = NEW.entry_hash
     WHERE id = 1;
    RETURN NEW;
END
$$ LANGUAGE plpgsql
"""
LINK_TRIGGER = """
CREATE TRIGGER trading_ledgerentry_link
BEFORE INSERT ON trading_ledgerentry
FOR EACH ROW EXECUTE FUNCTION trading_ledger_link()
"""
POSTGRES_CHAIN_FORWARD = [LINK_FUNCTION, LINK_TRIGGER]
POSTGRES_CHAIN_BACKWARD = [
    "DROP TRIGGER trading_ledgerentry_link ON trading_ledgerentry",
    "DROP FUNCTION trading_ledger_link()",
]

# The two steps of every trade, each one statement on PostgreSQL: the same
# rules as trading.services' Python (which SQLite uses; the whole test suite
# runs on both), without a round trip per row. Locks in the services' order:
# the spending account (reserve) or the request (settle), then its blocks,
# and the journal head last, through the insert trigger.
RESERVE_FUNCTION = """
CREATE OR REPLACE FUNCTION trading_reserve(p_request bigint, p_actor bigint)
RETURNS bigint AS $$
-- Reserve the request's quantity from its account's active blocks, oldest
-- batch first, splitting the last block used; returns the tonnes that were
-- available (fewer than asked: nothing was changed).
DECLARE
    r trading_traderequest%ROWTYPE;
    block record;
    available bigint;
    remaining bigint;
    taken bigint;
    batches bigint[] := '{}';
    firsts bigint[] := '{}';
    lasts bigint[] := '{}';
BEGIN
    SELECT * INTO STRICT r FROM trading_traderequest WHERE id = p_request;
    PERFORM 1 FROM registry_account WHERE id = r.from_account_id FOR NO KEY UPDATE;
    SELECT coalesce(sum(b.quantity), 0) INTO available
      FROM trading_creditblock b
      JOIN registry_creditbatch batch ON batch.id = b.batch_id
     WHERE b.account_id = r.from_account_id AND b.state = 'active'
       AND (r.batch_id IS NULL OR b.batch_id = r.batch_id)
       AND (r.vintage IS NULL OR batch.vintage = r.vintage);
    IF available < r.quantity THEN
        RETURN available;
    END IF;
    remaining := r.quantity;
    FOR block IN
        SELECT b.id, b.batch_id, b.first_serial, b.last_serial, b.quantity
          FROM trading_creditblock b
          JOIN registry_creditbatch batch ON batch.id = b.batch_id
         WHERE b.account_id = r.from_account_id AND b.state = 'active'
           AND (r.batch_id IS NULL OR b.batch_id = r.batch_id)
           AND (r.vintage IS NULL OR batch.vintage = r.vintage)
         ORDER BY batch.issued_at, b.batch_id, b.first_serial
           FOR NO KEY UPDATE OF b
    LOOP
        EXIT WHEN remaining = 0;
        taken := least(block.quantity, remaining);
        UPDATE trading_creditblock
           SET last_serial = block.first_serial + taken - 1, quantity = taken,
               state = 'reserved', trade_request_id = r.id, updated_at = now()
         WHERE id = block.id;
        IF taken < block.quantity THEN
            INSERT INTO trading_creditblock (batch_id, account_id, first_serial,
                last_serial, quantity, state, trade_request_id, updated_at)
            VALUES (block.batch_id, r.from_account_id, block.first_serial + taken,
                block.last_serial, block.quantity - taken, 'active', NULL, now());
        END IF;
        batches := batches || block.batch_id;
        firsts := firsts || block.first_serial;
        lasts := lasts || (block.first_serial + taken - 1);
        remaining := remaining - taken;
    END LOOP;
    INSERT INTO trading_ledgerentry (kind, batch_id, first_serial, last_serial,
        quantity, from_account_id, to_account_id, price_per_tonne, currency,
        trade_request_id, actor_id, idempotency_key, created_at)
    SELECT 'reserve', m.batch, m.first, m.last, m.last - m.first + 1,
           r.from_account_id, r.from_account_id, NULL, '', r.id, p_actor,
           r.idempotency_key, now()
      FROM unnest(batches, firsts, lasts) WITH ORDINALITY AS m(batch, first, last, n)
     ORDER BY m.n;
    RETURN available;
END
$$ LANGUAGE plpgsql
"""
SETTLE_FUNCTION = """
CREATE OR REPLACE FUNCTION trading_settle(p_request bigint, p_actor bigint,
    OUT settled boolean, OUT outcome varchar, OUT review_time timestamptz) AS $$
-- Settle a pending, unexpired request: its reserved blocks move to the buyer
-- or become retired or cancelled. If settled is false nothing changed, and
-- outcome says why (the request's status; 'overdue': pending past its time).
DECLARE
    r trading_traderequest%ROWTYPE;
BEGIN
    UPDATE trading_traderequest
       SET status = 'settled', reviewed_by_id = p_actor, reviewed_at = now()
     WHERE id = p_request AND status = 'pending' AND expires_at > now()
    RETURNING * INTO r;
    IF NOT FOUND THEN
        settled := false;
        SELECT request.status INTO STRICT outcome
          FROM trading_traderequest request WHERE request.id = p_request;
        IF outcome = 'pending' THEN
            outcome := 'overdue';
        END IF;
        RETURN;
    END IF;
    WITH moved AS (
        UPDATE trading_creditblock
           SET account_id = r.to_account_id, trade_request_id = NULL,
               updated_at = now(),
               state = CASE r.kind WHEN 'transfer' THEN 'active'
                                   WHEN 'retirement' THEN 'retired'
                                   ELSE 'cancelled' END
         WHERE trade_request_id = r.id AND state = 'reserved'
        RETURNING batch_id, first_serial, last_serial, quantity
    )
    INSERT INTO trading_ledgerentry (kind, batch_id, first_serial, last_serial,
        quantity, from_account_id, to_account_id, price_per_tonne, currency,
        trade_request_id, actor_id, idempotency_key, created_at)
    SELECT CASE r.kind WHEN 'transfer' THEN 'transfer'
                       WHEN 'retirement' THEN 'retire'
                       ELSE 'cancel' END,
           moved.batch_id, moved.first_serial, moved.last_serial, moved.quantity,
           r.from_account_id, r.to_account_id, r.price_per_tonne,
           CASE WHEN r.price_per_tonne IS NULL THEN '' ELSE r.currency END,
           r.id, p_actor, '', now()
      FROM moved ORDER BY moved.batch_id, moved.first_serial;
    settled := true;
    outcome := r.status;
    review_time := r.reviewed_at;
END
$$ LANGUAGE plpgsql
"""
POSTGRES_TRADE_FORWARD = [LINK_FUNCTION, RESERVE_FUNCTION, SETTLE_FUNCTION]
POSTGRES_TRADE_BACKWARD = [
    "DROP FUNCTION trading_settle(bigint, bigint)",
    "DROP FUNCTION trading_reserve(bigint, bigint)",
]
# No double issuance: one project's batches never share a day of their
# monitoring periods (trading.services checks it first, with a clear message).
POSTGRES_PERIODS_FORWARD = [
    """
    ALTER TABLE registry_creditbatch ADD CONSTRAINT registry_batch_periods_no_overlap
    EXCLUDE USING gist (
        project_id WITH =, daterange(monitoring_start, monitoring_end, '[]') WITH &&
    )
    """,
]
POSTGRES_PERIODS_BACKWARD = [
    "ALTER TABLE registry_creditbatch "
    "DROP CONSTRAINT registry_batch_periods_no_overlap",
]

SQLITE_FORWARD = [
    """
    CREATE TRIGGER trading_ledgerentry_no_update BEFORE UPDATE ON trading_ledgerentry
    BEGIN SELECT RAISE(ABORT, 'trading_ledgerentry is append-only: UPDATE refused'); END
    """,
    """
    CREATE TRIGGER trading_ledgerentry_no_delete BEFORE DELETE ON trading_ledgerentry
    BEGIN SELECT RAISE(ABORT, 'trading_ledgerentry is append-only: DELETE refused'); END
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER trading_ledgerentry_no_delete",
    "DROP TRIGGER trading_ledgerentry_no_update",
]


def run_for_vendor(statements_by_vendor: dict[str, list[str]]):
    """A RunPython function executing the statements for the migrating
    database's vendor (none for other vendors)."""

    def run(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        for statement in statements_by_vendor.get(vendor, []):
            schema_editor.execute(statement, params=None)

    return run


@contextmanager
def ledger_purge_allowed(connection):
    """Let ``flush`` empty the journal: the only sanctioned way (tests, a fresh
    demo). PostgreSQL: a session setting the triggers honour; SQLite: the
    triggers are dropped and put back."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET registry.ledger_purge = 'on'")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET registry.ledger_purge")
    elif connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            for statement in SQLITE_BACKWARD:
                cursor.execute(
                    statement.replace("DROP TRIGGER", "DROP TRIGGER IF EXISTS")
                )
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                for statement in SQLITE_FORWARD:
                    cursor.execute(statement)
    else:
        yield


def relink_journal(apps, schema_editor) -> None:
    """Recompute every entry's hashes in the current form of trading.chain, in
    sequence order (a migration's step when that form changes): the entries'
    contents are untouched, and the append-only guard is lifted for this step
    alone."""
    from trading import chain
    from trading.models import LedgerEntry as CurrentEntry

    entries = apps.get_model("trading", "LedgerEntry")
    head = apps.get_model("trading", "LedgerHead")
    vendor = schema_editor.connection.vendor
    guard = "ALTER TABLE trading_ledgerentry {} TRIGGER trading_ledgerentry_append_only"
    if vendor == "postgresql":
        schema_editor.execute(guard.format("DISABLE"))
    elif vendor == "sqlite":
        # Altering the table rebuilds it on SQLite, which drops its triggers;
        # they are put back below in every case.
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(
                statement.replace("DROP TRIGGER", "DROP TRIGGER IF EXISTS")
            )
    previous, sequence = chain.GENESIS, 0
    for entry in entries.objects.order_by("sequence"):
        sequence = entry.sequence
        content = chain.content_hash(CurrentEntry.payload(entry))
        link = chain.link_hash(previous, sequence, content)
        entries.objects.filter(pk=entry.pk).update(
            content_hash=content, previous_hash=previous, entry_hash=link
        )
        previous = link
    if sequence:
        head.objects.update_or_create(
            pk=1, defaults={"last_sequence": sequence, "last_hash": previous}
        )
    if vendor == "postgresql":
        schema_editor.execute(guard.format("ENABLE"))
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


# Two database roles (migration 0008) ------------------------------------------
#
# The owner role owns the schema and runs migrations; the application role
# (web, worker, beat) owns nothing. It may read the journal, its head and the
# credit blocks but not write them: every change to them goes through the
# ledger's functions below, which run with the owner's rights (SECURITY
# DEFINER, a fixed search_path) and take the same steps as trading.services'
# Python. Grants are applied after every migrate by grant_application_role.

DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"


def definer(function_sql: str) -> str:
    """A function definition that runs with its owner's rights, resolving names
    in ``public`` only (pg_temp last, so a caller's temporary table cannot
    stand in for a ledger table)."""
    body = function_sql.rstrip()
    assert body.endswith("LANGUAGE plpgsql"), body[-40:]
    return f"{body} {DEFINER}\n"


# Any session can set a custom setting, so the purge setting is honoured only
# for a session whose login role is (a member of) the journal's owner: the
# owner or a superuser. The application role's own privileges already refuse
# UPDATE, DELETE and TRUNCATE; this keeps the guard up even if a grant slips.
_OWNER_PURGING = """
    current_setting('registry.ledger_purge', true) = 'on'
    AND pg_has_role(
        session_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER'
    )
"""
OWNER_ONLY_PURGE_FUNCTIONS = [
    f"""
    CREATE OR REPLACE FUNCTION trading_ledger_append_only() RETURNS trigger AS $$
    BEGIN
        IF {_OWNER_PURGING} THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION 'trading_ledgerentry is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$ LANGUAGE plpgsql
    """,
    f"""
    CREATE OR REPLACE FUNCTION trading_ledger_append_only_row() RETURNS trigger AS $$
    BEGIN
        IF {_OWNER_PURGING} THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'trading_ledgerentry is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$ LANGUAGE plpgsql
    """,
]

# trading_reserve, refusing a request that is not pending or already holds
# serials: the application may call it, so it must not reserve twice.
GUARDED_RESERVE_FUNCTION = RESERVE_FUNCTION.replace(
    """    SELECT * INTO STRICT r FROM trading_traderequest WHERE id = p_request;
""",
    """    SELECT * INTO STRICT r FROM trading_traderequest WHERE id = p_request;
    IF r.status <> 'pending' OR EXISTS (
        SELECT 1 FROM trading_creditblock WHERE trade_request_id = r.id
    ) THEN
        RAISE EXCEPTION 'trading_reserve: request % is % or already reserved',
            r.id, r.status USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
""",
    1,
)
assert GUARDED_RESERVE_FUNCTION != RESERVE_FUNCTION
# trading_settle, refusing the request's own initiator as its reviewer
# (maker-checker, design section 5 invariant 7) in the database too.
GUARDED_SETTLE_FUNCTION = SETTLE_FUNCTION.replace(
    """BEGIN
    UPDATE trading_traderequest
""",
    """BEGIN
    IF EXISTS (SELECT 1 FROM trading_traderequest
                WHERE id = p_request AND initiator_id = p_actor) THEN
        RAISE EXCEPTION 'trading_settle: request % cannot be settled by its initiator',
            p_request USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE trading_traderequest
""",
    1,
)
assert GUARDED_SETTLE_FUNCTION != SETTLE_FUNCTION

ISSUE_BLOCKS_FUNCTION = """
CREATE OR REPLACE FUNCTION trading_issue_blocks(p_batch bigint, p_holder bigint,
    p_buffer bigint, p_actor bigint) RETURNS void AS $$
-- The blocks and journal entries of a batch just created: the holder's block,
-- then the buffer pool's, tiling the batch's serials exactly (the same steps
-- as trading.services.issue_batch). A batch is issued once.
DECLARE
    b registry_creditbatch%ROWTYPE;
    held bigint;
BEGIN
    SELECT * INTO STRICT b FROM registry_creditbatch WHERE id = p_batch FOR UPDATE;
    IF EXISTS (SELECT 1 FROM trading_creditblock WHERE batch_id = b.id) THEN
        RAISE EXCEPTION 'trading_issue_blocks: batch % is already issued', b.id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM 1 FROM registry_account WHERE id = p_holder AND kind = 'holding';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'trading_issue_blocks: account % is not a holding account',
            p_holder USING ERRCODE = 'check_violation';
    END IF;
    IF b.buffer_quantity > 0 THEN
        PERFORM 1 FROM registry_account WHERE id = p_buffer AND kind = 'buffer_pool';
        IF NOT FOUND THEN
            RAISE EXCEPTION 'trading_issue_blocks: account % is not a buffer pool',
                p_buffer USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    held := b.quantity - b.buffer_quantity;
    INSERT INTO trading_creditblock (batch_id, account_id, first_serial,
        last_serial, quantity, state, trade_request_id, updated_at)
    VALUES (b.id, p_holder, b.first_serial, b.first_serial + held - 1, held,
        'active', NULL, now());
    IF b.buffer_quantity > 0 THEN
        INSERT INTO trading_creditblock (batch_id, account_id, first_serial,
            last_serial, quantity, state, trade_request_id, updated_at)
        VALUES (b.id, p_buffer, b.first_serial + held, b.last_serial,
            b.buffer_quantity, 'active', NULL, now());
    END IF;
    INSERT INTO trading_ledgerentry (kind, batch_id, first_serial, last_serial,
        quantity, from_account_id, to_account_id, price_per_tonne, currency,
        trade_request_id, actor_id, idempotency_key, created_at)
    SELECT m.kind, b.id, m.first, m.last, m.last - m.first + 1, NULL, m.account,
           NULL, '', NULL, p_actor, '', now()
      FROM (VALUES (1, 'issue', b.first_serial, b.first_serial + held - 1, p_holder),
                   (2, 'buffer', b.first_serial + held, b.last_serial, p_buffer))
           AS m(n, kind, first, last, account)
     WHERE m.first <= m.last
     ORDER BY m.n;
END
$$ LANGUAGE plpgsql
"""
RELEASE_FUNCTION = """
CREATE OR REPLACE FUNCTION trading_release(p_request bigint, p_actor bigint)
RETURNS void AS $$
-- Give a rejected or expired request's reserved serials back to its account as
-- active credits, one journal entry per block (the same steps as
-- trading.services._release). A pending request keeps its reservation.
DECLARE
    r trading_traderequest%ROWTYPE;
BEGIN
    SELECT * INTO STRICT r FROM trading_traderequest WHERE id = p_request;
    IF r.status NOT IN ('rejected', 'expired') THEN
        RAISE EXCEPTION 'trading_release: request % is %, not rejected or expired',
            r.id, r.status USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    WITH released AS (
        UPDATE trading_creditblock
           SET state = 'active', trade_request_id = NULL, updated_at = now()
         WHERE trade_request_id = r.id AND state = 'reserved'
        RETURNING batch_id, first_serial, last_serial, quantity
    )
    INSERT INTO trading_ledgerentry (kind, batch_id, first_serial, last_serial,
        quantity, from_account_id, to_account_id, price_per_tonne, currency,
        trade_request_id, actor_id, idempotency_key, created_at)
    SELECT 'release', released.batch_id, released.first_serial,
           released.last_serial, released.quantity, r.from_account_id,
           r.from_account_id, NULL, '', r.id, p_actor, '', now()
      FROM released ORDER BY released.batch_id, released.first_serial;
END
$$ LANGUAGE plpgsql
"""
# What the application role may call (EXECUTE is revoked from PUBLIC).
LEDGER_FUNCTIONS = (
    "trading_issue_blocks(bigint, bigint, bigint, bigint)",
    "trading_reserve(bigint, bigint)",
    "trading_settle(bigint, bigint)",
    "trading_release(bigint, bigint)",
)
POSTGRES_ROLES_FORWARD = [
    *OWNER_ONLY_PURGE_FUNCTIONS,
    # The chaining trigger writes the head with the owner's rights, so the
    # application needs no privilege on it (its body is left as it is).
    f"ALTER FUNCTION trading_ledger_link() {DEFINER}",
    definer(GUARDED_RESERVE_FUNCTION),
    definer(GUARDED_SETTLE_FUNCTION),
    definer(ISSUE_BLOCKS_FUNCTION),
    definer(RELEASE_FUNCTION),
    *(f"REVOKE EXECUTE ON FUNCTION {f} FROM PUBLIC" for f in LEDGER_FUNCTIONS),
]
POSTGRES_ROLES_BACKWARD = [
    "DROP FUNCTION trading_release(bigint, bigint)",
    "DROP FUNCTION trading_issue_blocks(bigint, bigint, bigint, bigint)",
    # CREATE OR REPLACE puts back the invoker's rights and no search_path.
    *POSTGRES_FORWARD[1:3],
    "ALTER FUNCTION trading_ledger_link() SECURITY INVOKER RESET search_path",
    RESERVE_FUNCTION,
    SETTLE_FUNCTION,
    *(f"GRANT EXECUTE ON FUNCTION {f} TO PUBLIC" for f in LEDGER_FUNCTIONS[1:3]),
]

# The journal, its head and the blocks: read-only for the application role.
GUARDED_TABLES = ("trading_ledgerentry", "trading_ledgerhead", "trading_creditblock")
# Records the application adds to but never rewrites: published journal heads
# and the audit's results.
APPEND_ONLY_TABLES = ("trading_journalanchor", "trading_ledgercheck")


class ApplicationRoleError(Exception):
    """The configured application role is missing or too powerful."""


def grant_application_role(connection, role: str) -> None:
    """Give ``role`` ordinary rights on every table and sequence of the schema
    that the connected (owner) role may grant, read-only rights on the guarded
    tables, and EXECUTE on the ledger's functions. Idempotent: every grant is
    revoked first, so tables made by later migrations are covered and nothing
    granted by hand survives. Refuses a role that is missing, a superuser, or
    owns or may act as the owner."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT r.rolsuper OR r.rolbypassrls OR r.rolcreaterole
                   OR pg_has_role(r.oid, current_user, 'MEMBER')
                   OR EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid)
              FROM pg_roles r WHERE r.rolname = %s
            """,
            [role],
        )
        row = cursor.fetchone()
        if row is None:
            raise ApplicationRoleError(
                _(
                    "DATABASE_APP_ROLE names the database role %(role)s, which "
                    "does not exist: create it first (see docker/postgres-init/)."
                )
                % {"role": role}
            )
        if row[0]:
            raise ApplicationRoleError(
                _(
                    "The database role %(role)s in DATABASE_APP_ROLE is too "
                    "powerful: the application role must not be a superuser, "
                    "create roles, bypass row security, own anything or be a "
                    "member of the owner role."
                )
                % {"role": role}
            )
        # Relations of the schema the connected role may grant on, leaving out
        # extensions' own tables (PostGIS's spatial_ref_sys).
        cursor.execute(
            """
            SELECT c.relname, c.relkind FROM pg_class c
              JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
               AND pg_has_role(current_user, c.relowner, 'USAGE')
               AND NOT EXISTS (
                   SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                      AND d.deptype = 'e')
             ORDER BY c.relname
            """
        )
        relations = cursor.fetchall()
        grantee = quote(role)
        # It uses the schema but creates nothing in it (PostgreSQL 15's default
        # for PUBLIC, kept on clusters upgraded from earlier versions).
        statements = [
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            f"REVOKE CREATE ON SCHEMA public FROM {grantee}",
            f"GRANT USAGE ON SCHEMA public TO {grantee}",
        ]
        for name, kind in relations:
            statements.append(f"REVOKE ALL ON {quote(name)} FROM {grantee}")
            if kind == "S":
                rights = "USAGE, SELECT"
            elif kind in ("v", "m") or name in GUARDED_TABLES:
                rights = "SELECT"
            elif name in APPEND_ONLY_TABLES:
                rights = "SELECT, INSERT"
            else:
                rights = "SELECT, INSERT, UPDATE, DELETE"
            statements.append(f"GRANT {rights} ON {quote(name)} TO {grantee}")
        # A restore (pg_restore --no-acl) makes the functions again with
        # PostgreSQL's default, EXECUTE for PUBLIC: revoked again here.
        for function in LEDGER_FUNCTIONS:
            statements += [
                f"REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC",
                f"GRANT EXECUTE ON FUNCTION {function} TO {grantee}",
            ]
        cursor.execute(";\n".join(statements))


# The market (migration 0010, trading.market) ---------------------------------
#
# Listed credits are blocks in the state 'listed' pointing at their listing;
# the functions below list, delist, order and return them in one statement
# each, with the owner's rights, taking the same steps as trading.market's
# Python (SQLite). Locks in the ledger's order: the seller's account, then the
# listing, then a request, its blocks, and the journal head last.

# The chain covers an entry's listing too, present only when it has one, so
# the hashes of every entry made before the market stay as they were.
MARKET_LINK_FUNCTION = LINK_FUNCTION.replace(
    """    NEW.content_hash := encode(sha256(convert_to(jsonb_build_object(""",
    """    NEW.content_hash := encode(sha256(convert_to((jsonb_build_object(""",
    1,
).replace(
    """        'created_at', (extract(epoch FROM NEW.created_at) * 1000000)::bigint
    )::text, 'UTF8')), 'hex');""",
    """        'created_at', (extract(epoch FROM NEW.created_at) * 1000000)::bigint
    ) || CASE WHEN NEW.listing_id IS NULL THEN '{}'::jsonb
              ELSE jsonb_build_object('listing', NEW.listing_id) END
    )::text, 'UTF8')), 'hex');""",
    1,
)
assert MARKET_LINK_FUNCTION.count("listing_id") == 2, "the link function changed"

LIST_FUNCTION = """
CREATE OR REPLACE FUNCTION trading_list(p_listing bigint, p_actor bigint)
RETURNS bigint AS $$
-- Put a new listing's quantity of its batch on the market: the seller's
-- active serials, lowest first, become 'listed' (the last block used is
-- split). Returns the tonnes that were available; fewer than listed: nothing
-- was changed. A listing is listed once.
DECLARE
    l trading_listing%ROWTYPE;
    block record;
    available bigint;
    remaining bigint;
    taken bigint;
    firsts bigint[] := '{}';
    lasts bigint[] := '{}';
BEGIN
    SELECT * INTO STRICT l FROM trading_listing WHERE id = p_listing;
    PERFORM 1 FROM registry_account WHERE id = l.account_id FOR NO KEY UPDATE;
    SELECT * INTO STRICT l FROM trading_listing WHERE id = p_listing
       FOR NO KEY UPDATE;
    IF l.status <> 'open' OR EXISTS (
        SELECT 1 FROM trading_ledgerentry WHERE listing_id = l.id
    ) THEN
        RAISE EXCEPTION 'trading_list: listing % is % or already listed',
            l.id, l.status USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT coalesce(sum(b.quantity), 0) INTO available
      FROM trading_creditblock b
     WHERE b.account_id = l.account_id AND b.batch_id = l.batch_id
       AND b.state = 'active';
    IF available < l.quantity_left THEN
        RETURN available;
    END IF;
    remaining := l.quantity_left;
    FOR block IN
        SELECT b.id, b.first_serial, b.last_serial, b.quantity
          FROM trading_creditblock b
         WHERE b.account_id = l.account_id AND b.batch_id = l.batch_id
           AND b.state = 'active'
         ORDER BY b.first_serial
           FOR NO KEY UPDATE
    LOOP
        EXIT WHEN remaining = 0;
        taken := least(block.quantity, remaining);
        UPDATE trading_creditblock
           SET last_serial = block.first_serial + taken - 1, quantity = taken,
               state = 'listed', listing_id = l.id, updated_at = now()
         WHERE id = block.id;
        IF taken < block.quantity THEN
            INSERT INTO trading_creditblock (batch_id, account_id, first_serial,
                last_serial, quantity, state, trade_request_id, listing_id,
                updated_at)
            VALUES (l.batch_id, l.account_id, block.first_serial + taken,
                block.last_serial, block.quantity - taken, 'active', NULL, NULL,
                now());
        END IF;
        firsts := firsts || block.first_serial;
        lasts := lasts || (block.first_serial + taken - 1);
        remaining := remaining - taken;
    END LOOP;
    INSERT INTO trading_ledgerentry (kind, batch_id, first_serial, last_serial,
        quantity, from_account_id, to_account_id, price_per_tonne, currency,
        trade_request_id, listing_id, actor_id, idempotency_key, created_at)
    SELECT 'list', l.batch_id, m.first, m.last, m.last - m.first + 1,
           l.account_id, l.account_id, NULL, '', NULL, l.id, p_actor,
           l.idempotency_key, now()
      FROM unnest(firsts, lasts) AS m(first, last)
     ORDER BY m.first;
    RETURN available;
END
$$ LANGUAGE plpgsql
"""
DELIST_FUNCTION = """
CREATE OR REPLACE FUNCTION trading_delist(p_listing bigint, p_keep bigint,
    p_actor bigint) RETURNS void AS $$
-- Keep p_keep tonnes of an open listing on the market and give the rest back
-- to the seller as active credits, highest serials first (orders take the
-- lowest), splitting the block at the boundary.
DECLARE
    l trading_listing%ROWTYPE;
    block record;
    remaining bigint;
    taken bigint;
    firsts bigint[] := '{}';
    lasts bigint[] := '{}';
BEGIN
    SELECT * INTO STRICT l FROM trading_listing WHERE id = p_listing;
    PERFORM 1 FROM registry_account WHERE id = l.account_id FOR NO KEY UPDATE;
    SELECT * INTO STRICT l FROM trading_listing WHERE id = p_listing
       FOR NO KEY UPDATE;
    IF l.status <> 'open' OR p_keep < 0 OR p_keep >= l.quantity_left THEN
        RAISE EXCEPTION 'trading_delist: listing % is % with % t left; cannot keep %',
            l.id, l.status, l.quantity_left, p_keep
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    remaining := l.quantity_left - p_keep;
    FOR block IN
        SELECT b.id, b.first_serial, b.last_serial, b.quantity
          FROM trading_creditblock b
         WHERE b.listing_id = l.id AND b.state = 'listed'
         ORDER BY b.first_serial DESC
           FOR NO KEY UPDATE
    LOOP
        EXIT WHEN remaining = 0;
        taken := least(block.quantity, remaining);
        IF taken = block.quantity THEN
            UPDATE trading_creditblock
               SET state = 'active', listing_id = NULL, updated_at = now()
             WHERE id = block.id;
        ELSE
            UPDATE trading_creditblock
               SET last_serial = block.last_serial - taken,
                   quantity = block.quantity - taken, updated_at = now()
             WHERE id = block.id;
            INSERT INTO trading_creditblock (batch_id, account_id, first_serial,
                last_serial, quantity, state, trade_request_id, listing_id,
                updated_at)
            VALUES (l.batch_id, l.account_id, block.last_serial - taken + 1,
                block.last_serial, taken, 'active', NULL, NULL, now());
        END IF;
        firsts := firsts || (block.last_serial - taken + 1);
        lasts := lasts || block.last_serial;
        remaining := remaining - taken;
    END LOOP;
    UPDATE trading_listing SET quantity_left = p_keep WHERE id = l.id;
    INSERT INTO trading_ledgerentry (kind, batch_id, first_serial, last_serial,
        quantity, from_account_id, to_account_id, price_per_tonne, currency,
        trade_request_id, listing_id, actor_id, idempotency_key, created_at)
    SELECT 'delist', l.batch_id, m.first, m.last, m.last - m.first + 1,
           l.account_id, l.account_id, NULL, '', NULL, l.id, p_actor, '', now()
      FROM unnest(firsts, lasts) AS m(first, last)
     ORDER BY m.first;
END
$$ LANGUAGE plpgsql
"""
ORDER_FUNCTION = """
CREATE OR REPLACE FUNCTION trading_order(p_request bigint, p_actor bigint)
RETURNS bigint AS $$
-- Move an order's quantity from its listing to the order's request: the
-- listing's lowest listed serials become 'reserved' for it. Returns the
-- tonnes the listing had left (-1: it is no longer open); nothing changed
-- unless the order fits (at most what is left, at least the minimum lot
-- unless it takes all that is left). The listing's lock decides races.
DECLARE
    r trading_traderequest%ROWTYPE;
    l trading_listing%ROWTYPE;
    block record;
    remaining bigint;
    taken bigint;
    firsts bigint[] := '{}';
    lasts bigint[] := '{}';
BEGIN
    SELECT * INTO STRICT r FROM trading_traderequest WHERE id = p_request;
    IF r.status <> 'awaiting_payment' OR EXISTS (
        SELECT 1 FROM trading_creditblock WHERE trade_request_id = r.id
    ) THEN
        RAISE EXCEPTION 'trading_order: request % is % or already reserved',
            r.id, r.status USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT listing.* INTO STRICT l
      FROM trading_listing listing
      JOIN trading_order o ON o.listing_id = listing.id
     WHERE o.trade_request_id = r.id
       FOR NO KEY UPDATE OF listing;
    IF l.account_id <> r.from_account_id OR l.batch_id IS DISTINCT FROM r.batch_id THEN
        RAISE EXCEPTION 'trading_order: request % does not match listing %',
            r.id, l.id USING ERRCODE = 'check_violation';
    END IF;
    IF l.status <> 'open' THEN
        RETURN -1;
    END IF;
    IF r.quantity > l.quantity_left
       OR (r.quantity < l.minimum_lot AND r.quantity <> l.quantity_left) THEN
        RETURN l.quantity_left;
    END IF;
    remaining := r.quantity;
    FOR block IN
        SELECT b.id, b.first_serial, b.last_serial, b.quantity
          FROM trading_creditblock b
         WHERE b.listing_id = l.id AND b.state = 'listed'
         ORDER BY b.first_serial
           FOR NO KEY UPDATE
    LOOP
        EXIT WHEN remaining = 0;
        taken := least(block.quantity, remaining);
        UPDATE trading_creditblock
           SET last_serial = block.first_serial + taken - 1, quantity = taken,
               state = 'reserved', listing_id = NULL, trade_request_id = r.id,
               updated_at = now()
         WHERE id = block.id;
        IF taken < block.quantity THEN
            INSERT INTO trading_creditblock (batch_id, account_id, first_serial,
                last_serial, quantity, state, trade_request_id, listing_id,
                updated_at)
            VALUES (l.batch_id, l.account_id, block.first_serial + taken,
                block.last_serial, block.quantity - taken, 'listed', NULL, l.id,
                now());
        END IF;
        firsts := firsts || block.first_serial;
        lasts := lasts || (block.first_serial + taken - 1);
        remaining := remaining - taken;
    END LOOP;
    UPDATE trading_listing SET quantity_left = quantity_left - r.quantity
     WHERE id = l.id;
    INSERT INTO trading_ledgerentry (kind, batch_id, first_serial, last_serial,
        quantity, from_account_id, to_account_id, price_per_tonne, currency,
        trade_request_id, listing_id, actor_id, idempotency_key, created_at)
    SELECT 'order', l.batch_id, m.first, m.last, m.last - m.first + 1,
           r.from_account_id, r.from_account_id, NULL, '', r.id, l.id, p_actor,
           r.idempotency_key, now()
      FROM unnest(firsts, lasts) AS m(first, last)
     ORDER BY m.first;
    RETURN l.quantity_left;
END
$$ LANGUAGE plpgsql
"""
# trading_release, now also for an order the seller declined, and giving an
# order's serials back to its listing while the listing is open (else to the
# seller's active credits, as before).
MARKET_RELEASE_FUNCTION = """
CREATE OR REPLACE FUNCTION trading_release(p_request bigint, p_actor bigint)
RETURNS void AS $$
-- Give a rejected, declined or expired request's reserved serials back, one
-- journal entry per block (the same steps as trading.services._release): to
-- the listing an order came from while that listing is open ('return'), else
-- to its account as active credits ('release'). A pending request keeps its
-- reservation.
DECLARE
    r trading_traderequest%ROWTYPE;
    back_to bigint;
    returned bigint;
BEGIN
    SELECT * INTO STRICT r FROM trading_traderequest WHERE id = p_request;
    IF r.status NOT IN ('rejected', 'declined', 'expired') THEN
        RAISE EXCEPTION
            'trading_release: request % is %, not rejected, declined or expired',
            r.id, r.status USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    SELECT listing.id INTO back_to
      FROM trading_listing listing
      JOIN trading_order o ON o.listing_id = listing.id
     WHERE o.trade_request_id = r.id AND listing.status = 'open'
       FOR NO KEY UPDATE OF listing;
    IF back_to IS NULL THEN
        WITH released AS (
            UPDATE trading_creditblock
               SET state = 'active', trade_request_id = NULL, updated_at = now()
             WHERE trade_request_id = r.id AND state = 'reserved'
            RETURNING batch_id, first_serial, last_serial, quantity
        )
        INSERT INTO trading_ledgerentry (kind, batch_id, first_serial,
            last_serial, quantity, from_account_id, to_account_id,
            price_per_tonne, currency, trade_request_id, actor_id,
            idempotency_key, created_at)
        SELECT 'release', released.batch_id, released.first_serial,
               released.last_serial, released.quantity, r.from_account_id,
               r.from_account_id, NULL, '', r.id, p_actor, '', now()
          FROM released ORDER BY released.batch_id, released.first_serial;
        RETURN;
    END IF;
    WITH released AS (
        UPDATE trading_creditblock
           SET state = 'listed', listing_id = back_to, trade_request_id = NULL,
               updated_at = now()
         WHERE trade_request_id = r.id AND state = 'reserved'
        RETURNING batch_id, first_serial, last_serial, quantity
    ), entries AS (
        INSERT INTO trading_ledgerentry (kind, batch_id, first_serial,
            last_serial, quantity, from_account_id, to_account_id,
            price_per_tonne, currency, trade_request_id, listing_id, actor_id,
            idempotency_key, created_at)
        SELECT 'return', released.batch_id, released.first_serial,
               released.last_serial, released.quantity, r.from_account_id,
               r.from_account_id, NULL, '', r.id, back_to, p_actor, '', now()
          FROM released ORDER BY released.batch_id, released.first_serial
        RETURNING quantity
    )
    SELECT coalesce(sum(quantity), 0) INTO returned FROM entries;
    UPDATE trading_listing SET quantity_left = quantity_left + returned
     WHERE id = back_to;
END
$$ LANGUAGE plpgsql
"""
# trading_settle, delivering an order with retirement on delivery: the
# serials reach the buyer (transfer entries, at the price) and are reserved
# there for the order's retirement request, which is settled in the same
# statement (retire entries), so the buyer never holds them as spendable.
MARKET_SETTLE_FUNCTION = (
    GUARDED_SETTLE_FUNCTION.replace(
        """DECLARE
    r trading_traderequest%ROWTYPE;
BEGIN""",
        """DECLARE
    r trading_traderequest%ROWTYPE;
    onward bigint;
    onward_settled boolean;
BEGIN""",
        1,
    )
    .replace(
        """        RETURN;
    END IF;
    WITH moved AS (
        UPDATE trading_creditblock
           SET account_id = r.to_account_id, trade_request_id = NULL,
               updated_at = now(),
               state = CASE r.kind WHEN 'transfer' THEN 'active'
                                   WHEN 'retirement' THEN 'retired'
                                   ELSE 'cancelled' END""",
        """        RETURN;
    END IF;
    SELECT o.retirement_request_id INTO onward
      FROM trading_order o WHERE o.trade_request_id = r.id;
    WITH moved AS (
        UPDATE trading_creditblock
           SET account_id = r.to_account_id, trade_request_id = onward,
               updated_at = now(),
               state = CASE WHEN onward IS NOT NULL THEN 'reserved'
                            WHEN r.kind = 'transfer' THEN 'active'
                            WHEN r.kind = 'retirement' THEN 'retired'
                            ELSE 'cancelled' END""",
        1,
    )
    .replace(
        """      FROM moved ORDER BY moved.batch_id, moved.first_serial;
    settled := true;""",
        """      FROM moved ORDER BY moved.batch_id, moved.first_serial;
    IF onward IS NOT NULL THEN
        -- In the journal too: delivered, reserved for the retirement, retired.
        INSERT INTO trading_ledgerentry (kind, batch_id, first_serial,
            last_serial, quantity, from_account_id, to_account_id,
            price_per_tonne, currency, trade_request_id, actor_id,
            idempotency_key, created_at)
        SELECT 'reserve', b.batch_id, b.first_serial, b.last_serial, b.quantity,
               r.to_account_id, r.to_account_id, NULL, '', onward, p_actor, '',
               now()
          FROM trading_creditblock b
         WHERE b.trade_request_id = onward AND b.state = 'reserved'
         ORDER BY b.batch_id, b.first_serial;
        SELECT s.settled INTO onward_settled FROM trading_settle(onward, p_actor) s;
        IF NOT onward_settled THEN
            RAISE EXCEPTION 'trading_settle: retirement % of order request % '
                'could not be settled', onward, r.id
                USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
    END IF;
    settled := true;""",
        1,
    )
)
assert all(
    step in MARKET_SETTLE_FUNCTION
    for step in (
        "onward bigint;",
        "trade_request_id = onward,",
        "trading_settle(onward",
    )
), "the settle function changed"

MARKET_FUNCTIONS = (
    "trading_list(bigint, bigint)",
    "trading_delist(bigint, bigint, bigint)",
    "trading_order(bigint, bigint)",
)
LEDGER_FUNCTIONS = LEDGER_FUNCTIONS + MARKET_FUNCTIONS
POSTGRES_MARKET_FORWARD = [
    definer(MARKET_LINK_FUNCTION),
    definer(LIST_FUNCTION),
    definer(DELIST_FUNCTION),
    definer(ORDER_FUNCTION),
    definer(MARKET_RELEASE_FUNCTION),
    definer(MARKET_SETTLE_FUNCTION),
    *(f"REVOKE EXECUTE ON FUNCTION {f} FROM PUBLIC" for f in MARKET_FUNCTIONS),
]
POSTGRES_MARKET_BACKWARD = [
    *(f"DROP FUNCTION {f}" for f in reversed(MARKET_FUNCTIONS)),
    definer(LINK_FUNCTION),
    definer(RELEASE_FUNCTION),
    definer(GUARDED_SETTLE_FUNCTION),
]
