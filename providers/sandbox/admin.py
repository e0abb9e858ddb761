from django.contrib import admin

from config.admin_readonly import ReadOnlyAdmin
from providers.sandbox.models import SandboxCall, SandboxMessage


@admin.register(SandboxMessage)
class SandboxMessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "label", "to_address", "status", "reference"]
    list_filter = ["label", "status"]
    search_fields = ["sid", "reference", "to_address"]


@admin.register(SandboxCall)
class SandboxCallAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "label", "direction", "to_address", "status", "answered_by", "duration"]
    list_filter = ["label", "direction", "status"]
    search_fields = ["sid", "reference", "to_address", "recording_sid"]
