"""SQL for the ledger's database guards (used by migrations and by the flush
command): append-only journal triggers on PostgreSQL and SQLite, exclusion
constraints over serial ranges on PostgreSQL, and PostgreSQL's chaining trigger."""

from contextlib import contextmanager

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
# The journal's hash chain, linked by the database as each entry is inserted:
# the head is locked inside the INSERT (the last statement of every ledger
# transaction) rather than a round trip earlier, so concurrent transactions
# queue on it only for their commit. Same formula as trading.chain.link_hash;
# a client cannot choose its own sequence or hashes.
POSTGRES_CHAIN_FORWARD = [
    """
    CREATE OR REPLACE FUNCTION trading_ledger_link() RETURNS trigger AS $$
    DECLARE
        head_sequence bigint;
        head_hash varchar(64);
    BEGIN
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
    """,
    """
    CREATE TRIGGER trading_ledgerentry_link
    BEFORE INSERT ON trading_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION trading_ledger_link()
    """,
]
POSTGRES_CHAIN_BACKWARD = [
    "DROP TRIGGER trading_ledgerentry_link ON trading_ledgerentry",
    "DROP FUNCTION trading_ledger_link()",
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
