"""Each delivery outcome names the channel it was about: the one tried, not the one after it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from clock import FakeClock
from fake_twilio import FakeTwilio
from world import ALICE, MESSAGES, world, write_config

from monitor.app import App, Options
from monitor.delivery.channels import SmsChannel
from monitor.demo.mailcatcher import MailCatcher
from monitor.model import Address, ProbeResult
from monitor.store import OutboxItem


def sample(page: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    for line in page.splitlines():
        head, _, value = line.rpartition(" ")
        if head.split("{")[0] == name and all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return 0.0


async def test_listeners_hear_the_refused_email_then_the_sms_that_delivered(
    tmp_path: Path,
) -> None:
    """The mail server answers 550 for Alice: the "next channel" outcome names her email
    address, and the "sent" outcome her phone, which is also the message's sent_via."""
    heard: list[tuple[str, str, Address | None]] = []

    def listen(item: OutboxItem, outcome: str, channel: Address | None) -> None:
        heard.append((item.kind, outcome, channel))

    async with FakeTwilio() as twilio, aiohttp.ClientSession() as session:
        sms = SmsChannel(
            session, twilio.account_sid, twilio.auth_token, "+15550001111", base_url=twilio.base_url
        )
        async with world(tmp_path, sms=sms) as w:
            w.delivery.on_outcome.append(listen)
            await w.people(ALICE)
            w.catcher.reject = {"alice@example.com"}
            await w.fail(["payment"])
            await w.wait(120)
            (item,) = await w.store.outbox_items((await w.incidents())[0].id)
    assert heard == [
        ("acknowledge", "next channel", Address("email", "alice@example.com")),
        ("acknowledge", "sent", Address("sms", "+447700900001")),
    ]
    assert item.sent_via == Address("sms", "+447700900001")
    assert [m.to for m in twilio.messages] == ["+447700900001"]


async def test_the_messages_metric_counts_a_fallback_against_the_channel_that_failed(
    tmp_path: Path,
) -> None:
    """A running monitor whose mail server refuses Alice with 550 reports, on /metrics, the
    "next channel" outcome under channel="email" and the SMS that reached her under
    channel="sms" (it used to put both under sms)."""
    async with MailCatcher() as catcher, FakeTwilio() as twilio:
        catcher.reject = {"alice@example.com"}
        checks = tmp_path / "checks"
        write_config(checks)
        clock = FakeClock()
        app = App(
            Options(config=checks, messages=MESSAGES, db=tmp_path / "m.db", listen="127.0.0.1:0"),
            clock=clock,
            environ={
                "MONITOR_SMTP_URL": catcher.url,
                "MONITOR_TWILIO_ACCOUNT_SID": twilio.account_sid,
                "MONITOR_TWILIO_AUTH_TOKEN": twilio.auth_token,
                "MONITOR_TWILIO_FROM": "+15550001111",
                "MONITOR_TWILIO_BASE_URL": twilio.base_url,
            },
            serve_http=False,
        )
        sent = asyncio.Event()
        await app.start()
        try:
            app.delivery.on_outcome.append(
                lambda _item, outcome, _channel: sent.set() if outcome == "sent" else None
            )
            await app.store.upsert_people([ALICE])
            for _ in range(3):
                app.monitor.observe(ProbeResult("payment", False, "status 503", clock.now(), 0.01))
                await app.monitor.flush()  # the notifier reads transitions from the store
                await app.notifier.tick()
                clock.advance(15)
            clock.advance(60)  # notify_after
            await app.notifier.tick()
            await asyncio.wait_for(sent.wait(), 30)
            page = (await app.metrics.page()).decode()
        finally:
            await app.stop()
    name = "monitor_messages_total"
    assert sample(page, name, channel="email", kind="acknowledge", outcome="next channel") == 1
    assert sample(page, name, channel="sms", kind="acknowledge", outcome="sent") == 1
    assert sample(page, name, channel="sms", kind="acknowledge", outcome="next channel") == 0
    assert [m.to for m in twilio.messages] == ["+447700900001"]
