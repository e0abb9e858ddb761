from celery import shared_task

from providers.models import SandboxMessage
from providers.sandbox.callbacks import CallbackFailed, callbacks_send


@shared_task(autoretry_for=(CallbackFailed,), max_retries=8, retry_backoff=1, retry_backoff_max=60)
def sandbox_send_callbacks(sandbox_message_id: int) -> None:
    """The sandbox posts its delivery receipts for one accepted message."""
    message = SandboxMessage.objects.filter(pk=sandbox_message_id).first()
    if message is not None:
        callbacks_send(message=message)
