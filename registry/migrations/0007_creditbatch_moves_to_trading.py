"""CreditBatch now lives in trading (trading 0009): drop it from registry's
state, keeping its table and rows, and move its content type with it so the
permissions granted on it (and admin history) follow the model."""

from django.db import migrations


def _move_content_type(apps, schema_editor, source: str, target: str) -> None:
    content_types = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    old = content_types.objects.using(db).filter(app_label=source, model="creditbatch")
    if not old.exists():
        return  # a fresh database: post_migrate creates the right one
    # A content type made for the new label by an earlier partial migrate holds
    # nothing yet; the old one carries the grants, so it is the one kept.
    content_types.objects.using(db).filter(
        app_label=target, model="creditbatch"
    ).delete()
    old.update(app_label=target)


def forwards(apps, schema_editor):
    _move_content_type(apps, schema_editor, "registry", "trading")


def backwards(apps, schema_editor):
    _move_content_type(apps, schema_editor, "trading", "registry")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("registry", "0006_role_grants"),
        ("trading", "0009_creditbatch_moves_from_registry"),
        # Every foreign key to the old model is re-pointed before it goes.
        ("estimation", "0004_verification_batch_in_trading"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="CreditBatch")],
        ),
        migrations.RunPython(forwards, backwards, elidable=False),
    ]
