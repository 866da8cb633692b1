"""Delivery channels: email (SMTP), SMS (a Twilio-compatible API) and signed webhooks.

Each speaks :class:`Channel`: ``deliver`` either returns (the far end accepted the message) or
raises :class:`DeliveryError`, whose ``permanent`` flag decides the next step. :class:`Channels`
holds the ones configured, by kind.
"""

from monitor.delivery.channels.channel import Channel
from monitor.delivery.channels.email import Email, EmailChannel
from monitor.delivery.channels.errors import DeliveryError
from monitor.delivery.channels.registry import Channels
from monitor.delivery.channels.sms import SmsChannel
from monitor.delivery.channels.webhook import WebhookChannel, sign, verify_signature

__all__ = [
    "Channel",
    "Channels",
    "DeliveryError",
    "Email",
    "EmailChannel",
    "SmsChannel",
    "WebhookChannel",
    "sign",
    "verify_signature",
]
