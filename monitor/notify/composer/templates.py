"""Reading the templates: ``messages/<kind>.j2`` and the per-system overrides
``messages/<system>/<kind>.j2``, and the same per language (``messages/de/<kind>.j2``,
``messages/de/<system>/<kind>.j2``), read once into a snapshot that Jinja loads from.

A folder named like a configured system is that system's; any other folder named with a
language tag (``de``, ``pt-BR``) is that language's; ``check`` reports any other folder."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from jinja2 import BaseLoader, Environment, TemplateNotFound

from monitor.config import Problem
from monitor.locales import check_language
from monitor.maintenance import NoticeKind
from monitor.model import MessageKind


class SubscriptionKind(StrEnum):
    """The message someone asks for on the status page: the confirmation of a subscription
    (``subscribe.j2``, the outbox kind of ``monitor.subscriptions``), by email only, with no
    per-system template (one request is for several systems)."""

    CONFIRM = "subscribe"


# Every kind of message a template may be: about an incident, about planned work, or the
# confirmation of a subscription.
AnyKind = MessageKind | NoticeKind | SubscriptionKind
KINDS: tuple[AnyKind, ...] = (*MessageKind, *NoticeKind, *SubscriptionKind)


@dataclass(frozen=True, slots=True)
class Templates:
    """The templates of ``dir`` as read: each by its name relative to ``dir``
    (``payment/update.j2``), and the files that could not be read."""

    dir: Path
    sources: Mapping[str, str]
    unreadable: tuple[Problem, ...]

    def path(self, name: str) -> str:
        """The file of the template ``name`` (``dir`` itself for "") as it is shown to people."""
        return str(self.dir / name) if name else str(self.dir)

    def names_by_filename(self) -> dict[str, str]:
        """Each template's name by the file name Jinja compiles it under (its ``path``)."""
        return {self.path(name): name for name in self.sources}

    def loader(self) -> BaseLoader:
        return _SnapshotLoader(self.sources, self.path)


def read_templates(messages_dir: Path) -> Templates:
    """Every ``*.j2`` in ``messages_dir`` and its subfolders, now (none if it is not a folder)."""
    sources: dict[str, str] = {}
    unreadable: list[Problem] = []
    if messages_dir.is_dir():
        found = ("*.j2", "*/*.j2", "*/*/*.j2")
        for path in sorted(path for pattern in found for path in messages_dir.glob(pattern)):
            name = path.relative_to(messages_dir).as_posix()
            try:
                sources[name] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                unreadable.append(Problem(str(path), None, "", f"cannot read it: {exc}"))
    return Templates(messages_dir, sources, tuple(unreadable))


def language_folders(sources: Collection[str], systems: Collection[str]) -> dict[str, str]:
    """Each top folder of the templates that is a language's, with its language tag as the
    monitor writes it (``pt-br`` -> ``pt-BR``): one named with a language tag, and not like a
    system (a system's name wins)."""
    found = {}
    for folder in {name.split("/", 1)[0] for name in sources if "/" in name}:
        if folder in systems:
            continue
        try:
            found[folder] = check_language(folder)
        except ValueError:
            continue
    return found


def kind_of(name: str, languages: Collection[str] = ()) -> tuple[AnyKind | None, str | None]:
    """``acknowledge.j2`` -> (ACKNOWLEDGE, None); ``payment/update.j2`` -> (UPDATE, "payment");
    ``de/payment/update.j2`` -> (UPDATE, "payment") when ``de`` is one of ``languages``;
    ``maintenance.j2`` -> (NoticeKind.NOTICE, None)."""
    *folders, file = name.split("/")
    if folders and folders[0] in languages:
        folders.pop(0)
    stem = file.removesuffix(".j2")
    kind = next((k for k in KINDS if k.value == stem), None)
    return kind, ("/".join(folders) if folders else None)


class _SnapshotLoader(BaseLoader):
    """Templates as read when the composer was built."""

    def __init__(self, sources: Mapping[str, str], path: Callable[[str], str]) -> None:
        self._sources = sources
        self._path = path

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        if template not in self._sources:
            raise TemplateNotFound(template)
        return self._sources[template], self._path(template), lambda: True

    def list_templates(self) -> list[str]:
        return sorted(self._sources)
