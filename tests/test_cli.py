"""The ``monitor`` command as a user types it: validate, users import."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from process import REPO, run_cli

from monitor.cli import run_on_fastest_loop
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
        alice = store.person("u1")
        assert alice is not None
        assert (alice.name, alice.email, alice.systems) == (
            "Alice M.",
            "alice@new.example",
            ("payment",),
        )
        assert [p.id for p in store.people_for_systems(["login"])] == ["u2"]
    finally:
        store.close()


async def test_users_import_names_the_line_of_a_bad_row(tmp_path: Path) -> None:
    """A row with a broken email address is refused with the file, line and column."""
    bad = tmp_path / "users.csv"
    bad.write_text(
        "id,name,email,phone,systems\nu1,A,a@example.com,,payment\nu2,B,not-an-email,,x\n"
    )
    code, _, err = await run_cli("users", "import", str(bad), "--db", str(tmp_path / "m.db"))
    assert code == 1
    assert f"{bad}:3: email: 'not-an-email' is not an email address" in err


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
