"""Everything fails at once (the sidecar's own network goes, and every check with it): one
incident, a handful of notices for on-call, one message per affected person."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from clock import FakeClock

from monitor.config import MonitorSettings, Org
from monitor.incidents.correlation import Change, Correlator, Incident
from monitor.model import Health, Person, SystemInfo, SystemState, Transition
from monitor.notify.composer import Composer
from monitor.notify.notifier import Notifier
from monitor.notify.oncall import Notice, describe
from monitor.store import SQLiteStore

MESSAGES = Path(__file__).resolve().parent.parent / "messages"
APPS = [f"app-{n}" for n in range(3000)]
CAROL = Person("carol", "Carol King", "carol@example.com", None, None, ("crm",))


def down(system: str, at: float) -> tuple[Transition, SystemState]:
    return (
        Transition(system, at, Health.UP, Health.DOWN, "connection refused", 3),
        SystemState(system, Health.DOWN, at, 3, 0, "connection refused", at),
    )


def up(system: str, at: float) -> tuple[Transition, SystemState]:
    return (
        Transition(system, at, Health.DOWN, Health.UP, "status 200", 3),
        SystemState(system, Health.UP, at, 0, 3, "status 200", at),
    )


async def test_thousands_of_systems_failing_at_once_are_one_incident_told_once(
    tmp_path: Path,
) -> None:
    """3,000 apps and the crm they all depend on go DOWN in the same second: one incident with
    all of them, crm named its cause, every failure on its timeline; on-call gets two notices,
    the opening one naming crm and one counting the 3,000 that joined, not one per system;
    crm's customer gets one acknowledgement and, once everything is back, one follow-up."""
    settings = MonitorSettings(org=Org(name="Example Ltd"))
    info = {name: SystemInfo(name, f"App {name[4:]}") for name in APPS}
    info["crm"] = SystemInfo("crm", "Your order history", "Your orders are safe.")
    titles = {name: system.title for name, system in info.items()}
    store = SQLiteStore(tmp_path / "monitor.db")
    await store.upsert_people([CAROL])
    clock = FakeClock()
    notifier = Notifier(
        store=store,
        composer=Composer(MESSAGES, settings.org, info),
        settings=settings,
        systems=info,
        correlator=Correlator(dict.fromkeys(APPS, ("crm",)) | {"crm": ()}, 300.0),
        clock=clock,
    )
    notices: list[tuple[Change, int, Notice | None]] = []

    async def tell_oncall(incident: Incident, what: Change, systems: Sequence[str]) -> None:
        notice = describe(incident, what, systems, titles, None, 60.0, False)
        notices.append((what, len(systems), notice))

    notifier.on_incident.append(tell_oncall)
    # Saved as the monitor saves them, one turn of the event loop's in one commit; the
    # notifier reads them from the store.
    await store.save_transitions([down(name, clock.now()) for name in [*APPS, "crm"]])
    await notifier.tick()

    [incident] = await store.incidents()
    assert len(incident.members) == 3001
    assert incident.cause == "crm"
    assert len(await store.timeline(incident.id)) == 3001
    opened, joined = notices
    assert opened[0] is Change.OPENED
    assert opened[2] is not None
    assert opened[2].title == "Incident 1 opened: Your order history is down"
    assert joined[:2] == (Change.JOINED, 3000)
    assert joined[2] is not None
    assert joined[2].title == "Incident 1: 3,000 systems joined"
    assert "Likely cause: Your order history." in joined[2].body
    assert "and 2,991 more" in joined[2].body

    clock.advance(61)
    await notifier.tick()
    told = await store.outbox_items(incident.id)
    assert [(item.person_id, item.kind) for item in told] == [("carol", "acknowledge")]
    assert "Your order history" in told[0].text

    clock.advance(600)
    await store.save_transitions([up(name, clock.now()) for name in ["crm", *APPS]])
    await notifier.tick()
    [incident] = await store.incidents()
    assert incident.resolved_at == clock.now()
    assert [n.title for what, _, n in notices if what is Change.RESOLVED and n] == [
        "Incident 1 resolved after 11 minutes"
    ]
    told = await store.outbox_items(incident.id)
    assert [(item.person_id, item.kind) for item in told] == [
        ("carol", "acknowledge"),
        ("carol", "resolved"),
    ]
    await store.close()
