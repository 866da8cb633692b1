"""The channel registry: each address goes to the configured channel of its kind, through the
one Channel protocol, over real SMTP, a loopback Twilio and a loopback webhook receiver."""

from __future__ import annotations

import json

import aiohttp
import pytest
from fake_twilio import FakeTwilio, WebhookReceiver

from monitor.delivery.channels import (
    Channel,
    Channels,
    DeliveryError,
    EmailChannel,
    SmsChannel,
    WebhookChannel,
)
from monitor.demo.mailcatcher import MailCatcher
from monitor.model import Address
from monitor.store import OutboxItem

ITEM = OutboxItem(
    key="incident-7.acknowledge.alice",
    incident_id=7,
    person_id="alice",
    kind="acknowledge",
    reason="first",
    created_at=1_800_000_000.0,
    subject="Sorry: payments are failing",
    text="We are on it.",
    html=None,
    sms="Payments are failing; we are on it.",
    channels=(),
)


async def test_each_address_goes_to_the_configured_channel_of_its_kind() -> None:
    """An email address reaches the mail server (Message-ID in the org's domain), a phone the
    SMS API (the item's SMS text), a webhook URL the receiver (the item as signed JSON)."""
    async with (
        MailCatcher() as catcher,
        FakeTwilio() as twilio,
        WebhookReceiver() as receiver,
        aiohttp.ClientSession() as session,
    ):
        email = EmailChannel.from_url(catcher.url, "status@example.com")
        sms = SmsChannel(
            session, twilio.account_sid, twilio.auth_token, "+15550001111", base_url=twilio.base_url
        )
        webhook = WebhookChannel(session, "hook-secret")
        speakers: list[Channel] = [email, sms, webhook]  # mypy checks each speaks the protocol
        channels = Channels(email, sms, webhook, message_domain="example.com")
        try:
            await channels.send(Address("email", "alice@example.com"), ITEM)
            await channels.send(Address("sms", "+447700900001"), ITEM)
            await channels.send(Address("webhook", receiver.url("/hooks/alice")), ITEM)
        finally:
            await channels.close()
    assert [c.kind for c in speakers] == channels.configured() == ["email", "sms", "webhook"]
    [mail] = catcher.messages
    assert mail.rcpt_tos == ("alice@example.com",)
    assert mail.message["Message-ID"] == "<incident-7.acknowledge.alice@example.com>"
    assert mail.message["Subject"] == "Sorry: payments are failing"
    assert [(m.to, m.body) for m in twilio.messages] == [
        ("+447700900001", "Payments are failing; we are on it.")
    ]
    [hook] = receiver.received
    assert hook.path == "/hooks/alice"
    assert json.loads(hook.body) == {
        "id": "incident-7.acknowledge.alice",
        "incident": 7,
        "person": "alice",
        "kind": "acknowledge",
        "reason": "first",
        "subject": "Sorry: payments are failing",
        "text": "We are on it.",
        "sms": "Payments are failing; we are on it.",
    }


async def test_an_address_of_a_kind_not_configured_is_a_permanent_failure() -> None:
    """With only SMS configured, an email address is not supported, and sending to it fails
    for good (the person's next channel is tried) saying which channel is missing."""
    async with FakeTwilio() as twilio, aiohttp.ClientSession() as session:
        sms = SmsChannel(
            session, twilio.account_sid, twilio.auth_token, "+15550001111", base_url=twilio.base_url
        )
        channels = Channels(sms=sms)
        assert channels.configured() == ["sms"]
        assert channels.supports(Address("sms", "+447700900001"))
        assert not channels.supports(Address("email", "alice@example.com"))
        with pytest.raises(DeliveryError) as failed:
            await channels.send(Address("email", "alice@example.com"), ITEM)
    assert failed.value.permanent
    assert str(failed.value) == "no email channel is configured"
    assert twilio.messages == []


def test_no_channel_configured_means_nobody_can_be_told() -> None:
    """An empty registry lists no channel and supports no address."""
    channels = Channels()
    assert channels.configured() == []
    assert not channels.supports(Address("webhook", "https://hooks.example.com/alice"))
