"""Records the service writes and staff only read (messages, their events and attempts,
conversations, webhook deliveries): the admin shows them but offers no add or edit form,
so every change goes through the services that keep them consistent."""

from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
