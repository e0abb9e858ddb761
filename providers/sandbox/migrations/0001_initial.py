"""The sandbox's record of what reached "the provider" (see the providers app's 0002:
the table it had there is dropped, not moved; this one starts empty)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="SandboxMessage",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "label",
                    models.CharField(help_text="The sandbox instance, e.g. twilio or sendgrid-backup.", max_length=32),
                ),
                ("format", models.CharField(max_length=16)),
                ("sid", models.CharField(max_length=64, unique=True)),
                (
                    "reference",
                    models.CharField(blank=True, help_text="Our message id, as the client passed it.", max_length=64),
                ),
                ("to_address", models.CharField(max_length=254)),
                ("from_address", models.CharField(max_length=254)),
                ("subject", models.CharField(blank=True, max_length=998)),
                ("body", models.TextField(blank=True)),
                ("media", models.JSONField(blank=True, default=list)),
                ("status_callback", models.URLField(blank=True, max_length=2048)),
                ("status", models.CharField(default="queued", max_length=16)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "callbacks_due_at",
                    models.DateTimeField(
                        blank=True, help_text="When its delivery receipts are to be posted; empty once they were.", null=True
                    ),
                ),
                ("callback_tries", models.PositiveSmallIntegerField(default=0)),
            ],
            options={
                "indexes": [
                    models.Index(fields=["label", "to_address"], name="sandbox_san_label_e603f3_idx"),
                    models.Index(fields=["reference"], name="sandbox_san_referen_dfef7e_idx"),
                    models.Index(
                        condition=models.Q(("callbacks_due_at__isnull", False)),
                        fields=["callbacks_due_at"],
                        name="sandbox_callbacks_due",
                    ),
                ],
            },
        ),
    ]
