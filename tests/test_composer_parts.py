"""The composer's parts on their own: reading messages/ into a snapshot, and finding which
templates' html part can be written straight from the text part."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import Problem
from monitor.model import MessageKind
from monitor.notify.composer.html import HtmlFrame, Slot, html_frames, html_from_text
from monitor.notify.composer.sandbox import sandbox
from monitor.notify.composer.templates import kind_of, read_templates
from monitor.text import one_line

MESSAGES = Path(__file__).resolve().parent.parent / "messages"


def write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")


def test_reading_keeps_each_template_by_its_name_under_the_folder(tmp_path: Path) -> None:
    """Defaults, per-system overrides, a language's (and its systems') and shared parts are read
    by their relative names; other files and deeper folders are not templates."""
    write(tmp_path / "acknowledge.j2", "ack")
    write(tmp_path / "_parts.j2", "parts")
    write(tmp_path / "payment" / "update.j2", "override")
    write(tmp_path / "de" / "payment" / "update.j2", "German override")
    write(tmp_path / "notes.txt", "not a template")
    write(tmp_path / "a" / "b" / "c" / "update.j2", "too deep")
    templates = read_templates(tmp_path)
    assert dict(templates.sources) == {
        "_parts.j2": "parts",
        "acknowledge.j2": "ack",
        "de/payment/update.j2": "German override",
        "payment/update.j2": "override",
    }
    assert templates.unreadable == ()
    assert templates.path("payment/update.j2") == str(tmp_path / "payment" / "update.j2")


def test_a_template_that_is_not_utf8_is_reported_by_its_file_and_the_rest_are_read(
    tmp_path: Path,
) -> None:
    """A file that cannot be decoded is one problem naming it; the others are still read."""
    write(tmp_path / "acknowledge.j2", b"\xff\xfe not text")
    write(tmp_path / "update.j2", "update")
    templates = read_templates(tmp_path)
    assert dict(templates.sources) == {"update.j2": "update"}
    [problem] = templates.unreadable
    assert isinstance(problem, Problem)
    assert problem.file == str(tmp_path / "acknowledge.j2")
    assert problem.message.startswith("cannot read it: ")


def test_a_missing_folder_reads_as_no_templates(tmp_path: Path) -> None:
    """Reading a folder that is not there gives no templates (validate says it is missing)."""
    templates = read_templates(tmp_path / "nowhere")
    assert dict(templates.sources) == {}
    assert templates.unreadable == ()


@pytest.mark.parametrize(
    ("name", "kind", "owner"),
    [
        ("acknowledge.j2", MessageKind.ACKNOWLEDGE, None),
        ("payment/update.j2", MessageKind.UPDATE, "payment"),
        ("_base.j2", None, None),
        ("crm/notes.j2", None, "crm"),
    ],
)
def test_a_template_name_says_its_kind_and_the_system_it_overrides(
    name: str, kind: MessageKind | None, owner: str | None
) -> None:
    """``payment/update.j2`` is the update for payment; a name that is no kind has none."""
    assert kind_of(name) == (kind, owner)


FRAME = (
    "{% block html %}\n<p>before</p>\n{{ self.text()|paragraphs }}\n<p>after</p>\n{% endblock %}"
)


TEXT, LINKED, SUBJECT, LANGUAGE = Slot.TEXT, Slot.LINKED_TEXT, Slot.SUBJECT, Slot.LANGUAGE


@pytest.mark.parametrize(
    ("source", "frame"),
    [
        (FRAME, HtmlFrame(("<p>before</p>\n", TEXT, "\n<p>after</p>\n"))),
        ("{% block html %}{{ self.text()|paragraphs }}{% endblock %}", HtmlFrame((TEXT,))),
        (
            FRAME.replace("paragraphs", "paragraphs|contact_links(org)"),
            HtmlFrame(("<p>before</p>\n", LINKED, "\n<p>after</p>\n")),
        ),
        (
            FRAME.replace(
                "<p>before</p>", '<html lang="{{ language }}"><title>{{ self.subject() }}'
            ),
            HtmlFrame(
                ('<html lang="', LANGUAGE, '"><title>', SUBJECT, "\n", TEXT, "\n<p>after</p>\n")
            ),
        ),
        ("{% block text %}Hello{% endblock %}", None),
        (FRAME.replace("paragraphs", "paragraphs|upper"), None),
        (FRAME.replace("paragraphs", "paragraphs|contact_links(user)"), None),
        (FRAME.replace("paragraphs", "contact_links(org)|paragraphs"), None),
        (FRAME.replace("self.text()", "self.subject()"), None),
        (FRAME.replace("self.text()", "self.text(1)"), None),
        (FRAME.replace("<p>after</p>", "{{ org.name }}"), None),
        (FRAME.replace("<p>after</p>", "{{ self.subject(1) }}"), None),
        (FRAME.replace("<p>before</p>", "{% if user.name %}x{% endif %}"), None),
        (FRAME + "\n" + FRAME, None),
        ("{% block html %}{{ self.text()|paragraphs }}{{ self.text()|paragraphs }}", None),
        ("{% block html %}{{ self.text()|paragraphs }", None),
    ],
)
def test_only_an_html_block_of_text_as_paragraphs_in_fixed_markup_is_written_directly(
    source: str, frame: HtmlFrame | None
) -> None:
    """The html part is written from the text part only for a block that is exactly
    ``self.text()|paragraphs`` (with ``|contact_links(org)`` or not) in fixed markup, with
    ``self.subject()`` and ``language`` at most; anything else goes through Jinja."""
    env = sandbox(read_templates(MESSAGES).loader(), autoescape=True)
    assert html_from_text(env, source) == frame


def test_the_shipped_html_is_written_directly_for_base_alone() -> None:
    """Of the shipped templates only _base.j2 and de/_base.j2 have an html block, so only
    their html is written straight from the text: the same frame, saying the language and
    titled with the subject, the contacts as links, the person's manage link small at the end."""
    templates = read_templates(MESSAGES)
    env = sandbox(templates.loader(), autoescape=True)
    frames = html_frames(env, templates)
    assert sorted(frames) == [templates.path("_base.j2"), templates.path("de/_base.j2")]
    english, german = frames[templates.path("_base.j2")], frames[templates.path("de/_base.j2")]
    assert english.pieces[:2] == ('<!DOCTYPE html>\n<html lang="', Slot.LANGUAGE)
    middle = english.pieces[2:5]
    assert str(middle[0]).endswith("<title>")
    assert middle[1] is Slot.SUBJECT
    assert str(middle[2]).startswith("</title>\n</head>\n<body")
    assert english.pieces[-2:] == (Slot.MANAGED_TEXT, "\n</body>\n</html>\n")
    assert german == english


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("Alice Martin", "Alice Martin"),
        ("\n  Planned work on\n  Online payments\n", "Planned work on Online payments"),
        ("a\tb\r\nc\x0bd\x85e\u2028f\xa0g", "a b c d e f g"),
        ("Bcc:\x00 x@evil.example\x1bz", "Bcc: x@evil.example z"),
        ("x\x7f\x9fy", "x y"),
        ("  ", ""),
    ],
)
def test_one_line_makes_every_run_of_whitespace_or_control_characters_one_space(
    text: str, line: str
) -> None:
    """A subject, name or sms is one line: line breaks, tabs, Unicode spaces and control
    characters (which splitting on whitespace alone would keep) each run one space, trimmed."""
    assert one_line(text) == line
