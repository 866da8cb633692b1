"""The email channel's letterhead from the settings and the environment: the org's name on
From, its support address as Reply-To, and the DKIM signer monitor.yaml's ``email.dkim`` asks
for, with its key read (``key_file``, else ``MONITOR_DKIM_KEY``) and proven.

Anything that cannot be used is a configuration problem naming its field: the monitor refuses
to start with it, and a reload with it is refused (the running letterhead keeps signing),
rather than send a message unsigned. No problem quotes the key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from monitor.config import ConfigError, MonitorSettings, Problem
from monitor.config.schema import Dkim
from monitor.delivery.channels.dkim_signing import (
    KEY_VARIABLE,
    DkimSigner,
    check_dns_name,
    parse_key,
)
from monitor.delivery.channels.email import Letterhead, check_letterhead, envelope_sender

MAX_KEY_BYTES = 64 * 1024  # an RSA-16384 PEM is 13 KB: anything longer is not a key


def sender_from_env(environ: Mapping[str, str], message_domain: str) -> str:
    """``MONITOR_SMTP_FROM``, else ``status@`` the org's domain."""
    return environ.get("MONITOR_SMTP_FROM") or f"status@{message_domain}"


def letterhead_for(
    settings: MonitorSettings, environ: Mapping[str, str], sender: str, settings_file: str
) -> Letterhead:
    """The letterhead ``settings`` ask for, for mail from ``sender``. Raises ConfigError with
    a problem for each field that cannot be used (``settings_file`` is where they are)."""
    problems: list[Problem] = []

    def problem(field: str, message: str) -> None:
        problems.append(Problem(settings_file, None, field, message))

    org = settings.org
    letterhead = Letterhead(name=org.name, reply_to=org.support_email or None)
    for field, message in check_letterhead(letterhead, sender):
        problem({"name": "org.name", "reply_to": "org.support_email"}[field], message)
    dkim = settings.email.dkim
    if dkim is None:
        if environ.get(KEY_VARIABLE):
            problem(
                "email.dkim",
                f"{KEY_VARIABLE} is set, but there is no email.dkim (its selector) to sign "
                "with: add it, or unset the variable to send unsigned",
            )
    else:
        signer = _signer(dkim, environ, sender, problem)
        if signer is not None:
            letterhead = Letterhead(letterhead.name, letterhead.reply_to, signer)
    if problems:
        raise ConfigError(problems)
    return letterhead


def _signer(
    dkim: Dkim,
    environ: Mapping[str, str],
    sender: str,
    problem: Callable[[str, str], None],
) -> DkimSigner | None:
    """The signer ``dkim`` asks for, or None having told ``problem`` (field, message) why not."""
    from_address = envelope_sender(sender) or ""
    domain = dkim.domain or from_address.rpartition("@")[2]
    if dkim.domain is None and not check_dns_name(domain):
        problem(
            "email.dkim.domain",
            f"the From address's domain {domain!r} is not a DNS name to sign for: set domain",
        )
        return None
    given = environ.get(KEY_VARIABLE, "").strip()
    if dkim.key_file is not None and given:
        problem(
            "email.dkim.key_file",
            f"give the key once: key_file or {KEY_VARIABLE}, not both (unset the variable, "
            "or leave key_file out)",
        )
        return None
    if dkim.key_file is not None:
        field = "email.dkim.key_file"
        path = Path(dkim.key_file)
        try:
            with path.open("rb") as file:
                raw = file.read(MAX_KEY_BYTES + 1)
        except OSError as exc:
            problem(field, f"cannot read {path}: {exc.strerror or exc}")
            return None
        if len(raw) > MAX_KEY_BYTES:
            problem(field, f"{path} is over {MAX_KEY_BYTES // 1024} KiB: not a private key")
            return None
        text, named = raw.decode("ascii", "replace"), f"{path}"
    elif given:
        field, text, named = "email.dkim", given, KEY_VARIABLE
    else:
        problem(
            "email.dkim",
            f"no key to sign with: set {KEY_VARIABLE} to the private key (PEM), or key_file "
            "to a file holding it",
        )
        return None
    try:
        key = parse_key(text)
    except ValueError as exc:
        problem(field, f"{named} {exc}")
        return None
    try:
        return DkimSigner(key, dkim.selector, domain)
    except ValueError as exc:
        problem(field, f"{named}: {exc}")
        return None
