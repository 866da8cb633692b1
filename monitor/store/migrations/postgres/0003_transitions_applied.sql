-- Version 3: transitions reach the incidents through the store, in step with
-- migrations/sqlite/0003_transitions_applied.sql (which says why). `applied` is set in the same
-- statement as the incident changes a chunk of transitions made, so a crash leaves both or
-- neither. Rows already here were applied by the monitor that saved them: the column is added
-- with true for them (a default given with the column is only recorded in the catalog, not
-- written to each row), then new rows default to unapplied. The partial index holds only the
-- unapplied rows, in the order they are applied (at, id).
ALTER TABLE transitions ADD COLUMN applied boolean NOT NULL DEFAULT true;
ALTER TABLE transitions ALTER COLUMN applied SET DEFAULT false;
CREATE INDEX transitions_unapplied ON transitions (at, id) WHERE NOT applied;
