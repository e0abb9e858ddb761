"""The provider sandbox's table leaves the providers app.

The sandbox is now a Django app of its own (`providers.sandbox`, label `sandbox`),
installed only when PROVIDER_SANDBOX is on: a test double, not part of the production
schema. Its records are the sandbox's side of the wire (what "the provider" received),
worth nothing once the processes that made them are gone, so this drops the table rather
than handing it over: the sandbox's own 0001 creates `sandbox_sandboxmessage` when the
app is installed, and a database migrated with the sandbox off ends with no sandbox
table at all. Keeping the table (db_table plus SeparateDatabaseAndState) would have left
it in every production database, owned by no installed app.

The one cost: a message of ours whose last try is unresolved at the moment of the
upgrade, on a local machine, is looked up in an empty sandbox and sent again.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("providers", "0001_initial")]

    operations = [migrations.DeleteModel(name="SandboxMessage")]
