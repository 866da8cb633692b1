"""Reading the templates: ``messages/<kind>.j2`` and the per-system overrides
``messages/<system>/<kind>.j2``, read once into a snapshot that Jinja loads from."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from jinja2 import BaseLoader, Environment, TemplateNotFound

from monitor.config import Problem
from monitor.model import MessageKind


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
        for path in sorted([*messages_dir.glob("*.j2"), *messages_dir.glob("*/*.j2")]):
            name = path.relative_to(messages_dir).as_posix()
            try:
                sources[name] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                unreadable.append(Problem(str(path), None, "", f"cannot read it: {exc}"))
    return Templates(messages_dir, sources, tuple(unreadable))


def kind_of(name: str) -> tuple[MessageKind | None, str | None]:
    """``acknowledge.j2`` -> (ACKNOWLEDGE, None); ``payment/update.j2`` -> (UPDATE, "payment")."""
    *owner, file = name.split("/")
    stem = file.removesuffix(".j2")
    kind = next((k for k in MessageKind if k.value == stem), None)
    return kind, (owner[0] if owner else None)


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
