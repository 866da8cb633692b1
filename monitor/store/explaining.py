"""The SQL of incidents' explanations and promises, the same for every backend (written with
``:name`` parameters; PostgreSQL's backend turns them into its own with ``postgres_params``).

Each change is one statement, so that the database decides a race: a replacement posted to
one replica while the leader starts the fan-out, or two replicas taking one reminder.
"""

from __future__ import annotations

import re

EXPLANATION_COLUMNS = "incident_id, text, explained_at, told_at, promised_at, kept_at, reminded_at"
PROMISE_OPEN = "promised_at IS NOT NULL AND kept_at IS NULL"

# Replaced only until messages carrying it were decided: then it changes no row.
EXPLAIN = (
    "INSERT INTO explanations (incident_id, text, explained_at) VALUES (:id, :text, :now) "
    "ON CONFLICT (incident_id) DO UPDATE SET text = excluded.text, "
    "explained_at = excluded.explained_at WHERE explanations.told_at IS NULL "
    f"RETURNING {EXPLANATION_COLUMNS}"
)
# An explanation given before any promise goes into the resolved messages (final from now);
# otherwise a promise is made, or the one made before stands. Every SET reads the old row.
SETTLE_FOR_RESOLUTION = (
    "INSERT INTO explanations (incident_id, text, promised_at) VALUES (:id, '', :now) "
    "ON CONFLICT (incident_id) DO UPDATE SET "
    "told_at = CASE WHEN explanations.text <> '' AND explanations.promised_at IS NULL "
    "THEN COALESCE(explanations.told_at, excluded.promised_at) ELSE explanations.told_at END, "
    "promised_at = CASE WHEN explanations.text = '' OR explanations.promised_at IS NOT NULL "
    "THEN COALESCE(explanations.promised_at, excluded.promised_at) ELSE NULL END "
    f"RETURNING {EXPLANATION_COLUMNS}"
)
START_EXPLAINING = (
    "UPDATE explanations SET told_at = COALESCE(told_at, :now) "
    f"WHERE incident_id = :id AND text <> '' RETURNING {EXPLANATION_COLUMNS}"
)
KEEP_PROMISE = "UPDATE explanations SET kept_at = COALESCE(kept_at, :now) WHERE incident_id = :id"
TAKE_REMINDER = (
    f"UPDATE explanations SET reminded_at = :now WHERE incident_id = :id AND {PROMISE_OPEN} "
    "AND (reminded_at IS NULL OR reminded_at <= :last)"
)

_PARAM = re.compile(r"(?<!:):([a-z]+)\b")


def postgres_params(sql: str) -> str:
    """``sql`` with psycopg's ``%(name)s`` for each ``:name``."""
    return _PARAM.sub(r"%(\1)s", sql)
