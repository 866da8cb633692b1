-- Version 3: transitions reach the incidents through the store. With several replicas the one
-- that probes a system is often not the one that correlates, so the notifier reads the
-- transitions every replica saved instead of taking them from its own process's memory.
-- `applied` says the notifier has applied a transition to the incidents. It is set in the same
-- commit as the incident changes the transition made (save_incidents), so a crash leaves a
-- chunk of transitions applied with its incidents, or neither: nothing is lost, nothing applied
-- twice (an older monitor could die between saving a transition and applying it).
-- New rows are saved unapplied (the default, so a row written without the column is correlated
-- rather than skipped). Rows already here were applied by the monitor that saved them, which
-- did so in memory, so they count as applied: an upgrade re-opens no incident. (What such a
-- monitor cut off by dying is still found from the saved states, monitor/notify/resume.py.)
-- The partial index holds only the unapplied rows, in the order they are applied (at, id): the
-- notifier's read at each tick touches those few, never the week of history kept for uptime,
-- and a mass outage's thousands are read a chunk at a time straight off it.
ALTER TABLE transitions ADD COLUMN applied INTEGER NOT NULL DEFAULT 0;
UPDATE transitions SET applied = 1;
CREATE INDEX transitions_unapplied ON transitions (at, id) WHERE NOT applied;
