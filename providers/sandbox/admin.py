from django.contrib import admin

from config.admin_readonly import ReadOnlyAdmin
from providers.sandbox.models import SandboxMessage


@admin.register(SandboxMessage)
class SandboxMessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "label", "to_address", "status", "reference"]
    list_filter = ["label", "status"]
    search_fields = ["sid", "reference", "to_address"]
