"""Load Bijie City and its 8 county-level divisions, and open the accounts that
organizations created before accounts existed should have."""

from django.db import migrations

from registry.divisions import load_divisions as load_divisions_into

PREFIX = {"holding": "H", "buffer_pool": "B", "retirement": "R", "cancellation": "C"}


def load_divisions(apps, schema_editor):
    load_divisions_into(apps.get_model("registry", "AdministrativeDivision"))


def open_missing_accounts(apps, schema_editor):
    Organization = apps.get_model("registry", "Organization")
    Account = apps.get_model("registry", "Account")
    for organization in Organization.objects.all():
        kinds = ["holding"]
        if organization.kind == "registry_operator":
            kinds += ["buffer_pool", "retirement", "cancellation"]
        for kind in kinds:
            if Account.objects.filter(organization=organization, kind=kind).exists():
                continue
            account = Account.objects.create(
                organization=organization, kind=kind, is_public=kind != "holding"
            )
            account.number = f"BJ-{PREFIX[kind]}-{account.pk:06d}"
            account.save(update_fields=["number"])


class Migration(migrations.Migration):
    dependencies = [("registry", "0002_projects_accounts_divisions")]

    operations = [
        migrations.RunPython(load_divisions, migrations.RunPython.noop),
        migrations.RunPython(open_missing_accounts, migrations.RunPython.noop),
    ]
