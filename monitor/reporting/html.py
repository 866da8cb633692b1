"""A report as a standalone HTML page: the Markdown report rendered by markdown-it-py (one
layout for both), in a page with its title and a little inline CSS.

Safe with any data: the Markdown escapes everything that comes from people or systems, and the
renderer is told to take no raw HTML at all (``html: False``), so a ``<script>`` anywhere
arrives as text. Its links are only those the Markdown itself writes (none).
"""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

from markdown_it import MarkdownIt

from monitor.reporting.figures import Report
from monitor.reporting.markdown import report_markdown, title_of

_RENDERER = MarkdownIt("commonmark", {"html": False}).enable("table")

_STYLE = """\
body { font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #1a1a1a; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; vertical-align: top; }
th { background: #f3f3f3; }
blockquote { margin: 0.5rem 0 1rem; padding: 0 1rem; border-left: 4px solid #ccc; }
code { background: #f3f3f3; padding: 0 0.2rem; }
"""


def report_html(report: Report, zone: ZoneInfo) -> str:
    """The whole report as one HTML page, times in ``zone``."""
    body = _RENDERER.render(report_markdown(report, zone))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title_of(report))}: post-incident report</title>\n"
        f"<style>\n{_STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )
