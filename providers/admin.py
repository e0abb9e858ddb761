from django.contrib import admin

from providers.models import SandboxMessage


@admin.register(SandboxMessage)
class SandboxMessageAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "label", "to_address", "status", "reference"]
    list_filter = ["label", "status"]
    search_fields = ["sid", "reference", "to_address"]
    readonly_fields = [f.name for f in SandboxMessage._meta.fields]
