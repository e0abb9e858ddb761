from django.db import migrations


def create_development_account(apps, schema_editor):
    Account = apps.get_model("conversations", "Account")
    Account.objects.get_or_create(is_development=True, defaults={"name": "development"})


class Migration(migrations.Migration):
    dependencies = [("conversations", "0001_initial")]

    operations = [migrations.RunPython(create_development_account, migrations.RunPython.noop)]
