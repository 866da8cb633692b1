"""Planned work that changes after it was announced, in the running monitor (two real Apps on
one SQLite file, a fake clock, real SMTP: ``test_maintenance_app``'s stage). A window removed or
moved before it starts is told cancelled, once, to those told of it (each in their language,
at their clock); removed once under way, the note that it is over goes when its systems work,
and none while one is down; someone subscribing after the notice is told of it once; a window's
own grace decides when a failure inside it is told; an API window the monitor can no longer
read is listed as unusable, cancels nothing, and can be removed."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from running import Replica
from test_maintenance_app import END, PUBLIC, REF, START, WINDOW, Stage, flat, stage

from monitor.store import SQLiteStore

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
EVERYONE_TOLD = ["alice@example.com", "dana@example.com", "hanna@example.com"]


def reload(on: Stage, window: str | None) -> None:
    """checks/maintenance/db.yaml written as ``window`` (None: removed), and reloaded by both."""
    path = on.leader.app.options.config / "maintenance" / "db.yaml"
    if window is None:
        path.unlink()
    else:
        path.write_text(textwrap.dedent(window))
    for replica in (on.leader, on.other):
        assert replica.app.reload() == []


def ids(on: Stage, kind: str) -> set[str]:
    """The Message-IDs of the mails caught of ``kind`` (``.cancelled.``)."""
    return {
        m.message["Message-ID"]
        for m in on.catcher.messages
        if f".{kind}." in m.message["Message-ID"]
    }


async def test_work_removed_before_it_starts_is_told_cancelled_once_to_each_person_told(
    tmp_path: Path,
) -> None:
    """Its window file removed the day before, each person told of the work hears once that it
    will not happen as announced (Alice in English at UTC, Hanna in German at Berlin time),
    whichever replica ticks; Dana, who unsubscribed since, and Bob, never told, hear nothing; no
    note says it is over, even when the same window comes back at the same time."""
    async with stage(tmp_path) as on:
        await on.at(START - 86400)
        await on.sent(3)
        await on.leader.app.store.unsubscribe("dana", "dana@example.com", on.clock.now())
        reload(on, None)
        await on.at(START - 43200)
        await on.tick(on.other)  # a second replica leading for a moment decides nothing again
        await on.sent(5)
        cancelled = on.mail("cancelled")
        assert sorted(cancelled) == ["alice@example.com", "hanna@example.com"]
        alice, hanna = cancelled["alice@example.com"], cancelled["hanna@example.com"]
        assert alice.message["Message-ID"] == f"<maintenance-{REF}.cancelled.alice@example.com>"
        assert alice.subject == "Cancelled: the planned work on Online payments"
        assert (
            "I wrote to you about planned work on Online payments tomorrow from 1:00 AM UTC to "
            "3:00 AM UTC. It won't happen as announced" in flat(alice.text)
        )
        assert "you don't need to do anything" in flat(alice.text)
        assert hanna.subject == "Abgesagt: die geplanten Arbeiten an Online payments"
        assert (
            "die geplanten Arbeiten an Online payments morgen von 02:00 Uhr bis 04:00 Uhr, über "
            "die ich Ihnen geschrieben habe, finden nicht wie angekündigt statt" in flat(hanna.text)
        )
        reload(on, WINDOW)  # put back as it was: its people were told it is off
        await on.at(START - 43000)
        await on.at(END + 86400)
        assert len(await on.quiet()) == 5
        assert on.mail("over") == {}


async def test_a_window_gone_from_the_leaders_files_only_is_not_told_cancelled_until_all_agree(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """During a rolling update the leader's files lack a window the other replica's still have:
    nobody is told it is cancelled (the leader says why, once); once the other's files lack it
    too, everyone told hears it, once."""
    async with stage(tmp_path) as on:
        await on.at(START - 86400)
        await on.sent(3)
        (on.leader.app.options.config / "maintenance" / "db.yaml").unlink()
        assert on.leader.app.reload() == []  # the other replica still has the window
        # Heartbeats a few seconds apart, as they are: both replicas stay alive.
        for seconds in (10, 20, 30):
            await on.at(START - 86400 + seconds)
        assert len(await on.quiet()) == 3
        waiting = [r for r in caplog.records if "replicas' files differ" in r.getMessage()]
        assert len(waiting) == 1
        assert on.other.app.reload() == []
        for seconds in (40, 50):
            await on.at(START - 86400 + seconds)
        await on.sent(6)
        assert sorted(on.mail("cancelled")) == EVERYONE_TOLD


async def test_a_cancellation_a_crash_cut_off_is_finished_as_one_once_the_work_would_have_begun(
    tmp_path: Path,
) -> None:
    """A cancellation begun before the start (recorded, no message decided yet) and resumed
    after it still tells everyone the work is cancelled, never that it is over."""
    async with stage(tmp_path) as on:
        await on.at(START - 86400)
        await on.sent(3)
        [record] = await on.leader.app.store.maintenance_notices()
        await on.leader.app.store.mark_maintenance_notice(record.id, cancelled_at=START - 60)
        reload(on, None)
        await on.at(START + 600)
        await on.sent(6)
        assert sorted(on.mail("cancelled")) == EVERYONE_TOLD
        await on.at(END + 60)
        assert len(await on.quiet()) == 6


async def test_a_window_moved_to_another_time_is_cancelled_for_the_old_and_told_for_the_new(
    tmp_path: Path,
) -> None:
    """Moved a week on after its notice went: everyone told hears the old time is cancelled,
    nothing at the old time's end, and the notice of the new time a day before it."""
    async with stage(tmp_path) as on:
        await on.at(START - 86400)
        await on.sent(3)
        reload(on, WINDOW.replace("2027-01-17", "2027-01-24"))
        await on.at(START - 43200)
        await on.sent(6)
        assert ids(on, "cancelled") == {
            f"<maintenance-{REF}.cancelled.{who}>" for who in EVERYONE_TOLD
        }
        await on.at(END + 60)
        assert len(await on.quiet()) == 6
        await on.at(START + 6 * 86400)
        await on.sent(9)
        assert ids(on, "notice") - {
            f"<maintenance-{REF}.notice.{who}>" for who in EVERYONE_TOLD
        } == {f"<maintenance-db-upgrade-202701240100.notice.{who}>" for who in EVERYONE_TOLD}


async def test_work_removed_under_way_while_its_system_is_down_is_an_incident_told_as_usual(
    tmp_path: Path,
) -> None:
    """Payment failing inside the window tells nobody; the window removed while it is down,
    the failure is an incident like any other (everyone acknowledged, then the fix), and no
    note says the work is over."""
    async with stage(tmp_path) as on:
        await on.at(START - 86400)
        await on.sent(3)
        on.clock.time = START + 600
        await on.results("payment", False, 3)
        await on.at(START + 1800)
        assert len(await on.quiet()) == 3
        reload(on, None)
        await on.at(START + 1860)
        await on.sent(6)
        assert sorted(on.mail("acknowledge")) == EVERYONE_TOLD
        await on.results("payment", True, 2)
        await on.tick()
        await on.sent(9)
        assert sorted(on.mail("resolved")) == EVERYONE_TOLD
        await on.at(END + 86400)
        assert len(await on.quiet()) == 9
        assert on.mail("over") == {}
        assert on.mail("cancelled") == {}


async def test_someone_who_subscribes_after_the_notice_is_told_of_the_work_once(
    tmp_path: Path,
) -> None:
    """A visitor confirming a subscription on the replica that does not lead, after the notice
    went, gets the notice at once, and never again: not when the link is taken by the other
    replica too, nor at the next tick, nor when the fan-out runs again; Bob, adding payment
    through his manage link, gets it too; both hear it is over with the others."""
    async with stage(tmp_path, links=True) as on:
        await on.at(START - 86400)
        await on.sent(3)
        asked = await on.other.client.post(
            "/subscribe", data=b"email=new%40example.org&system=Online+payments", headers=FORM
        )
        assert asked.status == 200
        [confirmation] = [m for m in await on.sent(4) if "new@example.org" in m.rcpt_tos]
        found = re.search(rf"{re.escape(PUBLIC)}/subscribe/confirm/\S+", confirmation.text)
        assert found is not None, confirmation.text
        confirm = urlsplit(found.group()).path
        on.clock.time = START - 3600
        assert (await on.other.client.post(confirm, data=b"", headers=FORM)).status == 200
        await on.sent(5)
        [notice] = [m for m in on.catcher.messages if ".notice.sub-" in m.message["Message-ID"]]
        assert list(notice.rcpt_tos) == ["new@example.org"]
        assert notice.message["Message-ID"].startswith(f"<maintenance-{REF}.notice.sub-")
        assert "today from 1:00 AM UTC to 3:00 AM UTC" in flat(notice.text)
        assert "We are moving the payment database to a faster server." in flat(notice.text)

        assert (await on.leader.client.post(confirm, data=b"", headers=FORM)).status == 200
        await on.tick()
        await rerun_the_fan_out(on.leader)
        assert len(await on.quiet()) == 5

        links = on.leader.app.links.links
        assert links is not None
        manage = urlsplit(links.manage_url("bob")).path + "/manage"  # his messages' link
        services = b"system=Online+payments&system=Signing+in+to+your+account"
        assert (await on.other.client.post(manage, data=services, headers=FORM)).status == 200
        await on.sent(6)
        assert on.mail("notice")["bob@example.com"].message["Message-ID"] == (
            f"<maintenance-{REF}.notice.bob@example.com>"
        )
        await on.at(END)
        await on.sent(11)
        assert sorted(on.mail("over")) == sorted(
            [*EVERYONE_TOLD, "bob@example.com", "new@example.org"]
        )


async def rerun_the_fan_out(replica: Replica) -> None:
    """The occurrence's notices decided again for every subscriber, as after a crash before the
    fan-out was recorded as done."""
    notifier = replica.app.notifier
    [record] = await replica.app.store.maintenance_notices()
    [occurrence] = (await notifier.read_schedule()).between(START, START + 1)
    assert await notifier.planned._notify(occurrence, record.id, notifier.clock.now())


async def test_a_windows_own_grace_decides_when_a_failure_inside_it_is_told(
    tmp_path: Path,
) -> None:
    """With `grace: 1h`, a failure inside the window is still in maintenance 15 minutes after
    its end (monitor.yaml's grace) and a second before the hour; at the hour everyone is
    acknowledged. On-call's notice and GET say the window's own grace."""
    async with stage(tmp_path, window=WINDOW.rstrip(" ") + "    grace: 1h\n") as on:
        listed = await (await on.other.client.get("/api/v1/maintenance")).json()
        assert (listed["windows"][0]["grace"], listed["grace"]) == (3600.0, 900.0)
        await on.at(START - 86400)
        await on.sent(3)
        on.clock.time = START + 600
        await on.results("payment", False, 3)
        opened = [n for n in await on.notices() if "opened" in n["title"]]
        assert "still down 1 hour after the window" in opened[0]["message"]
        await on.at(END + 900)
        await on.at(END + 3599)
        assert len(await on.quiet()) == 3
        await on.at(END + 3600)
        await on.sent(6)
        assert sorted(on.mail("acknowledge")) == EVERYONE_TOLD


async def test_an_api_window_the_monitor_cannot_read_is_listed_cancels_nothing_and_is_removed(
    tmp_path: Path,
) -> None:
    """An announced API window whose stored settings this monitor cannot read (a zone tzdata no
    longer has) is listed as unusable with why, and tells nobody it is cancelled; removed by its
    id, those told hear it is cancelled. A long lead and grace read back as posted."""
    async with stage(tmp_path, window=None) as on:
        start = datetime(2027, 1, 16, 10, tzinfo=UTC).timestamp()
        body = {
            "systems": ["login"],
            "start": "2027-01-16T10:00:00Z",
            "end": "2027-01-16T11:00:00Z",
            "note": "We are updating the sign-in service.",
            "notify_before": "13d",
            "grace": "45m",
        }
        posted = await on.other.call("POST", "/api/v1/maintenance", body)
        assert posted.status == 201, await posted.text()
        [window] = (await (await on.leader.client.get("/api/v1/maintenance")).json())["windows"]
        assert (window["notify_before"], window["grace"], window["unusable"]) == (
            13 * 86400.0,
            2700.0,
            None,
        )
        await on.at(start - 3600)
        await on.sent(2)

        store = on.leader.app.store
        assert isinstance(store, SQLiteStore)
        gone_zone = json.dumps({**body, "timezone": "Mars/Olympus"})
        with store.db.conn:  # as an older version might have stored it
            store.db.conn.execute("UPDATE maintenance_windows SET spec = ?", (gone_zone,))
        listed = await (await on.other.client.get("/api/v1/maintenance")).json()
        [unusable] = listed["windows"]
        assert (unusable["id"], unusable["systems"], unusable["next"]) == ("1", ["login"], None)
        assert unusable["unusable"].startswith("timezone: no time zone is named 'Mars/Olympus'")
        assert (await on.other.client.get("/metrics")).status == 200
        assert (await on.other.client.get("/")).status == 200
        await on.at(start - 1800)
        assert len(await on.quiet()) == 2  # not cancelled: the window is still there

        removed = await on.leader.call("DELETE", "/api/v1/maintenance/1")
        assert removed.status == 200, await removed.text()
        assert (await removed.json())["window"]["unusable"] == unusable["unusable"]
        assert (await (await on.other.client.get("/api/v1/maintenance")).json())["windows"] == []
        await on.at(start - 1700)
        await on.sent(4)
        assert sorted(on.mail("cancelled")) == ["bob@example.com", "dana@example.com"]
