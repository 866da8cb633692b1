"""Delivery channels: email (SMTP), SMS (a Twilio-compatible API) and signed webhooks.

Each ``send`` either returns (the far end accepted the message) or raises
:class:`DeliveryError`, whose ``permanent`` flag decides the next step.
"""

from monitor.delivery.channels.email import Email, EmailChannel
from monitor.delivery.channels.errors import DeliveryError
from monitor.delivery.channels.sms import SmsChannel
from monitor.delivery.channels.webhook import WebhookChannel, sign, verify_signature

__all__ = [
    "DeliveryError",
    "Email",
    "EmailChannel",
    "SmsChannel",
    "WebhookChannel",
    "sign",
    "verify_signature",
]
