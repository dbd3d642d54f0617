"""kombu's filesystem transport with atomic writes, the broker of `make run`.

kombu 5.7 creates a message file and then writes into it, so a consumer listing the
folder in between reads an empty file, fails to decode it, and the worker stops (seen
with a few pushes sent within milliseconds). Here a message is written under a name
the consumer ignores and renamed into place, which POSIX makes atomic.
"""
import os
import uuid
from time import monotonic

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

SCHEME = "filesystem-atomic"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final_path = os.path.join(self.data_folder_out, name)
        # The consumer only reads names ending in ".<queue>.msg".
        partial_path = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            with open(partial_path, "wb") as partial:
                partial.write(str_to_bytes(dumps(payload)))
            os.replace(partial_path, final_path)
        except OSError as error:
            raise filesystem.ChannelError(
                f"cannot add message file {final_path!r}: {error}"
            ) from error


class Transport(filesystem.Transport):
    Channel = Channel


def register() -> None:
    """Make `filesystem-atomic://` URLs resolve to this transport."""
    TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
