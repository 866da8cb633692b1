"""The reference in docs/ keeps up with the code: every configuration key, metric and route."""

from __future__ import annotations

import argparse
import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

from monitor.cli.parser import build_parser
from monitor.config import MonitorSettings, SystemConfig
from monitor.metrics import Metrics, ReplicaFigures
from monitor.model import Health, ProbeResult, SystemState
from monitor.web.api import ROUTES
from monitor.web.openapi import openapi_document

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
ROW = re.compile(r"^\| `([^`]+)` \|(.*)$", re.MULTILINE)  # a table row naming a key or metric
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _models_in(annotation: Any) -> Iterator[tuple[type[BaseModel], str]]:
    """The models a field's annotation holds, each with what its path adds (``[]`` in a list)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        yield from _models_in(get_args(annotation)[0])
    elif origin is Union or origin is types.UnionType:
        for option in get_args(annotation):
            yield from _models_in(option)
    elif origin is list:
        for model, suffix in _models_in(get_args(annotation)[0]):
            yield model, f"[]{suffix}"
    elif origin is dict:
        yield from _models_in(get_args(annotation)[1])
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, ""


def schema_keys(
    model: type[BaseModel], prefix: str = "", documented: set[type[BaseModel]] | None = None
) -> Iterator[str]:
    """Every key a file may write for ``model``, dotted (``probe.steps[].url``), by the name the
    file uses. A model met again (``probe.steps[].expect``) yields only its own path when
    ``documented`` collects the models already walked: its keys are documented once."""
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or name}"
        yield key
        for nested, suffix in _models_in(info.annotation):
            if documented is not None:
                if nested in documented:
                    continue
                documented.add(nested)
            yield from schema_keys(nested, f"{key}{suffix}.", documented)


def section(text: str, heading: str) -> str:
    """The part of a page under ``## heading``, up to the next ``## ``."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def documented_rows(text: str) -> dict[str, str]:
    return {name: rest for name, rest in ROW.findall(text)}


def test_every_check_file_and_monitor_yaml_key_is_in_the_configuration_reference() -> None:
    """Each key of the check-file and monitor.yaml models, nested ones included, has a row in
    its section of docs/configuration.md, and each row names a key that exists."""
    page = (DOCS / "configuration.md").read_text()
    sections = ((SystemConfig, "Check files"), (MonitorSettings, "`monitor.yaml`: global settings"))
    for model, heading in sections:
        rows = documented_rows(section(page, heading))
        needed = set(schema_keys(model, documented=set()))
        assert sorted(needed - set(rows)) == [], f"undocumented in {heading}"
        assert sorted(set(rows) - set(schema_keys(model))) == [], f"no such key in {heading}"


async def test_every_metric_registered_is_in_the_metrics_reference_with_its_labels() -> None:
    """Each metric a Metrics() registry serves has a row in docs/metrics.md naming each of
    its labels, and each row names a metric that exists."""

    async def none() -> int:
        return 0

    async def store_up() -> bool:
        return True

    metrics = Metrics()
    metrics.observe_present(
        lambda: {"payment": SystemState("payment", Health.UP)}, none, none, store_up
    )
    metrics.observe_replica(lambda: ReplicaFigures(live=1, owned=1, leading=True, claimed=0))
    # A sample of each labelled series, so that its labels can be read off.
    metrics.record_probe(ProbeResult("payment", True, "status 200", 0.0, 0.01), 0.0)
    metrics.messages.labels(channel="email", kind="acknowledge", outcome="sent")
    page = list(text_string_to_metric_families((await metrics.page()).decode()))
    # Read back from the page, prometheus_client's ``_created`` beside each counter is a family.
    counters = {family.name for family in page if family.type == "counter"}
    families: list[Metric] = [
        f for f in page if not (f.name.endswith("_created") and f.name[:-8] in counters)
    ]
    rows = documented_rows((DOCS / "metrics.md").read_text())
    served = {}
    for family in families:
        name = f"{family.name}_total" if family.type == "counter" else family.name
        served[name] = {label for s in family.samples for label in s.labels} - {"le"}
    assert sorted(set(served) - set(rows)) == [], "undocumented metrics"
    assert sorted(set(rows) - set(served)) == [], "documented metrics that do not exist"
    for name, labels in served.items():
        for label in labels:
            assert f"`{label}`" in rows[name], f"{name}: label {label} undocumented"


def test_every_http_route_is_in_the_http_api_reference() -> None:
    """Each method and path of the OpenAPI document (API routes, health, metrics, the page)
    is named in docs/http-api.md."""
    page = (DOCS / "http-api.md").read_text()
    document = openapi_document(ROUTES)
    routes = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
    ]
    assert routes
    assert [route for route in routes if f"`{route}`" not in page] == []


def test_links_in_the_readme_and_docs_lead_to_files_in_the_repository() -> None:
    """Every relative link of README.md and docs/*.md opens a file of the repository, so a
    fresh clone has everything the README points at."""
    pages = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.exists() or not resolved.is_relative_to(REPO):
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert broken == []


def _commands(
    parser: argparse.ArgumentParser, path: str = "monitor"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Each command and subcommand (``monitor incident note``) with its parser."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{path} {name}")


def test_every_command_and_option_is_in_the_cli_reference() -> None:
    """docs/cli.md names every subcommand (``monitor incident note``) and every option of
    each (``--skip-invalid``), so a command added without its documentation fails here."""
    text = (DOCS / "cli.md").read_text()
    missing = []
    for path, parser in _commands(build_parser()):
        if path != "monitor" and path not in text:
            missing.append(path)
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help" and option not in text:
                    missing.append(f"{path} {option}")
    assert missing == [], f"not in docs/cli.md: {missing}"
