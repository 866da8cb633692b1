"""Subscribing through the real status page in a headless Chromium. Chromium without a driver
cannot fill in and submit a form, so it renders each page (``--dump-dom``) and the test posts
exactly the fields of the form the browser rendered, as a submit would: the address typed in,
the services ticked (all, as the page offers them)."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode

from test_browser import PHONE, chromium, pytestmark
from test_subscriptions import link_in, path_of, stage

__all__ = ["pytestmark"]  # skipped where Debian's chromium is not installed


class Forms(HTMLParser):
    """The forms of a page: each one's action and the fields a submit sends."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, list[tuple[str, str]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append((found.get("action", ""), []))
        elif tag == "input" and self.forms:
            kind = found.get("type", "text")
            if kind == "checkbox" and "checked" not in found:
                return
            self.forms[-1][1].append((found.get("name", ""), found.get("value", "")))


def forms_of(dom: str) -> list[tuple[str, list[tuple[str, str]]]]:
    parser = Forms()
    parser.feed(dom)
    return parser.forms


async def test_a_visitor_subscribes_on_the_page_confirms_and_hears_of_the_next_outage(
    tmp_path: Path,
) -> None:
    """The page Chromium renders offers the form with every service by title, ticked; its
    fields sent with an address get a confirmation mail; the confirm page Chromium renders has
    one button, whose form confirms; the next outage is acknowledged to the new subscriber."""
    async with stage(tmp_path) as on:
        front = str(on.client.make_url("/"))
        dom = (await chromium(PHONE, "--dump-dom", front, profile=tmp_path / "a")).decode()
        [(action, fields)] = [f for f in forms_of(dom) if f[0] == "/subscribe"]
        assert [value for name, value in fields if name == "system"] == [
            "Online payments",
            "Signing in to your account",
            "Your order history",
        ]
        typed = [(n, "visitor@example.org" if n == "email" else v) for n, v in fields]
        status, page = await on.post(action, urlencode(typed))
        assert status == 200
        assert "Check your inbox" in page

        [confirmation] = await on.mail(1)
        link = str(on.client.make_url(path_of(link_in(confirmation.text, "subscribe/confirm"))))
        dom = (await chromium(PHONE, "--dump-dom", link, profile=tmp_path / "b")).decode()
        [(action, fields)] = forms_of(dom)
        status, page = await on.post(action, urlencode(fields))
        assert status == 200
        assert "You're subscribed" in page

        await on.rounds("crm", False, 8)
        acks = [m for m in await on.mail(2) if "visitor@example.org" in m.rcpt_tos]
        assert len(acks) == 2
        assert "acknowledge" in acks[1].message["Message-ID"]
