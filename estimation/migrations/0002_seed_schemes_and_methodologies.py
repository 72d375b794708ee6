from django.db import migrations

from estimation.seeds import load_seeds


def seed(apps, schema_editor):
    load_seeds(
        scheme_model=apps.get_model("estimation", "ClassScheme"),
        mapping_model=apps.get_model("estimation", "ClassMapping"),
        methodology_model=apps.get_model("estimation", "Methodology"),
        coefficient_model=apps.get_model("estimation", "Coefficient"),
    )


class Migration(migrations.Migration):
    dependencies = [("estimation", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
