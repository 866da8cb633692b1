"""The one error every channel raises: it says whether trying again later is worth it."""

from __future__ import annotations


class DeliveryError(Exception):
    """A message was not delivered.

    ``permanent`` means retrying cannot help (unknown mailbox, invalid number, gone webhook):
    move on to the person's next channel. Otherwise the failure is transient (server down,
    timeout, 4xx, our own credentials refused): retry later with backoff. The message says
    what happened and never contains a secret.
    """

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent

    def __repr__(self) -> str:
        return f"DeliveryError({str(self)!r}, permanent={self.permanent})"
