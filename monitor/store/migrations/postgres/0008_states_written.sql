-- Version 8: each system's state row says which transaction wrote it last (written, from
-- pg_current_xact_id()), so a replica reads back only the states that changed since its last
-- read, not every system's every heartbeat (docs/replicas.md). Rows written before this
-- version have 0: the first read of each replica reads everything anyway.
ALTER TABLE states ADD COLUMN written xid8 NOT NULL DEFAULT '0';
