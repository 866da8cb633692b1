"""The html part from the text part. Most templates' html block is ``_base.j2``'s: the text as
paragraphs between fixed markup. Found from the syntax tree when the composer is built, such a
template's html is written directly (the frame around ``paragraphs(escape(text))``) instead of
running the template again in the autoescaped environment, a fifth of the cost of a message.
Any other html block renders in Jinja, with ``self.text()`` as the text part already rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.runtime import Context
from markupsafe import escape

from monitor.notify.composer.templates import Templates


def html_frames(env: Environment, templates: Templates) -> dict[str, tuple[str, str]]:
    """The markup before and after the text as paragraphs, by the file name Jinja compiles the
    template under, for each template whose html block is just that (see ``html_from_text``)."""
    return {
        templates.path(name): frame
        for name, source in templates.sources.items()
        if (frame := html_from_text(env, source)) is not None
    }


def html_from_text(env: Environment, source: str) -> tuple[str, str] | None:
    """For a template whose html block is only ``{{ self.text()|paragraphs }}`` between fixed
    markup, that markup; else None."""
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
    parts: list[nodes.Node] = list(output.nodes)
    frame = ["", ""]
    for end, at in ((0, 0), (1, -1)):
        if parts and isinstance(data := parts[at], nodes.TemplateData):
            frame[end] = data.data
            del parts[at]
    if len(parts) != 1 or not _is_text_as_paragraphs(parts[0]):
        return None
    return frame[0], frame[1]


def text_as_block(text: str) -> Callable[[Context], Iterator[str]]:
    """A block that yields ``text``, rendered already, escaped for html: ``self.text()`` in an
    html block of another kind."""
    # Rendering the text block again, autoescaped, cost ~20 us of a message's ~165 and left
    # markup-like literals ("<https://...>") raw in the html.
    escaped = str(escape(text))

    def block(context: Context) -> Iterator[str]:
        yield escaped

    return block


def _is_text_as_paragraphs(node: nodes.Node) -> bool:
    """Whether ``node`` is ``self.text()|paragraphs``, nothing more."""
    if not (isinstance(node, nodes.Filter) and node.name == "paragraphs"):
        return False
    if node.args or node.kwargs or node.dyn_args or node.dyn_kwargs:
        return False
    call = node.node
    return (
        isinstance(call, nodes.Call)
        and not (call.args or call.kwargs or call.dyn_args or call.dyn_kwargs)
        and isinstance(call.node, nodes.Getattr)
        and call.node.attr == "text"
        and isinstance(call.node.node, nodes.Name)
        and call.node.node.name == "self"
    )
