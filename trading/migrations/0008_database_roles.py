"""Two database roles on PostgreSQL (design section 5, invariant 10): the owner
role migrates; the application role (web, worker, beat) may only read the
journal, its head and the credit blocks, and changes them through the ledger's
functions, which run with the owner's rights (SECURITY DEFINER, a fixed
search_path) and are no longer executable by PUBLIC. Issuing and releasing
become functions too; reserving refuses a request already served, settling
refuses the request's initiator; the append-only guard's purge setting counts
only for the owner (or a superuser).

The grants themselves are applied after every migrate (trading/apps.py), when
DATABASE_APP_ROLE names the application role. SQLite has one user: nothing to do.
"""

from django.db import migrations

from trading.db_guards import (
    POSTGRES_ROLES_BACKWARD,
    POSTGRES_ROLES_FORWARD,
    run_for_vendor,
)


class Migration(migrations.Migration):
    dependencies = [("trading", "0007_journal_anchors")]

    operations = [
        migrations.RunPython(
            run_for_vendor({"postgresql": POSTGRES_ROLES_FORWARD}),
            run_for_vendor({"postgresql": POSTGRES_ROLES_BACKWARD}),
        )
    ]
