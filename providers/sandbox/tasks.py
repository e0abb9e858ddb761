from celery import shared_task

from providers.sandbox.callbacks import BATCH, callbacks_due_send, callbacks_next_wake, callbacks_wake
from providers.sandbox.calls import calls_due_send

#: batches one task posts before it hands the rest to a new task
MAX_BATCHES = 50


@shared_task(name="providers.sandbox.tasks.sandbox_callbacks_send")
def sandbox_callbacks_send() -> int:
    """The sandbox posts the delivery receipts that are due, a few messages at a time,
    and runs the calls that are due (their progress callbacks, voicemails)."""
    taken = 0
    for _ in range(MAX_BATCHES):
        receipts, calls = callbacks_due_send(), calls_due_send()
        taken += receipts + calls
        if receipts < BATCH and calls < BATCH:
            callbacks_next_wake()
            return taken
    callbacks_wake(delay=0.001)  # more are due: a fresh task, so others queued get a turn
    return taken
