from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        # The apps below this one report events through config/events.py; this records them.
        from config.events import events_recorder_set
        from webhooks.events import EventRecorder

        events_recorder_set(EventRecorder())
