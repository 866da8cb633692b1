"""``StateLog`` on PostgreSQL: each system's state, its transitions, the probe results."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from monitor.model import Health, ProbeResult, SystemState, Transition
from monitor.store.postgres.connection import Database
from monitor.store.postgres.rows import columns

_STATE_COLUMNS = "system, health, since, fail_streak, pass_streak, last_reason, last_checked"
# Each row says which transaction wrote it last (``written``), so a replica can read back only
# what changed since its last read (``states_changed``).
_STATES = (
    "SELECT *, pg_current_xact_id() FROM unnest(%b::text[], %b::text[], %b::float8[], "
    "%b::int[], %b::int[], %b::text[], %b::float8[])"
)
_UPSERT_STATES = (
    f"INSERT INTO states ({_STATE_COLUMNS}, written) {_STATES} ON CONFLICT (system) DO UPDATE "
    "SET health = excluded.health, since = excluded.since, fail_streak = excluded.fail_streak, "
    "pass_streak = excluded.pass_streak, last_reason = excluded.last_reason, "
    "last_checked = excluded.last_checked, written = excluded.written"
)
# The transitions (unapplied: the notifier reads them back) and the states after them, in one
# statement: atomic without BEGIN/COMMIT.
_SAVE_TRANSITIONS = (
    "WITH saved AS (INSERT INTO transitions "
    "(system, at, previous, current, reason, streak, applied) "
    "SELECT *, false FROM unnest(%b::text[], %b::float8[], %b::text[], %b::text[], %b::text[], "
    f"%b::int[])) {_UPSERT_STATES}"
)
# The same for a replica (``holder``): only the systems it holds. Their rows in check_owners are
# locked for the statement (FOR SHARE), so a replica taking one over waits for it, or it sees
# the new holder and writes nothing of that system: a replica that lost a check never writes
# over the state its new holder carries on from.
_HELD = (
    "held AS (SELECT system FROM check_owners WHERE replica = %b AND system = ANY(%b::text[]) "
    "FOR SHARE)"
)
_SAVE_HELD_TRANSITIONS = (
    f"WITH {_HELD}, saved AS (INSERT INTO transitions "
    "(system, at, previous, current, reason, streak, applied) "
    "SELECT *, false FROM unnest(%b::text[], %b::float8[], %b::text[], %b::text[], %b::text[], "
    "%b::int[]) AS t (system) WHERE t.system IN (SELECT system FROM held)) "
    f"INSERT INTO states ({_STATE_COLUMNS}, written) {_STATES} AS s (system) "
    "WHERE s.system IN (SELECT system FROM held) "
    + _UPSERT_STATES[_UPSERT_STATES.index("ON CONFLICT") :]
)
_SAVE_HELD_STATES = (
    f"WITH {_HELD} INSERT INTO states ({_STATE_COLUMNS}, written) {_STATES} AS s (system) "
    "WHERE s.system IN (SELECT system FROM held) "
    + _UPSERT_STATES[_UPSERT_STATES.index("ON CONFLICT") :]
)

# Each system's results but its newest ``keep``; the ids are gathered into an array first so
# the delete finds them by primary key whatever the planner thinks of the batch's size.
_PRUNE_KEPT = (
    "DELETE FROM results WHERE id = ANY(ARRAY(SELECT old.id FROM unnest(%s::text[]) AS s "
    "(system) CROSS JOIN LATERAL (SELECT id FROM results WHERE results.system = s.system "
    "ORDER BY id DESC OFFSET %s) AS old))"
)
# Each system's transitions older than a moment but the newest of them (it says what the
# system's health was then). An unapplied one stays: the incidents have not seen it yet.
_PRUNE_TRANSITIONS = (
    "DELETE FROM transitions WHERE applied AND id = ANY(ARRAY(SELECT old.id FROM "
    "unnest(%s::text[]) AS s (system) CROSS JOIN LATERAL (SELECT id FROM transitions AS t "
    "WHERE t.system = s.system AND t.id < (SELECT max(id) FROM transitions AS last "
    "WHERE last.system = s.system AND last.at < %s)) AS old))"
)

# The mark is the oldest transaction still running when the read's snapshot was taken: every
# row written by a transaction before it is visible to the read, and one written later has
# ``written`` at or after it, so the next read (``written >= mark``) finds it. Rows of
# transactions still running are read again next time; nothing is missed, whatever order
# transactions commit in. One statement, so the mark and the rows share one snapshot; the
# LEFT JOIN gives the mark when no row changed.
_STATES_CHANGED = (
    f"SELECT {', '.join(f's.{c}' for c in _STATE_COLUMNS.split(', '))}, "
    "pg_snapshot_xmin(pg_current_snapshot())::text FROM (SELECT 1) AS one "
    "LEFT JOIN states AS s ON s.written >= %s::xid8"
)
_STATES_WITH_MARK = _STATES_CHANGED.replace("s.written >= %s::xid8", "true")


_HEALTH = {health.value: health for health in Health}  # a lookup: 100,000 rows of history


class States:
    """Each system's state (so a restart carries on), its transitions, the probe results."""

    db: Database

    async def load_states(self) -> dict[str, SystemState]:
        rows = await self.db.rows(f"SELECT {_STATE_COLUMNS} FROM states")
        return {row[0]: _state(row) for row in rows}

    async def states_changed(self, since: int | None) -> tuple[dict[str, SystemState], int | None]:
        if since is None:
            rows = await self.db.rows(_STATES_WITH_MARK)
        else:
            rows = await self.db.rows(_STATES_CHANGED, (str(since),))
        return {row[0]: _state(row) for row in rows if row[0] is not None}, int(rows[0][-1])

    async def save_transition(self, transition: Transition, state: SystemState) -> None:
        await self.save_transitions([(transition, state)])

    async def save_transitions(
        self, saved: Sequence[tuple[Transition, SystemState]], holder: str | None = None
    ) -> None:
        if not saved:
            return
        made = columns(
            (
                (t.system, t.at, t.previous.value, t.current.value, t.reason, t.streak)
                for t, _ in saved
            ),
            6,
        )
        states = _state_columns(s for _, s in saved)
        if holder is None:
            await self.db.run(_SAVE_TRANSITIONS, [*made, *states])
        else:
            systems = sorted({t.system for t, _ in saved})
            await self.db.run(_SAVE_HELD_TRANSITIONS, [holder, systems, *made, *states])

    async def save_states(self, states: Iterable[SystemState], holder: str | None = None) -> None:
        values = _state_columns(states)
        if not values[0]:
            return
        if holder is None:
            await self.db.run(_UPSERT_STATES, values)
        else:
            await self.db.run(_SAVE_HELD_STATES, [holder, sorted(set(values[0])), *values])

    async def record_results(self, results: Sequence[ProbeResult]) -> None:
        if not results:
            return
        await self.db.run(
            "INSERT INTO results (system, ok, reason, started_at, duration) SELECT * FROM "
            "unnest(%b::text[], %b::bool[], %b::text[], %b::float8[], %b::float8[])",
            columns(((r.system, r.ok, r.reason, r.started_at, r.duration) for r in results), 5),
        )

    async def prune_results(self, older_than: float, keep_per_system: int) -> int:
        """Delete results older than ``older_than`` and all but the newest ``keep_per_system``."""
        deleted = 0
        while batch := await self.prune_aged(older_than):
            deleted += batch
        deleted += await self.prune_systems(await self.result_systems(), keep_per_system)
        return deleted

    async def prune_aged(self, older_than: float, batch: int = 5000) -> int:
        return await self.db.run(
            "DELETE FROM results WHERE id IN (SELECT id FROM results WHERE started_at < %s "
            "ORDER BY started_at LIMIT %s)",
            (older_than, batch),
        )

    async def result_systems(self) -> list[str]:
        return [str(system) for (system,) in await self.db.rows(_distinct("results"))]

    async def prune_systems(self, systems: Sequence[str], keep: int) -> int:
        # One statement for the batch, each system read backwards by its index: one delete a
        # system was 10,000 round trips a minute at 10,000 checks, a sixth of a replica's CPU.
        return await self.db.run(_PRUNE_KEPT, (list(systems), keep))

    async def transition_systems(self) -> list[str]:
        return [str(system) for (system,) in await self.db.rows(_distinct("transitions"))]

    async def prune_transitions(self, systems: Sequence[str], older_than: float) -> int:
        return await self.db.run(_PRUNE_TRANSITIONS, (list(systems), older_than))

    async def unapplied_transitions(self, limit: int) -> list[tuple[int, Transition]]:
        rows = await self.db.rows(
            "SELECT id, system, at, previous, current, reason, streak FROM transitions "
            "WHERE NOT applied ORDER BY at, id LIMIT %s",
            (limit,),
        )
        return [
            (id_, Transition(system, at, Health(previous), Health(current), reason, streak))
            for id_, system, at, previous, current, reason, streak in rows
        ]

    async def recent_results(self, system: str, limit: int = 100) -> list[ProbeResult]:
        rows = await self.db.rows(
            "SELECT system, ok, reason, started_at, duration FROM results WHERE system = %s "
            "ORDER BY id DESC LIMIT %s",
            (system, limit),
        )
        return [ProbeResult(*row) for row in rows]

    async def transitions(self, system: str | None = None, limit: int = 100) -> list[Transition]:
        where, params = ("WHERE system = %s", [system]) if system else ("", [])
        rows = await self.db.rows(
            "SELECT system, at, previous, current, reason, streak FROM transitions "
            f"{where} ORDER BY id DESC LIMIT %s",
            [*params, limit],
        )
        return [
            Transition(name, at, Health(previous), Health(current), reason, streak)
            for name, at, previous, current, reason, streak in reversed(rows)
        ]

    async def health_history(
        self, since: float, until: float | None = None
    ) -> dict[str, list[tuple[float, Health]]]:
        """Each system's health from ``since`` on (to ``until``): ``[(at, health), ...]`` in
        time order, the first ``(since, health then)`` when a transition before ``since`` says
        it."""
        history: dict[str, list[tuple[float, Health]]] = {}
        # Each system (every one with a transition has a state row) finds its last transition
        # at ``since`` by one probe of its (system, at) index, instead of reading all the
        # history the status page keeps (90 days).
        for system, current in await self.db.rows(
            "SELECT states.system, then_.current FROM states CROSS JOIN LATERAL (SELECT current "
            "FROM transitions WHERE transitions.system = states.system AND at <= %s "
            "ORDER BY at DESC, id DESC LIMIT 1) AS then_",
            (since,),
        ):
            history[system] = [(since, _HEALTH[current])]
        for system, changes in (await self.health_changes(since, until)).items():
            history.setdefault(system, []).extend(changes)
        return history

    async def health_changes(
        self, since: float, until: float | None = None
    ) -> dict[str, list[tuple[float, Health]]]:
        changes: dict[str, list[tuple[float, Health]]] = {}
        bounds, params = ("AND at <= %s", (since, until)) if until is not None else ("", (since,))
        for system, at, current in await self.db.rows(
            f"SELECT system, at, current FROM transitions WHERE at > %s {bounds} ORDER BY at, id",
            params,
        ):
            changes.setdefault(system, []).append((at, _HEALTH[current]))
        return changes


def _distinct(table: str) -> str:
    """The systems of ``table``, skipping along its (system, id) index: one index probe a
    system, where SELECT DISTINCT would read every row of a big table."""
    return (
        "WITH RECURSIVE found AS ("
        f"(SELECT system FROM {table} ORDER BY system LIMIT 1) UNION ALL "
        f"SELECT (SELECT system FROM {table} WHERE system > found.system ORDER BY system "
        "LIMIT 1) FROM found WHERE found.system IS NOT NULL) "
        "SELECT system FROM found WHERE system IS NOT NULL"
    )


def _state_columns(states: Iterable[SystemState]) -> list[list[object]]:
    # One row a system, its last state: the upsert may not touch a row twice in one statement.
    last = {s.system: s for s in states}
    return columns(
        (
            (
                s.system,
                s.health.value,
                s.since,
                s.fail_streak,
                s.pass_streak,
                s.last_reason,
                s.last_checked,
            )
            for s in last.values()
        ),
        7,
    )


def _state(row: tuple[Any, ...]) -> SystemState:
    system, health, since, fails, passes, reason, checked = row[:7]
    return SystemState(system, Health(health), since, fails, passes, reason, checked)
