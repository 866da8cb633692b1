"""The parts of monitor.config on their own: parsing text, reading one file, wording a refusal,
checking across files (test_config.py checks them together, through load_config)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from monitor.config.dependencies import Declared, dependency_cycles, unknown_dependencies
from monitor.config.documents import read_document
from monitor.config.parsing import Unreadable, parse
from monitor.config.problems import Problem, reason
from monitor.config.schema import SystemConfig

CHECK = """\
name: payment
title: Online payments
probe:
  http:
    url: ${PAYMENT_URL}
    headers:
      Authorization: Bearer ${PAYMENT_TOKEN}
"""


def system(name: str, depends_on: list[str]) -> SystemConfig:
    return SystemConfig.model_validate(
        {
            "name": name,
            "title": name.title(),
            "depends_on": depends_on,
            "probe": {"tcp": {"host": "localhost", "port": 443}},
        }
    )


def test_text_yaml_cannot_parse_is_unreadable_at_its_line_and_key_in_plain_words() -> None:
    """Parsing needs no file: a tab in the indentation is named by line, dotted key and fix."""
    with pytest.raises(Unreadable) as unreadable:
        parse("name: payment\nprobe:\n  http:\n\turl: https://pay.example.com\n")
    assert unreadable.value.line == 4
    assert unreadable.value.field == "probe.http.url"
    assert unreadable.value.message == (
        "not valid YAML: this line has a tab; indent with spaces, not tabs"
    )


def test_a_document_keeps_each_key_s_line_and_each_value_as_written(tmp_path: Path) -> None:
    """A read file has the environment's values, the text as written, and a line for every key."""
    path = tmp_path / "payment.yaml"
    path.write_text(CHECK, encoding="utf-8")
    problems: list[Problem] = []
    env = {"PAYMENT_URL": "https://pay.example.com", "PAYMENT_TOKEN": "s3cret"}
    doc = read_document(path, env, problems, empty_ok=False)
    assert doc is not None
    assert problems == []
    assert doc.data["probe"]["http"]["url"] == "https://pay.example.com"
    assert doc.texts[("probe", "http", "url")] == "${PAYMENT_URL}"
    assert doc.line_of(("probe", "http", "headers", "Authorization")) == 7
    assert doc.line_of(("probe", "http", "expect")) == 4  # not written: where it would go


def test_an_unset_variable_is_a_problem_at_its_line_and_the_value_is_marked(
    tmp_path: Path,
) -> None:
    """A ${NAME} with no value and no default is one problem on its line, never guessed."""
    path = tmp_path / "payment.yaml"
    path.write_text(CHECK, encoding="utf-8")
    problems: list[Problem] = []
    doc = read_document(path, {"PAYMENT_URL": "https://pay.example.com"}, problems, empty_ok=False)
    assert doc is not None
    assert doc.unset == [("probe", "http", "headers", "Authorization")]
    assert [str(p) for p in problems] == [
        f"{path}:7: probe.http.headers.Authorization: environment variable PAYMENT_TOKEN is not"
        " set (or write ${PAYMENT_TOKEN:-default} to give a default)"
    ]


@pytest.mark.parametrize(
    ("written", "key", "said"),
    [
        ("15", "every", "15 needs a unit, like 15s or 15m"),
        ("15s", "evry", "unknown key 'evry' (did you mean 'every'?)"),
    ],
)
def test_a_schema_refusal_is_worded_with_the_value_as_the_file_writes_it(
    written: str, key: str, said: str
) -> None:
    """The reason for a pydantic error quotes the file's text and offers the key meant."""
    data = system("payment", []).model_dump(by_alias=True, exclude_defaults=True)
    data[key] = int(written) if written.isdigit() else written
    with pytest.raises(ValidationError) as refused:
        SystemConfig.model_validate(data)
    [error] = refused.value.errors(include_url=False)
    assert reason(SystemConfig, (key,), error, written) == said


def test_the_checks_across_files_need_only_what_each_file_declared() -> None:
    """An unknown name and a cycle are found from each file's small record, at its entry's line."""
    checks = [
        Declared("checks/crm.yaml", 1, ((0, "paymnet", 5),)),
        Declared("checks/login.yaml", 1, ((0, "payment", 6),)),
        Declared("checks/payment.yaml", 1, ((0, "login", 7),)),
    ]
    systems = {"login": system("login", ["payment"]), "payment": system("payment", ["login"])}
    declared = {"login": checks[1], "payment": checks[2]}
    assert [str(p) for p in unknown_dependencies(checks, {"crm", *systems})] == [
        "checks/crm.yaml:5: depends_on[0]: no system is named 'paymnet' (did you mean 'payment'?)"
    ]
    assert [str(p) for p in dependency_cycles(systems, declared)] == [
        "checks/login.yaml:6: depends_on: forms a cycle: login -> payment -> login"
    ]
