"""Rendering a template one block at a time, as Jinja would render it whole, so that each
block's failure is reported on its own, with the file and line of the version of the block
that ran (a template extending ``_base.j2`` uses some blocks of each)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from jinja2 import Environment, TemplateNotFound, nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.runtime import Context

from monitor.notify.composer.errors import TemplateError, explain, names_of
from monitor.notify.composer.html import html_frames, text_as_block
from monitor.notify.composer.sandbox import sandbox
from monitor.notify.composer.templates import Templates
from monitor.text import one_line

REQUIRED_BLOCKS = ("subject", "text")

BlockFunction = Callable[[Context], Iterator[str]]


@dataclass
class Blocks:
    """What rendering a template's blocks gave."""

    rendered: dict[str, str] = field(default_factory=dict)
    defined: set[str] = field(default_factory=set)
    origins: dict[str, str] = field(default_factory=dict)  # block -> file whose version is used
    chains: dict[str, list[BlockFunction]] = field(default_factory=dict)  # the text environment's


class BlockRenderer:
    """Renders the blocks of the templates in ``templates``: ``subject``, ``text`` and ``sms``
    in the sandbox, ``html`` in the autoescaped sandbox (or from the text, see ``html``)."""

    def __init__(self, templates: Templates) -> None:
        self._templates = templates
        self._sources = templates.sources
        self._path = templates.path
        self._names_by_filename = templates.names_by_filename()
        loader = templates.loader()
        self.text_env = sandbox(loader, autoescape=False)
        self._html_env = sandbox(loader, autoescape=True)
        self._html_from_text = html_frames(self._html_env, templates)

    def render(self, name: str, data: Mapping[str, object], errors: list[TemplateError]) -> Blocks:
        """Render each block of ``name`` on its own; collect every failure in ``errors``, a
        required block the template lacks too."""
        result = Blocks()
        plans: tuple[tuple[Environment, tuple[str, ...]], ...] = (
            (self.text_env, ("subject", "text", "sms")),
            (self._html_env, ("html",)),
        )
        for env, wanted in plans:
            if env is self._html_env and self._derive_html(result, data):
                break
            try:
                if name not in self._sources:
                    raise TemplateNotFound(name)
                template = env.get_template(name)
                context = template.new_context(dict(data))
                chains = _prepare(context, template.root_render_func)
            except Exception:
                errors.append(self._caught(env, name, ""))
                break
            result.defined.update(chains)
            result.chains = chains
            # The blocks of one environment render in the context its top level ran in, as
            # Jinja renders a template's blocks: they only read it (a ``{% set %}`` in a block
            # stays in that block).
            context.blocks = chains
            if env is self._html_env and "text" in result.rendered:
                # ``self.text()`` in the html block is the text part as sent, escaped whole;
                # ``self.subject()`` the subject, on one line.
                context.blocks["text"] = [text_as_block(result.rendered["text"])]
                if "subject" in result.rendered:
                    subject = one_line(result.rendered["subject"])
                    context.blocks["subject"] = [text_as_block(subject)]
            for block in wanted:
                if block not in chains:
                    continue
                first = chains[block][0]
                origin = self._names_by_filename.get(first.__code__.co_filename, name)
                result.origins[block] = origin
                try:
                    result.rendered[block] = "".join(first(context))
                except Exception:
                    errors.append(self._caught(env, name, block))
        if result.defined:  # else it failed before its blocks were known
            for block in REQUIRED_BLOCKS:
                if block not in result.defined:
                    needed = f"{{% block {block} %}}...{{% endblock %}}"
                    message = f"no {block} block: every message needs {needed}"
                    errors.append(TemplateError(self._path(name), None, block, message))
        return result

    def where(self, blocks: Blocks, block: str) -> tuple[str, int | None, str]:
        """The file and line of the version of ``block`` that was rendered, and the block."""
        origin = blocks.origins.get(block, "")
        return self._path(origin), self._block_line(origin, block), block

    def error(self, exc: BaseException, name: str, block: str) -> TemplateError:
        """``exc``, raised rendering ``block`` of ``name``, at the innermost template line."""
        file, line = name, None
        if isinstance(exc, TemplateSyntaxError):
            file, line = exc.name or name, exc.lineno
        tb = exc.__traceback__
        while tb is not None:  # the innermost template frame is where it went wrong
            code = tb.tb_frame.f_code
            if code.co_filename in self._names_by_filename:
                file, line = self._names_by_filename[code.co_filename], tb.tb_lineno
                found = re.fullmatch(r"block '(\w+)'", code.co_name)
                block = found.group(1) if found else block
            tb = tb.tb_next
        message = explain(exc, self._templates.dir, names_of(name))
        return TemplateError(self._path(file), line, block, message)

    def _derive_html(self, result: Blocks, data: Mapping[str, object]) -> bool:
        """Write the html part without a second environment when the html block in use is
        the text as paragraphs in a frame, as ``_base.j2``'s is (``HtmlFrame``): running the
        template's top level again, autoescaped, was a fifth of the cost of a message."""
        chain = result.chains.get("html")
        if not chain or "text" not in result.rendered:
            return False
        filename = chain[0].__code__.co_filename
        frame = self._html_from_text.get(filename)
        if frame is None:
            return False
        rendered = result.rendered
        rendered["html"] = frame.render(rendered["text"], rendered.get("subject", ""), data)
        result.origins["html"] = self._names_by_filename.get(filename, filename)
        return True

    def _caught(self, env: Environment, name: str, block: str) -> TemplateError:
        """The exception being handled, rewritten by Jinja to point into the template."""
        try:
            env.handle_exception()
        except Exception as exc:
            return self.error(exc, name, block)

    def _block_line(self, name: str, block: str) -> int | None:
        try:
            tree = self.text_env.parse(self._sources[name])
        except (KeyError, TemplateSyntaxError):
            return None
        found = [node.lineno for node in tree.find_all(nodes.Block) if node.name == block]
        return found[0] if found else None


class _MutedBlocks(dict[str, list[BlockFunction]]):
    """Block chains while a template's top level runs: the chains fill in as ``{% extends %}``
    links each parent, but a block called meanwhile renders nothing."""

    def __getitem__(self, name: str) -> list[BlockFunction]:
        return [_render_nothing]


def _render_nothing(context: Context) -> Iterator[str]:
    return iter(())


def _prepare(context: Context, root: BlockFunction) -> dict[str, list[BlockFunction]]:
    """Run the template's top level in ``context`` as Jinja would (the ``{% extends %}`` chain,
    top-level ``{% set %}``, ``{% import %}`` and macros) without rendering any block. Returns
    each block's chain, most derived first (what ``super()`` walks)."""
    muted = _MutedBlocks(context.blocks)
    context.blocks = muted
    for _ in root(context):
        pass
    return {name: list(chain) for name, chain in muted.items()}
