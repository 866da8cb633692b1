"""Email, SMS and webhook channels against real servers on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from email import message_from_bytes, policy, quoprimime
from email.message import EmailMessage
from email.utils import parseaddr

import aiohttp
import pytest
from aiosmtplib.email import flatten_message
from fake_twilio import TWILIO_INVALID_NUMBER, FakeTwilio, WebhookReceiver
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.delivery.channels import (
    DeliveryError,
    Email,
    EmailChannel,
    SmsChannel,
    WebhookChannel,
    verify_signature,
)
from monitor.delivery.channels import email as email_module
from monitor.delivery.channels.email import Letterhead
from monitor.demo.mailcatcher import CaughtMessage, MailCatcher
from monitor.text import one_line

SENDER = "Example Status <status@example.com>"
NOW = 1_700_000_000.0


class FixedClock:
    def __init__(self, now: float = NOW) -> None:
        self.value = now

    def now(self) -> float:
        return self.value


def an_email(n: int = 1, to: str = "Alice Example <alice@example.com>") -> Email:
    return Email(
        message_id=f"incident-7.acknowledge.u{n}@example.com",
        to=to,
        subject="Online payments are down",
        text="Sorry: online payments are failing.",
        html=None,
    )


@pytest.fixture
async def catcher() -> AsyncIterator[MailCatcher]:
    async with MailCatcher() as server:
        yield server


@pytest.fixture
async def channel(catcher: MailCatcher) -> AsyncIterator[EmailChannel]:
    email_channel = EmailChannel.from_url(catcher.url, SENDER, pool_size=3, timeout=5)
    yield email_channel
    await email_channel.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(account_sid="AC" + "1" * 32, auth_token="twilio-secret") as server:
        yield server


@pytest.fixture
def sms(session: aiohttp.ClientSession, twilio: FakeTwilio) -> SmsChannel:
    return SmsChannel(
        session, twilio.account_sid, twilio.auth_token, "+15550001111", twilio.base_url
    )


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as server:
        yield server


# --- email -------------------------------------------------------------------------------


async def test_email_arrives_with_headers_text_and_html(catcher: MailCatcher) -> None:
    """An email arrives with From, To, Subject, Date, the exact Message-ID and both parts."""
    channel = EmailChannel.from_url(catcher.url, SENDER, clock=FixedClock())
    await channel.send(
        Email(
            message_id="incident-7.acknowledge.u123@example.com",
            to="Zoë Example <zoe@example.com>",
            subject="Zahlungen gestört — sorry ☕",
            text="Hallo Zoë,\nonline payments are failing.",
            html="<p>Hallo Zoë, online payments are <b>failing</b>.</p>",
        )
    )
    await channel.close()

    [caught] = catcher.messages
    message = caught.message
    assert caught.mail_from == "status@example.com"
    assert caught.rcpt_tos == ("zoe@example.com",)
    assert message["From"] == SENDER
    assert message["To"] == "Zoë Example <zoe@example.com>"
    assert message["Subject"] == "Zahlungen gestört — sorry ☕"
    assert message["Message-ID"] == "<incident-7.acknowledge.u123@example.com>"
    assert message["Date"].datetime.timestamp() == NOW
    assert message.get_content_type() == "multipart/alternative"
    assert caught.text == "Hallo Zoë,\nonline payments are failing.\n"
    assert caught.html == "<p>Hallo Zoë, online payments are <b>failing</b>.</p>\n"


async def test_text_only_email_is_one_utf8_text_part(
    catcher: MailCatcher, channel: EmailChannel
) -> None:
    """Without html the email is a single text/plain part in UTF-8."""
    await channel.send(an_email())

    [caught] = catcher.messages
    assert caught.message.get_content_type() == "text/plain"
    assert caught.message.get_content_charset() == "utf-8"
    assert caught.html is None


async def test_sequential_sends_reuse_one_connection(
    catcher: MailCatcher, channel: EmailChannel
) -> None:
    """Ten emails one after another travel over a single SMTP connection."""
    for n in range(10):
        await channel.send(an_email(n))

    assert len(catcher.messages) == 10
    assert catcher.connections == 1


async def test_concurrent_sends_use_at_most_pool_size_connections(
    catcher: MailCatcher, channel: EmailChannel
) -> None:
    """Twenty concurrent sends share the pool: no more connections than pool_size."""
    await asyncio.gather(*(channel.send(an_email(n)) for n in range(20)))

    assert sorted(m.message["Message-ID"] for m in catcher.messages) == sorted(
        f"<incident-7.acknowledge.u{n}@example.com>" for n in range(20)
    )
    assert catcher.connections == channel.pool_size == 3


async def test_unknown_recipient_is_permanent_and_the_connection_stays(
    catcher: MailCatcher, channel: EmailChannel
) -> None:
    """A 550 for the recipient is a permanent error; the next email uses the same connection."""
    catcher.reject.add("ghost@example.com")

    with pytest.raises(DeliveryError) as refused:
        await channel.send(an_email(1, to="ghost@example.com"))
    await channel.send(an_email(2))

    assert refused.value.permanent
    assert "550 5.1.1 no such user" in str(refused.value)
    assert [m.rcpt_tos for m in catcher.messages] == [("alice@example.com",)]
    assert catcher.connections == 1


async def test_temporarily_unavailable_server_is_transient(
    catcher: MailCatcher, channel: EmailChannel
) -> None:
    """A 4xx answer is a transient error."""
    catcher.unavailable = True

    with pytest.raises(DeliveryError) as unavailable:
        await channel.send(an_email())

    assert not unavailable.value.permanent
    assert "451" in str(unavailable.value)
    assert catcher.messages == []


async def test_server_down_is_transient_and_the_channel_reconnects_when_it_is_back(
    catcher: MailCatcher, channel: EmailChannel
) -> None:
    """While the server is down sends fail transiently; once it is back on its port they work."""
    await channel.send(an_email(1))
    port = catcher.port
    await catcher.stop()

    with pytest.raises(DeliveryError) as down:
        await channel.send(an_email(2))
    await catcher.start()
    await channel.send(an_email(3))

    assert not down.value.permanent
    assert catcher.port == port
    assert [m.message["Message-ID"] for m in catcher.messages] == [
        "<incident-7.acknowledge.u1@example.com>",
        "<incident-7.acknowledge.u3@example.com>",
    ]
    assert catcher.connections == 2


async def test_server_restart_between_sends_is_invisible_to_the_caller(
    catcher: MailCatcher, channel: EmailChannel
) -> None:
    """A kept connection that the server dropped is replaced without the send failing."""
    await channel.send(an_email(1))
    await catcher.stop()
    await catcher.start()

    await channel.send(an_email(2))

    assert len(catcher.messages) == 2
    assert catcher.connections == 2


async def test_connection_dropped_by_the_server_unnoticed_is_retried_once(
    catcher: MailCatcher, channel: EmailChannel
) -> None:
    """A send on a kept connection the server just hung up on goes through on a fresh one."""
    await channel.send(an_email(1))
    catcher.drop_connections()  # no await in between: the client cannot have noticed yet

    await channel.send(an_email(2))

    assert len(catcher.messages) == 2
    assert catcher.connections == 2


async def test_slow_server_times_out_as_transient_and_the_next_send_starts_afresh(
    catcher: MailCatcher,
) -> None:
    """A server slower than the timeout gives a transient error; the next send reconnects."""
    channel = EmailChannel.from_url(catcher.url, SENDER, pool_size=1, timeout=0.2)
    catcher.delay = 30

    with pytest.raises(DeliveryError) as slow:
        await channel.send(an_email(1))
    catcher.delay = 0
    await channel.send(an_email(2))
    await channel.close()

    assert not slow.value.permanent
    assert "no answer within 0.2s" in str(slow.value)
    assert [m.message["Message-ID"] for m in catcher.messages] == [
        "<incident-7.acknowledge.u2@example.com>"
    ]
    assert catcher.connections == 2


async def test_wrong_password_is_transient_and_the_error_never_shows_it() -> None:
    """Refused credentials are a transient "authentication failed" without the password."""
    async with MailCatcher(credentials=("monitor", "right-password")) as server:
        url = f"smtp://monitor:wrong-password@127.0.0.1:{server.port}"
        channel = EmailChannel.from_url(url, SENDER)

        with pytest.raises(DeliveryError) as refused:
            await channel.send(an_email())
        await channel.close()

    assert not refused.value.permanent
    assert "authentication failed" in str(refused.value)
    assert "wrong-password" not in str(refused.value) + repr(refused.value)
    assert "wrong-password" not in repr(channel)
    assert server.messages == []


async def test_percent_encoded_credentials_are_decoded_before_login() -> None:
    """User and password in the URL are percent-decoded, so any character can be used."""
    async with MailCatcher(credentials=("ops@example.com", "p@ss:wörd/1")) as server:
        channel = EmailChannel.from_url(server.url, SENDER)
        await channel.send(an_email())
        await channel.close()

    assert "p%40ss%3Aw%C3%B6rd%2F1" in server.url
    assert len(server.messages) == 1


async def test_line_break_in_subject_cannot_add_a_bcc_header(
    catcher: MailCatcher, channel: EmailChannel
) -> None:
    """A subject carrying CR/LF and a Bcc line stays one Subject header; no Bcc, no extra rcpt."""
    email = Email(
        message_id="incident-7.acknowledge.u1@example.com",
        to="alice@example.com",
        subject="Sorry\r\nBcc: mallory@example.com\nX-Evil: 1",
        text="body",
        html=None,
    )

    await channel.send(email)

    [caught] = catcher.messages
    assert caught.message["Bcc"] is None
    assert caught.message["X-Evil"] is None
    assert caught.message["Subject"] == "Sorry Bcc: mallory@example.com X-Evil: 1"
    assert caught.rcpt_tos == ("alice@example.com",)


@pytest.mark.parametrize(
    "to",
    [
        "alice@example.com\r\nBcc: mallory@example.com",
        "Alice <alice@example.com>\nBcc: mallory@example.com",
        "not an address",
        "",
    ],
)
async def test_unusable_recipient_address_is_permanent_and_nothing_is_sent(
    catcher: MailCatcher, channel: EmailChannel, to: str
) -> None:
    """An address with a line break, or no address at all, is refused before connecting."""
    with pytest.raises(DeliveryError) as refused:
        await channel.send(an_email(to=to))

    assert refused.value.permanent
    assert catcher.connections == 0


@pytest.mark.parametrize(
    "message_id",
    [
        "incident-7.acknowledge.alice@example.com@example.com",
        "incident-7.acknowledge.u 1@example.com",
        "<incident-7.acknowledge.u1@example.com>",
        "incident-7.acknowledge.u1",
        "incident-7.acknowledge.u1@example.com\r\nBcc: mallory@example.com",
    ],
)
async def test_message_id_that_would_not_arrive_intact_is_permanent(
    catcher: MailCatcher, channel: EmailChannel, message_id: str
) -> None:
    """A Message-ID mail software would alter (second @, space, brackets) is refused, not sent."""
    email = Email(message_id=message_id, to="alice@example.com", subject="s", text="t")

    with pytest.raises(DeliveryError) as refused:
        await channel.send(email)

    assert refused.value.permanent
    assert catcher.connections == 0


@pytest.mark.parametrize(
    ("url", "host", "port", "security", "username"),
    [
        ("smtp://mail.example.com", "mail.example.com", 587, "auto", None),
        ("smtp://u:p@mail.example.com:2525", "mail.example.com", 2525, "auto", "u"),
        ("smtp://mail.example.com?starttls=always", "mail.example.com", 587, "starttls", None),
        ("smtp://mail.example.com:25?starttls=never", "mail.example.com", 25, "none", None),
        ("smtps://u%40x:p@mail.example.com", "mail.example.com", 465, "tls", "u@x"),
    ],
)
def test_smtp_url_chooses_host_port_and_security(
    url: str, host: str, port: int, security: str, username: str | None
) -> None:
    """smtp:// upgrades with STARTTLS when offered unless told otherwise; smtps:// is TLS."""
    channel = EmailChannel.from_url(url, SENDER)

    assert (channel.host, channel.port, channel.security, channel.username) == (
        host,
        port,
        security,
        username,
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://u:hunter2@mail.example.com",
        "smtp://u:hunter2@mail.example.com:99999",
        "smtp://u:hunter2@mail.example.com?starttls=maybe",
        "smtps://u:hunter2@mail.example.com?starttls=always",
        "smtp://u:hunter2@mail.example.com?verify=no",
        "smtp://u:hunter2@",
    ],
)
def test_bad_smtp_url_is_refused_without_repeating_the_password(url: str) -> None:
    """A malformed MONITOR_SMTP_URL raises ValueError that does not contain the password."""
    with pytest.raises(ValueError, match=r"SMTP URL|smtps://") as refused:
        EmailChannel.from_url(url, SENDER)

    assert "hunter2" not in str(refused.value)


async def test_mailcatcher_reports_each_message_to_its_callback() -> None:
    """The catcher calls on_message for every accepted message and wait_for_messages sees them."""
    seen: list[CaughtMessage] = []
    async with MailCatcher(on_message=seen.append) as server:
        channel = EmailChannel.from_url(server.url, SENDER)
        await channel.send(an_email(1))
        await channel.send(an_email(2))
        await channel.close()
        async with asyncio.timeout(5):
            arrived = await server.wait_for_messages(2)

    assert seen == arrived == server.messages
    assert server.open_connections == 0


@pytest.mark.parametrize("length", range(68, 80))
@pytest.mark.parametrize("to", ["alice@example.com", "zoë@example.com"])
async def test_a_subject_that_fits_a_line_of_its_own_starts_beside_its_name(
    catcher: MailCatcher, channel: EmailChannel, length: int, to: str
) -> None:
    """A subject of 70-77 characters (which the email package would move whole onto the line
    after "Subject:", to be read back with a leading space) arrives beside its name and reads
    back exactly as written, on the direct path and the email package's (a non-ASCII address)."""
    subject = ("Online payments and logins are down for everyone " * 2)[:length].rstrip() + "."
    await channel.send(Email("incident-7.acknowledge.u1@example.com", to, subject, "Sorry."))

    [caught] = catcher.messages
    assert caught.subject == subject
    assert b"\r\nSubject: Online payments" in caught.raw


async def test_from_carries_the_org_name_reply_to_the_support_address_and_it_is_automatic(
    catcher: MailCatcher,
) -> None:
    """With the org's letterhead, From shows its name (encoded, a non-ASCII one), Reply-To is
    the support address and Auto-Submitted says no auto-responder should answer."""
    head = Letterhead(name="Müller & Söhne GmbH", reply_to="Support <help@example.com>")
    channel = EmailChannel.from_url(catcher.url, "status@example.com", letterhead=head)
    await channel.send(an_email())
    await channel.close()

    [caught] = catcher.messages
    [sender] = caught.message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Müller & Söhne GmbH", "status@example.com")
    assert caught.raw.startswith(
        b"From: =?utf-8?q?M=C3=BCller_=26_S=C3=B6hne?= GmbH <status@example.com>\r\n"
    )
    assert caught.message["Reply-To"] == "Support <help@example.com>"
    assert caught.message["Auto-Submitted"] == "auto-generated"
    assert caught.mail_from == "status@example.com"


async def test_a_sender_with_a_name_of_its_own_keeps_it(catcher: MailCatcher) -> None:
    """MONITOR_SMTP_FROM written with a name ("Example Status <...>") is From as written; the
    org's name is only for a bare address. Without a support address there is no Reply-To."""
    head = Letterhead(name="Example Ltd")
    channel = EmailChannel.from_url(catcher.url, SENDER, letterhead=head)
    await channel.send(an_email())
    await channel.close()

    [caught] = catcher.messages
    assert caught.message["From"] == SENDER
    assert caught.message["Reply-To"] is None


def test_a_reply_to_that_is_not_an_address_is_refused() -> None:
    """A letterhead whose reply address is not one is refused when the channel gets it."""
    channel = EmailChannel.from_url("smtp://127.0.0.1:2525", "status@example.com")
    with pytest.raises(ValueError, match="'help at example' is not an email address"):
        channel.letterhead = Letterhead(name="Example Ltd", reply_to="help at example")
    assert channel.letterhead == Letterhead()


@pytest.mark.parametrize("name", ["From", "message-id", "DKIM-Signature", "Content-Type", "X Y"])
async def test_a_message_may_add_headers_but_not_replace_ours(
    catcher: MailCatcher, channel: EmailChannel, name: str
) -> None:
    """A message's own headers are written after ours; one that would be a second From,
    Message-ID, signature or MIME header (or is no header name) is refused, nothing sent."""
    own = Email(
        "incident-7.acknowledge.u1@example.com",
        "alice@example.com",
        "s",
        "t",
        headers=(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),),
    )
    await channel.send(own)
    with pytest.raises(DeliveryError) as refused:
        await channel.send(Email(own.message_id, own.to, "s", "t", headers=((name, "x"),)))

    assert refused.value.permanent
    [caught] = catcher.messages
    assert caught.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


# --- sms ---------------------------------------------------------------------------------


async def test_sms_posts_to_from_and_body_with_basic_auth(
    twilio: FakeTwilio, sms: SmsChannel
) -> None:
    """An SMS is a form POST with To, From and Body, authenticated as sid:token."""
    await sms.send("+15557654321", "Payments are down. Pay by phone: 0800 123 456.")

    [sent] = twilio.messages
    assert (sent.to, sent.from_, sent.body) == (
        "+15557654321",
        "+15550001111",
        "Payments are down. Pay by phone: 0800 123 456.",
    )
    assert sent.account_sid == twilio.account_sid


async def test_sms_invalid_number_is_permanent_and_says_why(
    twilio: FakeTwilio, sms: SmsChannel
) -> None:
    """Twilio's 400 (invalid number) is a permanent error quoting Twilio's code and message."""
    twilio.fail_next(400)

    with pytest.raises(DeliveryError) as refused:
        await sms.send("+1555", "hello")

    assert refused.value.permanent
    assert str(TWILIO_INVALID_NUMBER) in str(refused.value)
    assert "not a valid phone number" in str(refused.value)


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_sms_server_trouble_is_transient(
    twilio: FakeTwilio, sms: SmsChannel, status: int
) -> None:
    """A 5xx or 429 from the SMS API is transient, and the next call goes through."""
    twilio.fail_next(status)

    with pytest.raises(DeliveryError) as failed:
        await sms.send("+15557654321", "hello")
    await sms.send("+15557654321", "hello again")

    assert not failed.value.permanent
    assert [m.body for m in twilio.messages] == ["hello again"]


async def test_sms_wrong_token_is_transient_and_hides_the_token(
    session: aiohttp.ClientSession, twilio: FakeTwilio
) -> None:
    """Refused credentials are transient ("authentication failed") and never echo the token."""
    channel = SmsChannel(session, twilio.account_sid, "not-the-token", "+1555", twilio.base_url)

    with pytest.raises(DeliveryError) as refused:
        await channel.send("+15557654321", "hello")

    assert not refused.value.permanent
    assert "authentication failed" in str(refused.value)
    assert "not-the-token" not in str(refused.value) + repr(channel)


async def test_sms_api_unreachable_is_transient(twilio: FakeTwilio, sms: SmsChannel) -> None:
    """A refused connection to the SMS API is a transient error."""
    await twilio.stop()

    with pytest.raises(DeliveryError) as unreachable:
        await sms.send("+15557654321", "hello")

    assert not unreachable.value.permanent


async def test_sms_from_env_reads_the_monitor_twilio_variables(
    session: aiohttp.ClientSession, twilio: FakeTwilio
) -> None:
    """MONITOR_TWILIO_* build a working channel; none set means no SMS; some set is an error."""
    environ = {
        "MONITOR_TWILIO_ACCOUNT_SID": twilio.account_sid,
        "MONITOR_TWILIO_AUTH_TOKEN": twilio.auth_token,
        "MONITOR_TWILIO_FROM": "+15550002222",
        "MONITOR_TWILIO_BASE_URL": twilio.base_url,
    }

    channel = SmsChannel.from_env(session, environ)
    assert channel is not None
    await channel.send("+15557654321", "hello")

    assert twilio.messages[0].from_ == "+15550002222"
    assert SmsChannel.from_env(session, {}) is None
    with pytest.raises(ValueError, match="MONITOR_TWILIO_AUTH_TOKEN") as half:
        SmsChannel.from_env(session, {"MONITOR_TWILIO_ACCOUNT_SID": "AC1"})
    assert "AC1" not in str(half.value)


# --- webhook -----------------------------------------------------------------------------


async def test_webhook_posts_json_signed_with_the_secret(
    session: aiohttp.ClientSession, receiver: WebhookReceiver
) -> None:
    """The body is JSON, its signature verifies with the secret, and it carries the timestamp."""
    channel = WebhookChannel(session, "hook-secret", clock=FixedClock())
    payload = {"incident": "7", "kind": "acknowledge", "text": "Zahlungen gestört"}

    await channel.send(receiver.url("/hooks/alice"), payload)

    [hook] = receiver.received
    assert hook.path == "/hooks/alice"
    assert hook.headers["Content-Type"] == "application/json"
    assert hook.headers["X-Monitor-Timestamp"] == str(int(NOW))
    assert verify_signature("hook-secret", hook.body, hook.headers["X-Monitor-Signature"])
    assert not verify_signature("other-secret", hook.body, hook.headers["X-Monitor-Signature"])
    assert not verify_signature(
        "hook-secret", hook.body + b" ", hook.headers["X-Monitor-Signature"]
    )
    assert json.loads(hook.body) == payload


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (500, False),
        (503, False),
        (408, False),
        (429, False),
        (302, False),
        (410, True),
        (404, True),
    ],
)
async def test_webhook_answer_decides_whether_to_retry(
    session: aiohttp.ClientSession, receiver: WebhookReceiver, status: int, permanent: bool
) -> None:
    """A 4xx (but 408 and 429) is permanent; 5xx and everything else non-2xx is transient."""
    receiver.answer_next(status)
    channel = WebhookChannel(session, "hook-secret")

    with pytest.raises(DeliveryError) as failed:
        await channel.send(receiver.url(), {"kind": "resolved"})

    assert failed.value.permanent is permanent
    assert str(status) in str(failed.value)


async def test_webhook_unreachable_is_transient_and_hides_the_url_path(
    session: aiohttp.ClientSession, receiver: WebhookReceiver
) -> None:
    """A refused connection is transient; the error names the host but not the tokenised path."""
    url = receiver.url("/hooks/secret-token-123")
    await receiver.stop()

    with pytest.raises(DeliveryError) as unreachable:
        await WebhookChannel(session, "hook-secret").send(url, {"kind": "resolved"})

    assert not unreachable.value.permanent
    assert "secret-token-123" not in str(unreachable.value)


@pytest.mark.parametrize("header", [None, "", "sha256=", "md5=abc", "sha256=00"])
def test_verify_signature_refuses_missing_or_malformed_headers(header: str | None) -> None:
    """verify_signature is False for an absent, empty, truncated or foreign signature."""
    assert not verify_signature("hook-secret", b"{}", header)


def test_smtp_url_pool_option_sets_the_number_of_connections() -> None:
    """`?pool=2` in MONITOR_SMTP_URL keeps two connections; without it, eight."""
    assert EmailChannel.from_url("smtp://127.0.0.1:2525?pool=2", SENDER).pool_size == 2
    assert EmailChannel.from_url("smtp://127.0.0.1:2525", SENDER).pool_size == 8


def test_smtp_url_pool_option_must_be_a_sensible_number() -> None:
    """`?pool=0` is refused with a message naming the option."""
    with pytest.raises(ValueError, match="option pool must be a whole number"):
        EmailChannel.from_url("smtp://127.0.0.1:2525?pool=0", SENDER)


# --- email bytes: the fast paths write what the email package would ----------------------

_ATOM_TEXT = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-",
    min_size=1,
    max_size=12,
)
_LABEL = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-",
    min_size=1,
    max_size=10,
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    local=st.lists(_ATOM_TEXT, min_size=1, max_size=3),
    domain=st.lists(_LABEL, min_size=1, max_size=3),
)
def test_a_plain_address_needs_no_parsing(local: list[str], domain: list[str]) -> None:
    """The fast path for ``a.b@c.d`` gives what ``parseaddr`` would."""
    address = ".".join(local) + "@" + ".".join(domain)
    assert email_module._PLAIN_ADDR.fullmatch(address)
    assert email_module._addr_spec(address) == parseaddr(address)[1] == address


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("Alice Example <alice@example.com>", "alice@example.com"),
        ("a(comment)@example.com", "a@example.com"),
        ('"a b"@example.com', None),
        ("alice@example.com\r\nBcc: x@evil.example", None),
        ("alice@exa mple.com", "alice@example.com"),  # as parseaddr reads it
    ],
)
def test_other_addresses_are_parsed(address: str, expected: str | None) -> None:
    assert email_module._addr_spec(address) == expected


@settings(max_examples=500, deadline=None, derandomize=True)
@given(
    lines=st.lists(
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=200),
        max_size=6,
    ),
    pad=st.sampled_from(["", " ", "\t", "  ", "=", "==", "é"]),
)
def test_quoted_printable_body_is_the_email_packages(lines: list[str], pad: str) -> None:
    """The same bytes as ``quoprimime.body_encode``, long lines, "=" near the fold and
    trailing whitespace included (``pad`` pushes line ends to the fold and past it)."""
    text = "\n".join(line + pad * (75 - len(line) % 78) for line in lines)
    body = (text.encode("utf-8") + b"\n").decode("latin-1")
    for width in (78, 10, 4):
        assert email_module._qp_body(body, width) == quoprimime.body_encode(body, width)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    name=st.text(max_size=40),
    org=st.text(max_size=60),
    subject=st.text(max_size=120),
    text=st.text(max_size=600),
    html=st.none() | st.text(max_size=600),
    n=st.integers(0, 10**6),
    at=st.floats(0, 2_000_000_000),
    own_headers=st.booleans(),
)
def test_email_bytes_are_what_the_email_package_writes(
    name: str,
    org: str,
    subject: str,
    text: str,
    html: str | None,
    n: int,
    at: float,
    own_headers: bool,
) -> None:
    """The channel writes a message's bytes itself; they are what flattening the equivalent
    ``EmailMessage`` gives (but for the random MIME boundary), with the org's name on From,
    Reply-To and a message's own headers, and they parse without a defect."""
    channel = EmailChannel.from_url(
        "smtp://127.0.0.1:25?starttls=never", "status@example.com", clock=FixedClock(at)
    )
    try:
        channel.letterhead = Letterhead(org, "help@example.com")
    except ValueError:
        return  # a name no From can carry is refused with the configuration
    to = f"{''.join(c for c in name if c.isalnum())} <u{n}@example.com>"
    headers = (
        (
            ("List-Unsubscribe", f"<https://status.example.com/unsubscribe/{n}?t=a.b-c_d>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        )
        if own_headers
        else ()
    )
    message = Email(f"incident-1.acknowledge.u{n}@example.com", to, subject, text, html, headers)
    try:
        expected = flatten_message(channel._message(message))
    except DeliveryError:
        with pytest.raises(DeliveryError):
            channel._bytes(message)
        return
    ours = channel._bytes(message)
    if html is not None:
        mark = b'boundary="'
        theirs = expected.partition(mark)[2].partition(b'"')[0]
        mine = ours.partition(mark)[2].partition(b'"')[0]
        ours = ours.replace(mine, theirs)
    assert ours == expected
    parsed = message_from_bytes(ours, policy=policy.strict)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == one_line(subject)
