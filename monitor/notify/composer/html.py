"""The html part from the text part. Most templates' html block is ``_base.j2``'s: the text as
paragraphs (with the org's phone and email as links) between fixed markup that says the
message's language and has its subject as the title. Found from the syntax tree when the
composer is built, such a template's html is written directly (``HtmlFrame.render``) instead of
running the template again in the autoescaped environment, a fifth of the cost of a message.
Any other html block renders in Jinja, with ``self.text()`` as the text part already rendered
and ``self.subject()`` as the subject, both escaped.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import cast

from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.runtime import Context
from markupsafe import escape

from monitor.notify.composer.filters import Contacts, contact_links, manage_link, paragraphs
from monitor.notify.composer.templates import Templates
from monitor.text import one_line


class Slot(enum.Enum):
    """What an ``HtmlFrame`` fills in between its fixed markup."""

    TEXT = "self.text()|paragraphs"
    LINKED_TEXT = "self.text()|paragraphs|contact_links(org)"
    # ... and the person's manage link, small, at the end
    MANAGED_TEXT = "self.text()|paragraphs|contact_links(org)|manage_link(manage_url)"
    SUBJECT = "self.subject()"
    LANGUAGE = "language"


@dataclass(frozen=True)
class HtmlFrame:
    """An html block that is fixed markup and ``Slot``s, the text among them exactly once."""

    pieces: tuple[str | Slot, ...]

    def render(self, text: str, subject: str, data: Mapping[str, object]) -> str:
        """The html the block renders, given the rendered text and subject blocks and what
        the template sees (``language``, ``org``), as Jinja's autoescape would write it."""
        out: list[str] = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
            elif piece is Slot.SUBJECT:
                out.append(str(escape(one_line(subject))))
            elif piece is Slot.LANGUAGE:
                out.append(str(escape(data.get("language", ""))))
            else:
                html = paragraphs(escape(text))
                if piece is not Slot.TEXT:
                    html = contact_links(html, cast(Contacts, data["org"]))
                if piece is Slot.MANAGED_TEXT:
                    html = manage_link(html, cast(str, data.get("manage_url", "")))
                out.append(str(html))
        return "".join(out)


def html_frames(env: Environment, templates: Templates) -> dict[str, HtmlFrame]:
    """The frame of each template whose html block is just one (see ``html_from_text``), by
    the file name Jinja compiles the template under."""
    return {
        templates.path(name): frame
        for name, source in templates.sources.items()
        if (frame := html_from_text(env, source)) is not None
    }


def html_from_text(env: Environment, source: str) -> HtmlFrame | None:
    """For a template whose html block is only fixed markup around ``{{ self.text()|paragraphs
    }}`` (or ``...|contact_links(org)``), ``{{ self.subject() }}`` and ``{{ language }}``,
    that frame; else None."""
    try:
        tree = env.parse(source)
    except TemplateSyntaxError:
        return None
    blocks = [block for block in tree.find_all(nodes.Block) if block.name == "html"]
    if len(blocks) != 1 or len(blocks[0].body) != 1:
        return None
    output = blocks[0].body[0]
    if not isinstance(output, nodes.Output):
        return None
    pieces: list[str | Slot] = []
    for node in output.nodes:
        piece = node.data if isinstance(node, nodes.TemplateData) else _slot(node)
        if piece is None:
            return None
        pieces.append(piece)
    texts = [piece for piece in pieces if piece in _TEXTS]
    return HtmlFrame(tuple(pieces)) if len(texts) == 1 else None


def text_as_block(text: str) -> Callable[[Context], Iterator[str]]:
    """A block that yields ``text``, rendered already, escaped for html: ``self.text()`` in an
    html block of another kind."""
    # Rendering the text block again, autoescaped, cost ~20 us of a message's ~165 and left
    # markup-like literals ("<https://...>") raw in the html.
    escaped = str(escape(text))

    def block(context: Context) -> Iterator[str]:
        yield escaped

    return block


_TEXTS = (Slot.TEXT, Slot.LINKED_TEXT, Slot.MANAGED_TEXT)


def _slot(node: nodes.Node) -> Slot | None:
    """The slot ``node`` is, or None for any other expression."""
    if _is_filter(node, "manage_link"):
        assert isinstance(node, nodes.Filter)
        args = node.args
        if len(args) == 1 and isinstance(args[0], nodes.Name) and args[0].name == "manage_url":
            linked = node.node is not None and _slot(node.node) is Slot.LINKED_TEXT
            return Slot.MANAGED_TEXT if linked else None
        return None
    if isinstance(node, nodes.Name) and node.name == "language" and node.ctx == "load":
        return Slot.LANGUAGE
    if _is_self_call(node, "subject"):
        return Slot.SUBJECT
    if _is_filter(node, "contact_links"):
        assert isinstance(node, nodes.Filter)
        args = node.args
        if len(args) == 1 and isinstance(args[0], nodes.Name) and args[0].name == "org":
            return Slot.LINKED_TEXT if _is_text_as_paragraphs(node.node) else None
        return None
    return Slot.TEXT if _is_text_as_paragraphs(node) else None


def _is_text_as_paragraphs(node: nodes.Node | None) -> bool:
    """Whether ``node`` is ``self.text()|paragraphs``, nothing more."""
    return (
        _is_filter(node, "paragraphs")
        and isinstance(node, nodes.Filter)
        and not node.args
        and _is_self_call(node.node, "text")
    )


def _is_filter(node: nodes.Node | None, name: str) -> bool:
    """Whether ``node`` is the filter ``name`` with no keyword or unpacked arguments."""
    return (
        isinstance(node, nodes.Filter)
        and node.name == name
        and not (node.kwargs or node.dyn_args or node.dyn_kwargs)
    )


def _is_self_call(node: nodes.Node | None, block: str) -> bool:
    """Whether ``node`` is ``self.<block>()``, without arguments."""
    return (
        isinstance(node, nodes.Call)
        and not (node.args or node.kwargs or node.dyn_args or node.dyn_kwargs)
        and isinstance(node.node, nodes.Getattr)
        and node.node.attr == block
        and isinstance(node.node.node, nodes.Name)
        and node.node.node.name == "self"
    )
