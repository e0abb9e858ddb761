from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from config.admin_readonly import ReadOnlyAdmin
from config.events import EventType
from webhooks.deliveries import deliveries_replay, deliveries_replay_failed
from webhooks.endpoints import UrlRefused, endpoint_create, endpoint_delete, endpoint_update, url_addresses
from webhooks.models import Delivery, Event, WebhookEndpoint, WebhookEvent


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "received_at", "provider", "kind", "outcome", "signed", "message_id"]
    list_filter = ["provider", "kind", "outcome", "signed", ("received_at", admin.DateFieldListFilter)]
    search_fields = ["=id", "event_id", "=message__id"]
    readonly_fields = [f.name for f in WebhookEvent._meta.fields]
    show_full_result_count = False


class EndpointForm(forms.ModelForm):
    """The fields staff may change; the URL is checked as the API checks it."""

    url = forms.URLField(max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=[(t.value, t.value) for t in EventType],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["account", "url", "event_types", "enabled", "description"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            url_addresses(url)
        except UrlRefused as exc:
            raise forms.ValidationError(str(exc)) from None
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ["id", "account", "url", "enabled", "failing_since", "disabled_reason", "created_at"]
    list_filter = ["enabled", ("failing_since", admin.EmptyFieldListFilter)]
    search_fields = ["url", "=account__name", "=id"]
    readonly_fields = ["disabled_reason", "disabled_at", "failing_since", "created_at", "updated_at"]
    raw_id_fields = ["account"]
    actions = ["replay_failed_day", "replay_failed_week"]

    def save_model(self, request, obj, form, change):
        # Through the services: a new endpoint gets its secret, and every process learns
        # who listens to what.
        data = {name: form.cleaned_data[name] for name in ["url", "event_types", "enabled", "description"]}
        if change:
            endpoint_update(endpoint=WebhookEndpoint.objects.get(pk=obj.pk), **data)
        else:
            created = endpoint_create(account=form.cleaned_data["account"], **data)
            obj.pk = created.pk
            self.message_user(
                request,
                f"Endpoint created. Its signing secret (shown once; the account rotates it through the API): "
                f"{created.secret}",
                messages.WARNING,
            )

    def delete_model(self, request, obj):
        endpoint_delete(endpoint=obj)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            endpoint_delete(endpoint=endpoint)

    def _replay(self, request, queryset, days: int):
        since = timezone.now() - timedelta(days=days)
        replayed = sum(deliveries_replay_failed(since=since, endpoint=endpoint) for endpoint in queryset)
        self.message_user(request, f"Re-queued {replayed} failed deliveries of the last {days} day(s).")

    @admin.action(description="Replay failed deliveries of the last 24 hours")
    def replay_failed_day(self, request, queryset):
        self._replay(request, queryset, 1)

    @admin.action(description="Replay failed deliveries of the last 7 days")
    def replay_failed_week(self, request, queryset):
        self._replay(request, queryset, 7)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: what each event's post to each endpoint got."""

    list_display = [
        "id",
        "created_at",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "latency_ms",
        "last_attempt_at",
        "next_attempt_at",
    ]
    list_filter = ["status", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["event", "endpoint"]
    search_fields = ["=id", "=endpoint__id", "endpoint__url"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    raw_id_fields = ["event", "endpoint"]
    actions = ["replay"]
    show_full_result_count = False

    @admin.display(description="event")
    def event_type(self, delivery: Delivery) -> str:
        return delivery.event.type

    def get_queryset(self, request):
        return super().get_queryset(request).defer("event__payload")

    @admin.action(description="Replay the selected deliveries")
    def replay(self, request, queryset):
        replayed = deliveries_replay(delivery_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Re-queued {replayed} deliveries.")


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["id", "created_at", "account", "type", "fanned_out_at"]
    list_filter = ["type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=id", "=account__name"]
    readonly_fields = [f.name for f in Event._meta.fields]
    show_full_result_count = False
