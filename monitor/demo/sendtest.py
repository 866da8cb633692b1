"""``monitor send-test --to EMAIL [--system NAME]``: one sample acknowledgement through the real
email channel.

It proves the SMTP settings (``MONITOR_SMTP_URL``, ``MONITOR_SMTP_FROM``) and shows what a
customer receives, before any outage depends on it. The message is the acknowledgement that
system's incident would send (the first system's when none is named; sample person trying what
that system is for, sample times), its subject marked as a test.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Mapping

import aiohttp

from monitor.app import Options, channels_from_env, letterhead, systems_info
from monitor.config import ConfigError, load_config
from monitor.delivery.channels import DeliveryError, Email
from monitor.model import MessageKind
from monitor.notify.composer import Composer, TemplateError, sample_context
from monitor.text import unknown_name

SUBJECT_PREFIX = "[test] "


async def send_test(
    options: Options, env: Mapping[str, str], to: str, system: str | None = None
) -> int:
    """Send ``system``'s sample (the first system's when None) to ``to``; print what was sent
    (0) or why not (1). Never prints the SMTP password."""
    if not env.get("MONITOR_SMTP_URL"):
        print(
            "MONITOR_SMTP_URL is not set: set it to smtp://USER:PASSWORD@HOST:PORT"
            " (smtps:// for TLS from the start) and try again.",
            file=sys.stderr,
        )
        return 1
    try:
        config = load_config(options.config, env)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    if not config.systems:
        print(f"{options.config}: no checks, so there is no message to send", file=sys.stderr)
        return 1
    if system is None:
        system = next(iter(config.systems))
    elif system not in config.systems:
        print(unknown_name("system", system, config.systems), file=sys.stderr)
        return 1
    settings = config.settings
    info = systems_info(config)
    composer = Composer.from_settings(options.messages, settings, info)
    sample = sample_context(info, system, MessageKind.ACKNOWLEDGE)
    try:
        message = composer.render(
            sample.kind, sample.reason, sample.recipient, sample.incident, sample.now
        )
    except TemplateError as exc:
        print(exc, file=sys.stderr)
        return 1
    domain = settings.org.message_domain
    email = Email(
        message_id=f"send-test.{sample.kind.value}.{secrets.token_hex(6)}@{domain}",
        to=to,
        subject=SUBJECT_PREFIX + message.subject,
        text=message.text,
        html=message.html,
    )
    try:  # signed and addressed as customers' mail is
        mail_letterhead = letterhead(config, env, options)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    async with aiohttp.ClientSession() as session:
        try:
            channels = channels_from_env(session, env, domain, mail_letterhead)
        except ValueError as exc:
            print(f"cannot send: {exc}", file=sys.stderr)
            return 1
        channel = channels.email
        assert channel is not None  # MONITOR_SMTP_URL is set
        where = f"{channel.host}:{channel.port}" + (
            f" as {channel.username}" if channel.username else ""
        )
        try:
            await channel.send(email)
        except DeliveryError as exc:
            print(f"not sent to {to} through {where}: {exc}", file=sys.stderr)
            return 1
        finally:
            await channels.close()
    print(f"Sent to {to} through {where}, Message-ID <{email.message_id}>.")
    print(f"It is the acknowledgement for {info[system].title} ({system}), with sample data.\n")
    print(f"Subject: {email.subject}\n\n{email.text}")
    return 0
