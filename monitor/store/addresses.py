"""How a message's addresses are stored, by every backend alike: an address is the text
"kind:to" ("email:alice@example.com"), a message's channels a JSON list of those, and the
sent_via of a message not sent (yet) ""."""

from __future__ import annotations

from collections.abc import Sequence
from json.encoder import encode_basestring_ascii as _json_string

from monitor.model import Address, ChannelKind
from monitor.text import unknown_name

_KINDS: dict[str, ChannelKind] = {"email": "email", "sms": "sms", "webhook": "webhook"}


def address(text: str) -> Address:
    """The address stored as ``text``; ValueError for a kind this monitor does not know."""
    name, _, to = text.partition(":")
    kind = _KINDS.get(name)
    if kind is None:
        raise ValueError("outbox: " + unknown_name("channel", name, _KINDS))
    return Address(kind, to)


def address_text(sent: Address | None) -> str:
    return "" if sent is None else f"{sent.kind}:{sent.to}"


def channels_text(addresses: Sequence[Address]) -> str:
    """``json.dumps`` of the addresses' texts, written with the encoder's own string quoting
    (a third of the time, for the one or two a message has, written at each try)."""
    return "[" + ", ".join([_json_string(f"{a.kind}:{a.to}") for a in addresses]) + "]"
