-- Version 1: the schema of monitor 0.1.0, the first release, exactly as it made it (a file that
-- release made has no version recorded: it is recognised by these tables and stamped 1).
-- Never edit a released migration: a database that ran it will not run it again. Change the
-- schema in a new file, the next number.
CREATE TABLE states (
    system TEXT PRIMARY KEY, health TEXT NOT NULL, since REAL, fail_streak INTEGER NOT NULL,
    pass_streak INTEGER NOT NULL, last_reason TEXT NOT NULL, last_checked REAL);
CREATE TABLE transitions (
    id INTEGER PRIMARY KEY, system TEXT NOT NULL, at REAL NOT NULL, previous TEXT NOT NULL,
    current TEXT NOT NULL, reason TEXT NOT NULL, streak INTEGER NOT NULL);
CREATE INDEX transitions_system ON transitions (system, id);
CREATE TABLE results (
    id INTEGER PRIMARY KEY, system TEXT NOT NULL, ok INTEGER NOT NULL, reason TEXT NOT NULL,
    started_at REAL NOT NULL, duration REAL NOT NULL);
CREATE INDEX results_system ON results (system, id);
CREATE INDEX results_started ON results (started_at);
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY, opened_at REAL NOT NULL, resolved_at REAL, cause TEXT NOT NULL,
    members TEXT NOT NULL, note TEXT NOT NULL, held INTEGER NOT NULL, notified_at REAL,
    last_update_at REAL, update_seq INTEGER NOT NULL, pending_round TEXT,
    resolution_told_at REAL);
CREATE INDEX incidents_resolved ON incidents (resolved_at);
CREATE TABLE timeline (
    id INTEGER PRIMARY KEY, incident_id INTEGER NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL,
    text TEXT NOT NULL);
CREATE INDEX timeline_incident ON timeline (incident_id, id);
CREATE TABLE people (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT, phone TEXT, webhook TEXT,
    systems TEXT NOT NULL);
CREATE TABLE subscriptions (
    system TEXT NOT NULL, person_id TEXT NOT NULL, PRIMARY KEY (system, person_id))
    WITHOUT ROWID;
CREATE INDEX subscriptions_person ON subscriptions (person_id);
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY, system TEXT NOT NULL, person_id TEXT NOT NULL, action TEXT NOT NULL,
    at REAL NOT NULL);
CREATE INDEX attempts_system_at ON attempts (system, at);
CREATE TABLE told (
    incident_id INTEGER NOT NULL, person_id TEXT NOT NULL, systems TEXT NOT NULL,
    PRIMARY KEY (incident_id, person_id)) WITHOUT ROWID;
CREATE TABLE outbox (
    key TEXT PRIMARY KEY, incident_id INTEGER NOT NULL, person_id TEXT NOT NULL,
    kind TEXT NOT NULL, reason TEXT NOT NULL, created_at REAL NOT NULL, subject TEXT NOT NULL,
    text TEXT NOT NULL, html TEXT, sms TEXT NOT NULL, channels TEXT NOT NULL,
    status TEXT NOT NULL, tries INTEGER NOT NULL, next_try_at REAL NOT NULL,
    last_error TEXT NOT NULL, sent_at REAL, sent_via TEXT NOT NULL);
CREATE INDEX outbox_due ON outbox (status, next_try_at);
CREATE INDEX outbox_incident ON outbox (incident_id, person_id, status);
CREATE INDEX outbox_person ON outbox (person_id, created_at);
CREATE TABLE counters (
    name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
