"""What customers do with their subscription, on the status page's site: ask for one (the form
on ``/``, ``POST /subscribe``), confirm it from the mail (``/subscribe/confirm/TOKEN``: a
page with a button, so a mail scanner following the link confirms nothing), and manage or
cancel it from any message (``/unsubscribe/TOKEN``: a page with a button and the choice of
services; a POST to it unsubscribes at once, as RFC 8058's one-click ``List-Unsubscribe-Post``
sends it, with no cookie and no confirmation page).

The confirmation mail is in the visitor's language when their browser's ``Accept-Language``
names one there are templates for. Pages name services by their titles, never their internal
names. A request's answer is the same page whoever asks (subscribed already, unknown, or over
the limits): nothing about an address is read before answering. A token that is not ours gets
a plain page and no detail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aiohttp import web

from monitor.model import SystemInfo
from monitor.subscriptions.decisions import Confirmation, Desk, usable_email
from monitor.web.services import SERVICES
from monitor.web.statuspage import StatusPage

UNSUBSCRIBE_PATH = "/unsubscribe/{token}"
# A browser lists a few languages; a longer header is read this far (no person needs more).
_MAX_LANGUAGES, _MAX_HEADER = 10, 1024
REFUSED = "This link does not work. Use the newest link in one of our messages."
_CHECK_INBOX = (
    "Check your inbox: if the address can be subscribed, a mail with a link to confirm is on "
    "its way. Nothing is sent until you confirm."
)


@dataclass(frozen=True, slots=True)
class Choice:
    """A service as the manage form offers it: its title, and whether it is chosen."""

    title: str
    checked: bool


def titles(systems: Mapping[str, SystemInfo]) -> list[str]:
    """The services offered on the form, by title (each once)."""
    return sorted({info.title for info in systems.values()}, key=str.casefold)


def names_of(chosen: Sequence[str], systems: Mapping[str, SystemInfo]) -> list[str] | None:
    """The systems the form's titles stand for; None when one is not offered."""
    by_title: dict[str, list[str]] = {}
    for name, info in systems.items():
        by_title.setdefault(info.title, []).append(name)
    if any(title not in by_title for title in chosen):
        return None
    return sorted({name for title in chosen for name in by_title[title]})


_PAGES: web.AppKey[StatusPage] = web.AppKey("subscription_pages", StatusPage)
_HEADERS: web.AppKey[dict[str, str]] = web.AppKey("subscription_headers", dict)


def add_subscription_routes(
    app: web.Application, pages: StatusPage, headers: dict[str, str]
) -> None:
    """The routes above, answering with ``pages`` (the status page's look) and ``headers``."""
    app[_PAGES], app[_HEADERS] = pages, headers
    router = app.router
    router.add_post("/subscribe", subscribe)
    router.add_get("/subscribe/confirm/{token}", confirm_page)
    router.add_post("/subscribe/confirm/{token}", confirm)
    router.add_get(UNSUBSCRIBE_PATH, manage_page)
    router.add_post(UNSUBSCRIBE_PATH, unsubscribe)
    router.add_post(UNSUBSCRIBE_PATH + "/manage", manage)


def _desk(request: web.Request) -> Desk:
    desk = request.app[SERVICES].subscriptions()
    if desk is None:
        raise _Answer(404, "Subscriptions are not offered here", "Ask us by email instead.")
    return desk


class _Answer(Exception):
    """A page to answer with: its status, heading and message."""

    def __init__(self, status: int, heading: str, message: str) -> None:
        super().__init__(heading)
        self.status, self.heading, self.message = status, heading, message


def _render(
    request: web.Request, status: int, heading: str, message: str, **forms: object
) -> web.Response:
    services = request.app[SERVICES]
    html = request.app[_PAGES].page(
        "subscription.html",
        services.config().settings.org.name,
        heading=heading,
        message=message,
        confirm_action=forms.get("confirm_action", ""),
        unsubscribe_action=forms.get("unsubscribe_action", ""),
        manage_action=forms.get("manage_action", ""),
        choices=forms.get("choices", ()),
    )
    response = web.Response(
        text=html, status=status, content_type="text/html", headers=request.app[_HEADERS]
    )
    response.enable_compression()
    return response


def client_address(request: web.Request) -> str:
    """Who is asking, for the per-client limit: the last address of the header the proxy in
    front writes (``subscriptions.client_address_header``; a client may write earlier ones
    itself, never the last), else the connection's."""
    header = request.app[SERVICES].config().settings.subscriptions.client_address_header
    if header:
        written = request.headers.getall(header, [])
        last = written[-1].rsplit(",", 1)[-1].strip() if written else ""
        if last:
            return last[:64]
    return request.remote or "unknown"


def accepted_languages(header: str) -> list[str]:
    """The language tags an ``Accept-Language`` header asks for, best first: by ``q``, then
    in the order written (RFC 9110); ``*`` and ``q=0`` left out, at most ``_MAX_LANGUAGES``.
    Whether the monitor knows a tag is the composer's to say."""
    weighted = []
    for position, part in enumerate(header[:_MAX_HEADER].split(",")):
        tag, _, parameters = part.partition(";")
        weight = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if tag.strip() not in ("", "*") and 0 < weight <= 1:  # NaN is neither
            weighted.append((-weight, position, tag.strip()))
    return [tag for _, _, tag in sorted(weighted)[:_MAX_LANGUAGES]]


async def subscribe(request: web.Request) -> web.Response:
    """The status page's form: an address and services (by title; all are checked at first)."""
    try:
        desk = _desk(request)
        form = await request.post()
        email = usable_email(str(form.get("email", "")))
        if email is None:
            raise _Answer(400, "That is not an email address", "Go back and check it.")
        chosen = [str(title) for title in form.getall("system", [])]
        systems = request.app[SERVICES].config().systems
        info = {name: SystemInfo(name, system.title) for name, system in systems.items()}
        names = names_of(chosen, info)
        if not chosen or names is None:
            raise _Answer(
                400, "Choose the services to hear about", "Go back and tick at least one."
            )
        languages = accepted_languages(request.headers.get("Accept-Language", ""))
        await desk.request(email, names, client_address(request), languages)
    except _Answer as answer:
        return _render(request, answer.status, answer.heading, answer.message)
    return _render(request, 200, "Almost done", _CHECK_INBOX)


async def confirm_page(request: web.Request) -> web.Response:
    """The link in the confirmation mail: a button (a scanner fetching it confirms nothing)."""
    token = request.match_info["token"]
    try:
        wrong = _desk(request).unusable(token)
    except _Answer as answer:
        return _render(request, answer.status, answer.heading, answer.message)
    if wrong is not None:
        return _refused(request, wrong)
    return _render(
        request,
        200,
        "Confirm your subscription",
        "One click and we'll tell you by email when a service you chose has a problem, and "
        "when it is fixed.",
        confirm_action=f"/subscribe/confirm/{token}",
    )


async def confirm(request: web.Request) -> web.Response:
    try:
        outcome, _ = await _desk(request).confirm(request.match_info["token"])
    except _Answer as answer:
        return _render(request, answer.status, answer.heading, answer.message)
    if outcome is not Confirmation.SUBSCRIBED:
        return _refused(request, outcome)
    return _render(
        request,
        200,
        "You're subscribed",
        "We'll tell you by email when a service you chose has a problem, and when it is "
        "fixed. Every message has a link to change that or stop it.",
    )


def _refused(request: web.Request, why: Confirmation) -> web.Response:
    """A confirm link too old (subscribe again), or not ours."""
    if why is Confirmation.EXPIRED:
        return _render(
            request,
            400,
            "This link has expired",
            "Subscribe again on the status page: you'll get a new link.",
        )
    return _render(request, 400, "This link does not work", REFUSED)


async def manage_page(request: web.Request) -> web.Response:
    """A message's manage link: unsubscribe with one button, or choose the services. Never
    unsubscribes by itself (mail scanners follow links)."""
    token = request.match_info["token"]
    try:
        held = await _desk(request).holder(token)
    except _Answer as answer:
        return _render(request, answer.status, answer.heading, answer.message)
    if held is None:
        return _render(request, 404, "This link does not work", REFUSED)
    _, person = held
    systems = request.app[SERVICES].config().systems
    theirs = {systems[n].title for n in (person.systems if person else ()) if n in systems}
    choices = [
        Choice(title, title in theirs)
        for title in titles({n: SystemInfo(n, s.title) for n, s in systems.items()})
    ]
    return _render(
        request,
        200,
        "Your messages from us",
        "Stop all of them with one click, or choose the services you hear about.",
        unsubscribe_action=f"/unsubscribe/{token}",
        manage_action=f"/unsubscribe/{token}/manage",
        choices=choices if person is not None else (),
    )


async def unsubscribe(request: web.Request) -> web.Response:
    """One POST unsubscribes (RFC 8058: ``List-Unsubscribe=One-Click`` in the body, no cookie,
    no confirmation): 200 and a short page; 404 for a link not ours."""
    try:
        done = await _desk(request).unsubscribe(request.match_info["token"])
    except _Answer as answer:
        return _render(request, answer.status, answer.heading, answer.message)
    if not done:
        return _render(request, 404, "This link does not work", REFUSED)
    return _render(
        request,
        200,
        "You're unsubscribed",
        "You'll get nothing further from us about our services' status. To hear again, "
        "subscribe on the status page.",
    )


async def manage(request: web.Request) -> web.Response:
    """The manage form: the services ticked are the ones heard about (none: unsubscribed)."""
    token = request.match_info["token"]
    try:
        desk = _desk(request)
        form = await request.post()
        chosen = [str(title) for title in form.getall("system", [])]
        systems = request.app[SERVICES].config().systems
        names = names_of(chosen, {n: SystemInfo(n, s.title) for n, s in systems.items()})
        if names is None:
            raise _Answer(400, "Choose the services to hear about", "Go back and tick them.")
        person = await desk.manage(token, names)
    except _Answer as answer:
        return _render(request, answer.status, answer.heading, answer.message)
    if person is None:
        return _render(request, 404, "This link does not work", REFUSED)
    if not person.systems:
        return _render(request, 200, "You're unsubscribed", "You'll get nothing further from us.")
    return _render(
        request,
        200,
        "Saved",
        "You'll hear about "
        + ", ".join(
            t
            for t in titles(
                {n: SystemInfo(n, systems[n].title) for n in person.systems if n in systems}
            )
        )
        + ".",
    )
