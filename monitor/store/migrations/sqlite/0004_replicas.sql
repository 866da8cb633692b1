-- Version 4: several replicas on one database (docs/replicas.md).
-- replicas: each says it is alive every heartbeat (seen_at, its own clock), with the checks its
-- files declare (systems, a JSON list, rewritten only when its digest changes), so every replica
-- can tell who probes what without asking. A replica not seen for the takeover time is dead.
-- host and pid: a replica restarted under its name on the same host sees at once that the
-- process it replaces is gone, rather than waiting to see whether its heartbeats go on.
-- check_owners: the one replica probing each check (NULL: nobody yet). A replica takes a check
-- only when it is free, already its own, or held by a dead replica, in one statement, so two
-- never hold it at once; a replica hands a check over by naming the next holder.
-- leader: the one replica that correlates, decides and sends, until `until` unless renewed.
CREATE TABLE replicas (
    name text PRIMARY KEY, started_at REAL NOT NULL,
    seen_at REAL NOT NULL, digest text NOT NULL, systems text NOT NULL,
    host text NOT NULL, pid integer NOT NULL);
CREATE TABLE check_owners (
    system text PRIMARY KEY, replica text,
    since REAL NOT NULL);
CREATE INDEX check_owners_replica ON check_owners (replica);
CREATE TABLE leader (
    only_row integer PRIMARY KEY CHECK (only_row = 1), replica text NOT NULL,
    since REAL NOT NULL, until REAL NOT NULL);
