from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = "Accounts and conversations"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from conversations.models import ApiKey, Sender

        # Keys and senders saved or deleted (the admin, the commands): this process
        # forgets what it remembered of them at once, others within AUTH_CACHE_SECONDS.
        for model in (ApiKey, Sender):
            post_save.connect(_forget, sender=model, dispatch_uid=f"forget-saved-{model.__name__}")
            post_delete.connect(_forget, sender=model, dispatch_uid=f"forget-deleted-{model.__name__}")


def _forget(**kwargs):
    from conversations.selectors import recent_reads_forget

    recent_reads_forget()
