-- Version 1: the tables and indexes of SQLite's 0001_initial (monitor 0.1.0's schema), in
-- PostgreSQL's SQL. Never edit a released migration: a database that ran it will not run it
-- again. Change the schema in a new file, the next number, in step with migrations/sqlite.
--
-- Where SQLite's differ: times are double precision (seconds since the epoch, as SQLite's REAL);
-- SQLite's rowid ids are identity columns, and the outbox gets one (seq) for the order in which
-- decisions were made, which SQLite reads from its rowid; incident ids come from the sequence
-- incident_ids, never reused (SQLite keeps a counters row for that, unused here); text keys
-- compare byte by byte (COLLATE "C"), as SQLite's do, whatever the database's own collation, so
-- pages by id come in the same order on both.
CREATE TABLE states (
    system text COLLATE "C" PRIMARY KEY, health text NOT NULL, since double precision,
    fail_streak integer NOT NULL, pass_streak integer NOT NULL, last_reason text NOT NULL,
    last_checked double precision);
CREATE TABLE transitions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, system text COLLATE "C" NOT NULL,
    at double precision NOT NULL, previous text NOT NULL, current text NOT NULL,
    reason text NOT NULL, streak integer NOT NULL);
CREATE INDEX transitions_system ON transitions (system, id);
CREATE TABLE results (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, system text COLLATE "C" NOT NULL,
    ok boolean NOT NULL, reason text NOT NULL, started_at double precision NOT NULL,
    duration double precision NOT NULL);
CREATE INDEX results_system ON results (system, id);
CREATE INDEX results_started ON results (started_at);
CREATE SEQUENCE incident_ids AS bigint;
CREATE TABLE incidents (
    id bigint PRIMARY KEY, opened_at double precision NOT NULL, resolved_at double precision,
    cause text NOT NULL, members text NOT NULL, note text NOT NULL, held boolean NOT NULL,
    notified_at double precision, last_update_at double precision, update_seq integer NOT NULL,
    pending_round text, resolution_told_at double precision);
CREATE INDEX incidents_resolved ON incidents (resolved_at);
CREATE TABLE timeline (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, incident_id bigint NOT NULL,
    at double precision NOT NULL, kind text NOT NULL, text text NOT NULL);
CREATE INDEX timeline_incident ON timeline (incident_id, id);
CREATE TABLE people (
    id text COLLATE "C" PRIMARY KEY, name text NOT NULL, email text, phone text, webhook text,
    systems text NOT NULL);
CREATE TABLE subscriptions (
    system text COLLATE "C" NOT NULL, person_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (system, person_id));
CREATE INDEX subscriptions_person ON subscriptions (person_id);
CREATE TABLE attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, system text COLLATE "C" NOT NULL,
    person_id text COLLATE "C" NOT NULL, action text NOT NULL, at double precision NOT NULL);
CREATE INDEX attempts_system_at ON attempts (system, at);
CREATE TABLE told (
    incident_id bigint NOT NULL, person_id text COLLATE "C" NOT NULL, systems text NOT NULL,
    PRIMARY KEY (incident_id, person_id));
CREATE TABLE outbox (
    key text COLLATE "C" PRIMARY KEY, incident_id bigint NOT NULL,
    person_id text COLLATE "C" NOT NULL, kind text NOT NULL, reason text NOT NULL,
    created_at double precision NOT NULL, subject text NOT NULL, text text NOT NULL, html text,
    sms text NOT NULL, channels text NOT NULL, status text NOT NULL, tries integer NOT NULL,
    next_try_at double precision NOT NULL, last_error text NOT NULL,
    sent_at double precision, sent_via text NOT NULL,
    seq bigint GENERATED ALWAYS AS IDENTITY);
-- seq last, as SQLite's index carries the rowid: delivery's due() reads the oldest due in
-- (next_try_at, seq) order straight off the index (32 ms a call at 20,000 pending without it).
CREATE INDEX outbox_due ON outbox (status, next_try_at, seq);
CREATE INDEX outbox_incident ON outbox (incident_id, person_id, status);
CREATE INDEX outbox_person ON outbox (person_id, created_at);
