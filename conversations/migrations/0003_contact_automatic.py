from django.db import migrations, models


def mark_unnamed_contacts_automatic(apps, schema_editor):
    # Until now only threading made contacts without a name (staff who added one in the
    # admin named it): those become automatic, so a contact made by hand can claim them.
    apps.get_model("conversations", "Contact").objects.filter(name="").update(automatic=True)


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0002_development_account"),
    ]

    operations = [
        migrations.AddField(
            model_name="contact",
            name="automatic",
            field=models.BooleanField(
                default=False,
                help_text="Made by threading for an address no contact had. A contact created or edited by hand "
                "may take its address (and conversations); editing it makes it an ordinary contact.",
            ),
        ),
        migrations.RunPython(mark_unnamed_contacts_automatic, migrations.RunPython.noop),
    ]
