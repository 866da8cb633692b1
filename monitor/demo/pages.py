"""``monitor demo``'s page of every message its mail catcher caught, as each person would see it.

Demo-only: ``monitor demo`` adds this page to the web app it serves; ``monitor run`` never has
it. Each message shows its HTML part (in a sandboxed ``iframe srcdoc``: the message's own markup,
run nowhere), its text part, and the SMS the same decision carries, which is what a person
reached only by phone (or whose email failed) is sent instead.

The page is served with the status page's Content-Security-Policy (``monitor.web``): no script
runs, nothing is fetched. An ``iframe srcdoc`` inherits that policy, so neither does the HTML
part, and ``sandbox`` gives it no scripts, forms or origin besides. Every value is escaped by the
template, including the HTML part, which goes into the ``srcdoc`` attribute as text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# The page is HTML for a browser, not a customer message: like the status page it gets a small
# autoescaping environment of its own instead of the composer's sandbox.
import jinja2
from aiohttp import web

from monitor.demo.mailcatcher import CaughtMessage
from monitor.store import OutboxItem
from monitor.web.server import PAGE_HEADERS

MESSAGES_PATH = "/demo/messages"
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True, slots=True)
class ShownMessage:
    """One caught message as the page shows it."""

    number: int  # its place among the caught messages, from 1
    to: str  # "Priya Shah <priya.shah@example.com>"
    subject: str
    kind: str  # "acknowledge", "update" or "resolved"; "" for mail the outbox did not send
    html: str | None
    text: str
    sms: str | None  # None for mail the outbox did not send


def outbox_key(caught: CaughtMessage) -> str:
    """The outbox key a message was sent under: its Message-ID's left part."""
    message_id = str(caught.message.get("Message-ID", "")).strip().strip("<>")
    return message_id.rpartition("@")[0]


def shown_messages(
    caught: Sequence[CaughtMessage], decided: Mapping[str, OutboxItem], names: Mapping[str, str]
) -> list[ShownMessage]:
    """``caught`` as the page shows them, each with the SMS of the outbox item it was sent from
    (``decided``, by key, as the notifier decided it: a sent item's bodies are not kept).

    ``names`` maps email addresses to the people's names.
    """
    shown = []
    for number, message in enumerate(caught, start=1):
        item = decided.get(outbox_key(message))
        to = ", ".join(
            f"{names[address]} <{address}>" if address in names else address
            for address in message.rcpt_tos
        )
        shown.append(
            ShownMessage(
                number=number,
                to=to,
                subject=message.subject,
                kind=item.kind if item is not None else "",
                html=message.html,
                text=message.text,
                sms=item.sms if item is not None else None,
            )
        )
    return shown


class MessagesPage:
    """Renders the page from the messages shown."""

    def __init__(self, templates: Path = TEMPLATES) -> None:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(templates),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.template = env.get_template("messages.html")

    def render(self, messages: Sequence[ShownMessage], status_path: str = "/") -> str:
        people = {m.to for m in messages}
        return self.template.render(messages=messages, people=len(people), status=status_path)


def add_messages_page(app: web.Application, messages: Callable[[], Sequence[ShownMessage]]) -> None:
    """Serve the page at ``MESSAGES_PATH`` of ``app``, from ``messages()`` at each request."""
    page = MessagesPage()

    async def handle(request: web.Request) -> web.Response:
        html = page.render(messages())
        return web.Response(text=html, content_type="text/html", headers=PAGE_HEADERS)

    app.router.add_get(MESSAGES_PATH, handle)
