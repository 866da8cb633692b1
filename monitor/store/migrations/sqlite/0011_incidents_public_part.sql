-- Version 11: an incident's private part (its messages, who was told what, on-call's alert,
-- the goodwill offered, a promise no explanation was given for, the timeline entries of probe
-- results and counts of people) goes retention.max_age after the fix, as before; its public
-- part (the incident itself, on-call's notes and explanation) stays for the status page's
-- history (retention.history). private_pruned marks an incident whose private part is gone,
-- and the index holds only the others, so finding what to prune never walks the history.
-- The state changes are kept as long: the page reads today's at each request (by time), and
-- how each system was at a moment is one probe of (system, at), whatever the history kept.
ALTER TABLE incidents ADD COLUMN private_pruned INTEGER NOT NULL DEFAULT 0;
CREATE INDEX incidents_private_kept ON incidents (resolved_at, id)
    WHERE resolved_at IS NOT NULL AND NOT private_pruned;
CREATE INDEX transitions_at ON transitions (at);
CREATE INDEX transitions_system_at ON transitions (system, at, id);
