"""The embedded broker of the local default: kombu's file-system transport, with a
publish that a consumer can never see half-written.

kombu 5.7's `_put` creates the message file and then writes it, and `_get` reads
without the lock, so a consumer polling at the wrong moment reads an empty file: the
worker's consumer dies on a JSONDecodeError and the task is lost. Here a message is
written under a name no consumer matches and renamed into place (atomic on one file
system), so it appears whole or not at all.
"""

import os
import uuid
from contextlib import suppress
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # A leading dot and a suffix: `_get` and `_size` match "<stamp>_<uuid>.<queue>.msg" only.
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            with suppress(OSError):
                os.remove(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
