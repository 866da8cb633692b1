"""A config directory -> ``Config``, or ``ConfigError`` listing every problem of every file.

Each file is read, then validated against its model (``monitor.yaml`` against the settings,
every other ``*.yaml`` against a system, each of ``maintenance/*.yaml`` against a maintenance
window); the checks across files come last. A file that cannot
be read or parsed still lets the others be checked, so one run shows everything to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from monitor.config.dependencies import Declared, dependency_cycles, unknown_dependencies
from monitor.config.documents import Document, read_document
from monitor.config.problems import ConfigError, Problem, dotted, reason
from monitor.config.schema import (
    SETTINGS_FILE,
    Config,
    FieldFault,
    KeyPath,
    MonitorSettings,
    NamedMaintenanceWindow,
    SystemConfig,
)
from monitor.config.windows import (
    Written,
    settings_as_written,
    window_documents,
    window_problems,
)

_SETTINGS_FILES = (SETTINGS_FILE, "monitor.yml")
M = TypeVar("M", bound=BaseModel)


def load_config(directory: str | Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read every ``*.yaml`` in ``directory``; raise ConfigError listing all problems.

    Problems come sorted by file, then line; a file that cannot be read or parsed still lets
    the others be checked, so one run shows everything to fix.
    """
    directory = Path(directory)
    env = os.environ if environ is None else environ
    problems: list[Problem] = []
    if not directory.is_dir():
        raise ConfigError([Problem(str(directory), None, "", "no such config directory")])

    settings = MonitorSettings()
    settings_doc: Document | None = None
    systems: dict[str, SystemConfig] = {}
    files: dict[str, str] = {}
    # Only what the checks across files need is kept of each file, not its whole document:
    # with 10,000 files, holding them all doubled the memory a load took.
    declared: dict[str, Declared] = {}
    refused: set[str] = set()  # names of systems whose file has problems: not "unknown"
    checks: list[Declared] = []
    shared: dict[object, object] = {}
    paths = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for path in paths:
        is_settings = path.name in _SETTINGS_FILES
        doc = read_document(path, env, problems, empty_ok=is_settings)
        if doc is None:
            if not is_settings:
                refused |= _names_guessed(path)
            continue
        if is_settings:
            settings_as_written(doc)
            loaded = _validate(MonitorSettings, doc, problems)
            if loaded is not None:
                settings, settings_doc = loaded, doc
            continue
        checks.append(Declared.of(doc))
        system = _validate(SystemConfig, doc, problems)
        if system is not None:
            _share_equal_parts(system, shared)
        if system is None:
            if isinstance(doc.data.get("name"), str):
                refused.add(doc.data["name"])
            continue
        if system.name in systems:
            first = declared[system.name]
            problems.append(
                Problem(
                    doc.file,
                    doc.line_of(("name",)),
                    "name",
                    f"duplicate name {system.name!r}:"
                    f" {first.file}:{first.name_line} uses it already",
                )
            )
            continue
        systems[system.name] = system
        files[system.name] = doc.file
        declared[system.name] = checks[-1]

    problems.extend(unknown_dependencies(checks, set(systems) | refused))
    problems.extend(dependency_cycles(systems, declared))
    written = [
        Written(window, settings_doc, ("maintenance", index))
        for index, window in enumerate(settings.maintenance)
        if settings_doc is not None
    ]
    for doc in window_documents(directory, env, problems):
        window = _validate(NamedMaintenanceWindow, doc, problems)
        if window is not None:
            written.append(Written(window, doc))
    problems.extend(window_problems(written, set(systems), refused))
    config = Config(
        settings=settings,
        systems=systems,
        files=files,
        maintenance=tuple(w.window for w in written),
        maintenance_files={w.window.name: w.doc.file for w in written},
    )
    if problems:
        problems.sort(key=lambda p: (p.file, p.line or 0))
        raise ConfigError(problems, config, refused - set(systems))
    return config


def _names_guessed(path: Path) -> set[str]:
    """The name a file that cannot be parsed probably declares, so no one is told it is unknown."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    return {path.stem, *re.findall(r"^name:[ \t]*[\"']?([a-z0-9-]+)", text, re.MULTILINE)}


def _validate(model: type[M], doc: Document, problems: list[Problem]) -> M | None:
    """``doc`` as a ``model``, or None with a problem for each field it refuses."""
    try:
        loaded = model.model_validate(doc.data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc: KeyPath = tuple(error["loc"])
            cause = (error.get("ctx") or {}).get("error")
            if isinstance(cause, FieldFault):
                loc = (*loc, *cause.at)
            if any(loc[: len(gap)] == gap for gap in doc.unset):
                continue  # already reported: the environment variable is not set
            problems.append(
                Problem(
                    doc.file,
                    doc.line_of(loc),
                    dotted(loc),
                    reason(model, loc, error, doc.texts.get(loc)),
                )
            )
        return None
    return None if doc.unset else loaded


def _share_equal_parts(model: BaseModel, shared: dict[object, object]) -> None:
    """Make equal parts of different systems' configs one object.

    Most systems share their expectations (status 200) and each pydantic model keeps the set
    of fields it was given: about 2 KB a system, 20 MB with 10,000 systems, that sharing saves.
    The models are frozen and the sets are copied before pydantic changes them (model_copy),
    so a shared part is never changed through one of its users.
    """
    given = model.__pydantic_fields_set__
    object.__setattr__(model, "__pydantic_fields_set__", shared.setdefault(frozenset(given), given))
    for name, value in model.__dict__.items():
        if isinstance(value, BaseModel):
            _share_equal_parts(value, shared)
            # The repr names the type and every field's value, nested models' too.
            model.__dict__[name] = shared.setdefault(repr(value), value)
