"""Check files: what loads, and exactly what a person is told when a file is wrong."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import (
    SETTINGS_FILE,
    Config,
    ConfigError,
    MonitorSettings,
    SystemConfig,
    dependency_closure,
    load_config,
)

HERE = Path(__file__).parent
SHIPPED = HERE.parent / "checks"
BAD_CHECKS = HERE / "bad_checks"
CASES = sorted(p.name for p in BAD_CHECKS.iterdir() if p.is_dir())

PAYMENT = """\
name: payment
title: Online payments
every: 15s
timeout: 5s
probe:
  http:
    url: https://pay.example.com/healthz
"""


def write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def problems_of(directory: Path | str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load_config(directory, environ={} if environ is None else environ)
    return [str(problem) for problem in refused.value.problems]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_check_directory_is_refused_with_exactly_the_expected_messages(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each corpus case is refused, listing every problem in file and line order as written."""
    monkeypatch.chdir(BAD_CHECKS / case)
    expected = Path("expected.txt").read_text(encoding="utf-8").splitlines()
    assert problems_of(".") == expected


@pytest.mark.parametrize("case", CASES)
def test_every_problem_in_the_corpus_names_its_file_and_line(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused file is always named with the line to look at, so no one has to search for it."""
    monkeypatch.chdir(BAD_CHECKS / case)
    with pytest.raises(ConfigError) as refused:
        load_config(".", environ={})
    for problem in refused.value.problems:
        assert Path(problem.file).is_file()
        assert problem.line is not None


def test_the_corpus_covers_at_least_eighteen_kinds_of_mistake() -> None:
    """The corpus keeps its breadth: at least eighteen cases, each with its expected messages."""
    assert len(CASES) >= 18
    assert all((BAD_CHECKS / case / "expected.txt").is_file() for case in CASES)


def test_the_shipped_checks_load_with_the_environment_defaults() -> None:
    """checks/ as shipped loads with no environment: payment and login depend on crm."""
    config = load_config(SHIPPED, environ={})
    assert sorted(config.systems) == ["crm", "login", "payment"]
    assert config.systems["payment"].probe.http is not None
    assert config.systems["payment"].probe.http.url == "http://127.0.0.1:8081/healthz"
    assert config.systems["login"].probe.steps is not None
    assert config.systems["login"].probe.steps[0].url == "http://127.0.0.1:8082/login"
    assert config.systems["crm"].probe.tcp is not None
    assert config.systems["crm"].probe.tcp.port == 8083
    assert config.systems["payment"].depends_on == ["crm"]
    assert config.settings.org.name == "Example Ltd"
    assert config.files["crm"] == str(SHIPPED / "crm.yaml")


def test_environment_values_replace_names_and_defaults_fill_only_unset_ones(
    tmp_path: Path,
) -> None:
    """``${NAME}`` takes the environment's value; ``${NAME:-default}`` the default only if unset."""
    write(
        tmp_path,
        {
            "payment.yaml": PAYMENT.replace("https://pay.example.com", "${PAY_URL}")
            + "    headers: {Authorization: 'Bearer ${TOKEN:-none}', X-Env: '${STAGE:-dev}'}\n"
        },
    )
    config = load_config(tmp_path, environ={"PAY_URL": "https://pay.test", "STAGE": "prod"})
    http = config.systems["payment"].probe.http
    assert http is not None
    assert http.url == "https://pay.test/healthz"
    assert http.headers == {"Authorization": "Bearer none", "X-Env": "prod"}


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("500ms", 0.5), ("15s", 15.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0)],
)
def test_durations_are_read_in_each_unit(tmp_path: Path, written: str, seconds: float) -> None:
    """``every`` accepts milliseconds, seconds, minutes, hours and days."""
    text = PAYMENT.replace("every: 15s", f"every: {written}").replace("timeout: 5s", "timeout: 1ms")
    write(tmp_path, {"payment.yaml": text})
    assert load_config(tmp_path, environ={}).systems["payment"].every == seconds


@pytest.mark.parametrize(("every", "timeout"), [("1s", 1.0), ("3s", 3.0), ("5s", 5.0), ("1m", 5.0)])
def test_without_a_timeout_a_probe_waits_5s_or_every_whichever_is_shorter(
    tmp_path: Path, every: str, timeout: float
) -> None:
    """A check that does not write ``timeout`` is not refused for a default longer than
    ``every``: its probe waits 5s, or ``every`` when that is shorter."""
    text = PAYMENT.replace("every: 15s", f"every: {every}").replace("timeout: 5s\n", "")
    write(tmp_path, {"payment.yaml": text})
    assert load_config(tmp_path, environ={}).systems["payment"].timeout == timeout


def test_a_timeout_written_longer_than_every_is_still_refused_at_its_line(tmp_path: Path) -> None:
    """A ``timeout`` the file does write, longer than ``every``, is refused where it is written."""
    text = PAYMENT.replace("every: 15s", "every: 1s").replace("timeout: 5s", "timeout: 2s")
    write(tmp_path, {"payment.yaml": text})
    assert problems_of(tmp_path) == [
        f"{tmp_path / 'payment.yaml'}:4: timeout: must not be longer than every (1s):"
        " a probe must end before the next one starts"
    ]


def test_a_refused_configuration_still_says_what_loaded_and_which_systems_it_refused(
    tmp_path: Path,
) -> None:
    """ConfigError carries the valid systems and the names of the refused ones, so checks that
    can go on without the rest (validate's templates) still run."""
    write(
        tmp_path,
        {
            "crm.yaml": "name: crm\ntitle: CRM\nprobe: {tcp: {host: crm, port: 0}}\n",
            "login.yaml": "name: login\ntitle: [unclosed\n",
            "payment.yaml": PAYMENT,
        },
    )
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path, environ={})
    assert refused.value.loaded is not None
    assert sorted(refused.value.loaded.systems) == ["payment"]
    assert refused.value.refused == {"crm", "login"}


def test_dependency_closure_follows_a_chain_of_depends_on(tmp_path: Path) -> None:
    """A system depends on what its dependencies depend on, and nothing depends on itself."""
    files = {
        f"{name}.yaml": PAYMENT.replace("name: payment", f"name: {name}")
        + (f"depends_on: [{', '.join(deps)}]\n" if deps else "")
        for name, deps in {"shop": ["payment"], "payment": ["crm"], "crm": [], "mail": []}.items()
    }
    systems = load_config(write(tmp_path, files), environ={}).systems
    assert dependency_closure(systems, "shop") == {"payment", "crm"}
    assert dependency_closure(systems, "payment") == {"crm"}
    assert dependency_closure(systems, "crm") == set()
    assert dependency_closure(systems, "unknown") == set()


def test_an_empty_settings_file_means_the_defaults(tmp_path: Path) -> None:
    """A monitor.yaml holding only comments is accepted and gives the default settings."""
    write(tmp_path, {SETTINGS_FILE: "# all defaults\n", "payment.yaml": PAYMENT})
    assert load_config(tmp_path, environ={}).settings == MonitorSettings()


def test_a_missing_directory_is_refused_by_name(tmp_path: Path) -> None:
    """Pointing at a directory that does not exist is a ConfigError naming it."""
    assert problems_of(tmp_path / "nope") == [f"{tmp_path / 'nope'}: no such config directory"]


def test_a_problem_in_a_file_is_named_by_its_path_as_given(tmp_path: Path) -> None:
    """Problems carry the path the directory was given with, so a relative load reads relative."""
    write(tmp_path, {"payment.yaml": PAYMENT.replace("every: 15s", "every: 15")})
    assert problems_of(tmp_path) == [
        f"{tmp_path / 'payment.yaml'}:3: every: 15 needs a unit, like 15s or 15m"
    ]


def test_a_dependency_on_a_refused_file_is_not_also_called_unknown(tmp_path: Path) -> None:
    """When crm.yaml is broken, payment's ``depends_on: [crm]`` is not a second problem."""
    write(
        tmp_path,
        {
            "crm.yaml": "name: crm\ntitle: CRM\nprobe: {tcp: {host: crm, port: 0}}\n",
            "payment.yaml": PAYMENT + "depends_on: [crm]\n",
        },
    )
    assert [line.split(": ", 1)[0] for line in problems_of(tmp_path)] == [
        f"{tmp_path / 'crm.yaml'}:3"
    ]


# Pieces of check files, so generated text is often almost valid and reaches deep code paths.
TOKENS = [
    "name: payment\n",
    "title: Pay\n",
    "probe:\n",
    "  http:\n",
    "    url: https://x.test\n",
    "  tcp: {host: h, port: 1}\n",
    "  steps:\n",
    "    - url: /a\n",
    "every: 15s\n",
    "timeout: 1m\n",
    "depends_on: [payment]\n",
    "expect: {status: [99]}\n",
    "${UNSET}",
    "${X:-1}",
    "&a ",
    "*a",
    "<<: ",
    "? ",
    "- ",
    ": ",
    "  ",
    "\t",
    "\n",
    "---\n",
    "!!binary ",
    "!!python/object ",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!timestamp ",
    "!!set ",
    "!!omap ",
    "!!pairs ",
    "!!str ",
    "\x00",
    "0700123456",
    "yes",
    "null",
    "{",
    "}",
    "[",
    "]",
    "'",
    '"',
    "#",
    "|\n",
    ",",
]
yamlish_text = st.lists(
    st.sampled_from(TOKENS) | st.text(st.characters(codec="utf-8"), max_size=4), max_size=30
).map("".join)

KEYS = [
    "name",
    "title",
    "every",
    "timeout",
    "fail_after",
    "depends_on",
    "probe",
    "http",
    "tcp",
    "steps",
    "url",
    "port",
    "expect",
    "status",
    "json",
    "org",
    "customer_messages",
]
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10) | st.dates()
)
nested_data: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=25,
)
ALMOST_VALID: dict[str, Any] = yaml.safe_load(PAYMENT)
check_data = nested_data | nested_data.map(
    lambda extra: {**ALMOST_VALID, **extra} if isinstance(extra, dict) else extra
)


def load_one_file(name: str, text: str) -> Config | ConfigError:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_text(text, encoding="utf-8")
        try:
            return load_config(directory, environ={"X": "2"})
        except ConfigError as refused:
            outcome = refused
    assert outcome.problems
    for problem in outcome.problems:
        assert problem.file == str(path)
        assert str(problem).startswith(f"{path}")
    return outcome


@settings(deadline=None, max_examples=300)
@given(name=st.sampled_from(["payment.yaml", SETTINGS_FILE]), text=yamlish_text)
def test_any_text_in_a_file_gives_a_config_or_problems_naming_that_file(
    name: str, text: str
) -> None:
    """Whatever a file holds, loading ends in a Config or a ConfigError about that file."""
    load_one_file(name, text)


@settings(deadline=None, max_examples=300)
@given(name=st.sampled_from(["payment.yaml", SETTINGS_FILE]), data=check_data)
def test_any_yaml_data_in_a_file_gives_a_config_or_problems_naming_that_file(
    name: str, data: Any
) -> None:
    """Whatever YAML values a file holds, loading ends in a Config or a ConfigError about it."""
    outcome = load_one_file(name, yaml.safe_dump(data, allow_unicode=True))
    if isinstance(outcome, Config) and name != SETTINGS_FILE:
        assert [type(system) for system in outcome.systems.values()] == [SystemConfig]
