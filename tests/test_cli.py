"""The ``monitor`` command as a user types it: validate, users import."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from process import REPO, run_cli

from monitor.cli import run_on_fastest_loop
from monitor.cli.parser import build_parser
from monitor.demo.mailcatcher import MailCatcher
from monitor.store import SQLiteStore


async def test_validate_on_the_shipped_checks_says_three_systems_no_problems() -> None:
    """`monitor validate` on the repository's checks/ and messages/ prints a one-line summary."""
    code, out, err = await run_cli("validate")
    assert (code, out.strip()) == (0, "3 systems, 0 problems"), err


async def test_validate_lists_every_problem_with_file_line_and_field(tmp_path: Path) -> None:
    """Two broken files: both problems are printed, each naming file, line and field."""
    checks = tmp_path / "checks"
    shutil.copytree(REPO / "checks", checks)
    (checks / "payment.yaml").write_text(
        (checks / "payment.yaml").read_text().replace("timeout: 5s", "timout: 5s")
    )
    (checks / "crm.yaml").write_text(
        (checks / "crm.yaml").read_text().replace("every: 30s", "every: 30 seconds")
    )
    code, _, err = await run_cli("validate", "--config", str(checks))
    assert code == 1
    lines = err.strip().splitlines()
    assert any(f"{checks}/payment.yaml:4: timout: unknown key 'timout'" in line for line in lines)
    assert any(f"{checks}/crm.yaml:3: every:" in line for line in lines)
    assert lines[-1] == "2 problems"


async def test_validate_reads_its_directories_from_the_environment(tmp_path: Path) -> None:
    """MONITOR_CONFIG points validate at another directory, no flag needed."""
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "only.yaml").write_text(
        "name: only\ntitle: Only\nprobe: {tcp: {host: 127.0.0.1, port: 9}}\n"
    )
    code, out, _ = await run_cli("validate", env={"MONITOR_CONFIG": str(checks)})
    assert (code, out.strip()) == (0, "1 system, 0 problems")


async def test_users_import_upserts_people_by_id(tmp_path: Path) -> None:
    """Importing twice updates a person instead of adding them again; systems split on ';'."""
    db = tmp_path / "monitor.db"
    first = tmp_path / "users.csv"
    first.write_text(
        "id,name,email,phone,systems\n"
        "u1,Alice Martin,alice@example.com,+447700900001,payment;login\n"
        "u2,Bob Stone,bob@example.com,,login\n"
    )
    code, out, err = await run_cli("users", "import", str(first), "--db", str(db))
    assert code == 0, err
    assert out.strip() == f"2 people imported into {db}"
    second = tmp_path / "again.csv"
    second.write_text("id,name,email,phone,systems\nu1,Alice M.,alice@new.example,,payment\n")
    code, _, err = await run_cli("users", "import", str(second), "--db", str(db))
    assert code == 0, err
    store = SQLiteStore(db)
    try:
        alice = await store.person("u1")
        assert alice is not None
        assert (alice.name, alice.email, alice.systems) == (
            "Alice M.",
            "alice@new.example",
            ("payment",),
        )
        assert [p.id async for page in store.subscriber_pages(["login"]) for p in page] == ["u2"]
    finally:
        await store.close()


MIXED_PEOPLE = (
    "id,name,email,phone,systems\n"
    "u1,Alice Martin,alice@example.com,+447700900001,payment;login\n"
    "u2,Bob Stone,a@b@c,,payment\n"
    "u3,Carol Vance,,,paymnet\n"
    "u4,Dan Ode,dan@example.com,+44 7700 900004,crm\n"
    "u1,Alice again,alice@new.example,,payment\n"
    "u5,Eve Adams,eve@example.com,,login\n"
)


def mixed_people_problems(path: Path) -> list[str]:
    """What `monitor users import` says of MIXED_PEOPLE, line by line."""
    return [
        f"{path}:3: email: 'a@b@c' is not an email address",
        f"{path}:4: systems: no system is named 'paymnet' (did you mean 'payment'?)",
        f"{path}:4: no email, phone or webhook: there would be no way to tell them",
        f"{path}:5: phone: '+44 7700 900004' is not a phone number in E.164 form"
        " (did you mean '+447700900004'?)",
        f"{path}:6: id: 'u1' is on line 2 already",
    ]


def names_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


async def people_in(db: Path) -> dict[str, tuple[str, str | None, tuple[str, ...]]]:
    """Everyone in the store: id -> (name, email, systems)."""
    store = SQLiteStore(db)
    try:
        found = await store.people_by_ids([f"u{n}" for n in range(10)])
        return {pid: (p.name, p.email, p.systems) for pid, p in sorted(found.items())}
    finally:
        await store.close()


async def test_users_import_reports_every_bad_row_at_once_and_imports_nothing(
    tmp_path: Path,
) -> None:
    """A file with bad rows is refused whole: each problem with its line and column (a broken
    email, an unknown system with the close one, nobody to tell, a phone not in E.164 form, an
    id given twice), and the store keeps only who was there before."""
    db = tmp_path / "monitor.db"
    before = tmp_path / "before.csv"
    before.write_text("id,name,email,phone,systems\nu9,Ida Lane,ida@example.com,,crm\n")
    assert (await run_cli("users", "import", str(before), "--db", str(db)))[0] == 0
    people = tmp_path / "people.csv"
    people.write_text(MIXED_PEOPLE)
    code, out, err = await run_cli("users", "import", str(people), "--db", str(db))
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        *mixed_people_problems(people),
        "5 problems in 4 rows of 6: nothing imported (--skip-invalid imports the other 2)",
    ]
    assert await people_in(db) == {"u9": ("Ida Lane", "ida@example.com", ("crm",))}


async def test_users_import_with_skip_invalid_imports_the_good_rows_and_lists_the_rest(
    tmp_path: Path,
) -> None:
    """--skip-invalid imports the valid rows, lists the others with their lines and says how
    many of each there were."""
    db = tmp_path / "monitor.db"
    people = tmp_path / "people.csv"
    people.write_text(MIXED_PEOPLE)
    code, out, err = await run_cli(
        "users", "import", str(people), "--skip-invalid", "--db", str(db)
    )
    assert code == 0, err
    assert out == f"2 people imported into {db}; 4 rows skipped (listed above)\n"
    assert err.splitlines() == mixed_people_problems(people)
    assert await people_in(db) == {
        "u1": ("Alice Martin", "alice@example.com", ("payment", "login")),
        "u5": ("Eve Adams", "eve@example.com", ("login",)),
    }


async def test_users_import_refuses_a_file_whose_columns_are_wrong(tmp_path: Path) -> None:
    """A misspelt or unknown column is named on line 1 (with the close one), with any missing
    one; nothing is imported even with --skip-invalid."""
    people = tmp_path / "people.csv"
    people.write_text("id,name,emial,phone,systems,team\nu1,Ann,a@example.com,,payment,ops\n")
    db = tmp_path / "monitor.db"
    code, _, err = await run_cli("users", "import", str(people), "--skip-invalid", "--db", str(db))
    assert code == 1
    assert err.splitlines() == [
        f"{people}:1: emial: no column is named 'emial' (did you mean 'email'?)",
        f"{people}:1: team: no column is named 'team'"
        " (there are: email, id, language, name, phone, systems, timezone, webhook)",
        f"{people}:1: missing column(s): email",
        "3 problems",
        "nothing imported",
    ]
    assert not db.exists()


async def test_users_import_stops_when_the_check_files_are_broken(tmp_path: Path) -> None:
    """People's systems are checked against the check files: broken ones are named and
    nothing is imported."""
    checks = tmp_path / "checks"
    shutil.copytree(REPO / "checks", checks)
    (checks / "crm.yaml").write_text("name: crm\ntitle: [unclosed\n")
    people = tmp_path / "people.csv"
    people.write_text("id,name,email,phone,systems\nu1,Ann,a@example.com,,payment\n")
    db = tmp_path / "monitor.db"
    code, _, err = await run_cli(
        "users", "import", str(people), "--config", str(checks), "--db", str(db)
    )
    assert code == 1
    lines = err.splitlines()
    assert lines[0].startswith(f"{checks}/crm.yaml:2: ")
    assert lines[-1] == (
        f"nothing imported: people's systems are checked against the check files in {checks},"
        " so those must be valid first"
    )
    assert not db.exists()


@pytest.mark.parametrize("command", [["run"], ["users", "import", "people.csv"]])
async def test_a_database_url_the_monitor_cannot_use_is_refused_without_its_password(
    tmp_path: Path, command: list[str]
) -> None:
    """`--db mysql://user:secret@host/db` is refused at start, in one line naming the forms
    that work, never quoting the password, and creates nothing."""
    (tmp_path / "people.csv").write_text("id,name,email,phone,systems\n")
    url = "mysql://monitor:s3cret@db.internal:3306/monitor"
    code, out, err = await run_cli(*command, "--db", url, cwd=tmp_path)
    assert (code, out) == (2, "")
    assert err == (
        "--db: mysql:// URLs are not supported: give a SQLite file path, like monitor.db"
        " or /var/lib/monitor/monitor.db, or a PostgreSQL URL, like"
        " postgresql://monitor@db:5432/monitor\n"
    )
    assert names_in(tmp_path) == ["people.csv"]


async def test_a_database_in_a_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    """MONITOR_DB in a missing folder is refused in one line naming the folder; the folder is
    not created behind the user's back."""
    db = tmp_path / "data" / "monitor.db"
    people = tmp_path / "people.csv"
    people.write_text("id,name,email,phone,systems\n")
    code, _, err = await run_cli("users", "import", str(people), env={"MONITOR_DB": str(db)})
    assert code == 2
    assert err == (
        f"MONITOR_DB: the folder {db.parent} does not exist: create it, or give a SQLite file"
        " path, like monitor.db or /var/lib/monitor/monitor.db\n"
    )
    assert not db.parent.exists()


async def test_validate_reports_check_files_and_templates_together(tmp_path: Path) -> None:
    """With a check file and a template both broken, validate lists the check file's problem and
    every undefined name of the template, says how the templates were checked, and counts
    them all; a check probing every second with no timeout is not a problem."""
    checks = tmp_path / "checks"
    shutil.copytree(REPO / "checks", checks)
    payment = checks / "payment.yaml"
    payment.write_text(payment.read_text().replace("timeout: 5s", "timout: 5s"))
    (checks / "fast.yaml").write_text(
        "name: fast\ntitle: Fast\nevery: 1s\nprobe: {tcp: {host: 127.0.0.1, port: 9}}\n"
    )
    messages = tmp_path / "messages"
    shutil.copytree(REPO / "messages", messages)
    template = messages / "payment" / "acknowledge.j2"
    template.parent.mkdir()
    template.write_text(
        '{% extends "acknowledge.j2" %}\n'
        "{% block subject %}Sorry {{ usr.first_name }}, {{ nickname }}{% endblock %}\n"
    )
    code, out, err = await run_cli("validate", "--config", str(checks), "--messages", str(messages))
    can_use = (
        "(a message can use user, incident, org, kind, reason, next_update, language, "
        "manage_url, unsubscribe_url)"
    )
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"{payment}:4: timout: unknown key 'timout' (did you mean 'timeout'?)",
        f"{template}:2: subject: undefined: 'usr' is undefined {can_use}",
        f"{template}:2: subject: undefined: 'nickname' is undefined {can_use}",
        "(the templates were checked with the 3 systems whose check files are valid and,"
        " by name only, payment)",
        "3 problems",
    ]


async def test_preview_renders_a_message_with_sample_data() -> None:
    """`monitor preview payment --kind resolved` prints a subject and a text naming the system."""
    code, out, err = await run_cli("preview", "payment", "--kind", "resolved")
    assert code == 0, err
    assert out.startswith("Subject: ")
    assert "fixed" in out.lower()


async def test_preview_with_a_broken_template_names_file_and_line(tmp_path: Path) -> None:
    """A template with an undefined variable makes preview say which file and line, no traceback."""
    messages = tmp_path / "messages"
    shutil.copytree(REPO / "messages", messages)
    ack = messages / "acknowledge.j2"
    ack.write_text(ack.read_text().replace("{{ hello }}", "{{ nickname }}", 1))
    code, _, err = await run_cli("preview", "payment", "--messages", str(messages))
    assert code == 1
    assert f"{messages}/acknowledge.j2:" in err
    assert "Traceback" not in err


def test_monitor_runs_on_uvloop_where_it_is_installed() -> None:
    async def running_loop() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_on_fastest_loop(running_loop()).startswith("uvloop")


# help, version and names everywhere --------------------------------------------------------------


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every subcommand's parser under it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _parsers(child)


def test_every_subcommand_option_and_argument_has_help() -> None:
    """`monitor ... --help` explains everything: no subcommand, option or argument of any
    command is left without help text."""
    missing = []
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                missing += [f"{parser.prog} {n}" for n in action.choices if n not in helped]
            elif not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


async def test_version_is_the_installed_packages() -> None:
    """`monitor --version` prints "monitor" and the version the package was built with."""
    with (REPO / "pyproject.toml").open("rb") as handle:
        version = tomllib.load(handle)["project"]["version"]
    code, out, err = await run_cli("--version")
    assert (code, out) == (0, f"monitor {version}\n"), err


async def test_preview_of_an_unknown_system_suggests_the_close_name() -> None:
    """`monitor preview paymnet` says "did you mean 'payment'?" and exits 1."""
    code, out, err = await run_cli("preview", "paymnet")
    assert (code, out) == (1, "")
    assert err == "no system is named 'paymnet' (did you mean 'payment'?)\n"


async def test_preview_speaks_of_what_the_system_is_for() -> None:
    """The sample acknowledgement of login is about signing in, of crm about the order history
    (its title), and neither mentions a purchase."""
    _, login, _ = await run_cli("preview", "login")
    _, crm, _ = await run_cli("preview", "crm", "--channel", "sms")
    assert login.startswith("Subject: Sorry — you couldn't sign in, and we're on it\n")
    assert "you couldn't use your customer account and order history just now" in crm
    assert "LinkedIn" not in login + crm


async def test_send_test_of_a_named_system_fits_it() -> None:
    """`monitor send-test --system login` sends login's sample: Alice could not sign in."""
    async with MailCatcher() as catcher:
        code, out, err = await run_cli(
            "send-test",
            "--to",
            "owner@example.org",
            "--system",
            "login",
            env={"MONITOR_SMTP_URL": catcher.url},
        )
    assert code == 0, err
    [caught] = catcher.messages
    assert caught.message["Subject"] == "[test] Sorry — you couldn't sign in, and we're on it"
    assert "It is the acknowledgement for Signing in to your account (login)" in out


async def test_send_test_of_an_unknown_system_suggests_the_close_name() -> None:
    """`monitor send-test --system logn` sends nothing and says "did you mean 'login'?"."""
    async with MailCatcher() as catcher:
        code, _, err = await run_cli(
            "send-test",
            "--to",
            "owner@example.org",
            "--system",
            "logn",
            env={"MONITOR_SMTP_URL": catcher.url},
        )
    assert code == 1
    assert err == "no system is named 'logn' (did you mean 'login'?)\n"
    assert catcher.messages == []
