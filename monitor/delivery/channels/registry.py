"""The channels this monitor has, by kind: the sender hands each address to the one of its kind."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field

from monitor.delivery.channels.channel import Channel
from monitor.delivery.channels.email import EmailChannel
from monitor.delivery.channels.errors import DeliveryError
from monitor.delivery.channels.sms import SmsChannel
from monitor.delivery.channels.webhook import WebhookChannel
from monitor.model import Address
from monitor.store import OutboxItem


@dataclass
class Channels:
    """The channels configured, best first (email, SMS, webhook); an address of a kind that
    is not configured counts as a permanent failure.

    ``message_domain`` is the org's domain: the email channel's Message-IDs end in it.
    """

    email: EmailChannel | None = None
    sms: SmsChannel | None = None
    webhook: WebhookChannel | None = None
    message_domain: str = "monitor.invalid"
    _by_kind: dict[str, Channel] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.email is not None:
            self.email.message_domain = self.message_domain
        self._by_kind = {c.kind: c for c in (self.email, self.sms, self.webhook) if c is not None}

    def configured(self) -> list[str]:
        """The kinds of channel configured, best first (empty: nobody can be told)."""
        return list(self._by_kind)

    def supports(self, address: Address) -> bool:
        return address.kind in self._by_kind

    def send(self, address: Address, item: OutboxItem) -> Awaitable[None]:
        """The channel of ``address``'s kind delivering ``item`` there, to await (see
        :meth:`Channel.deliver`). Raises DeliveryError (permanent) at once when none is
        configured."""
        # Not a coroutine of its own: the channel's is the only one a send needs.
        channel = self._by_kind.get(address.kind)
        if channel is None:
            raise DeliveryError(f"no {address.kind} channel is configured", permanent=True)
        return channel.deliver(address.to, item)

    async def close(self) -> None:
        for channel in self._by_kind.values():
            await channel.close()
