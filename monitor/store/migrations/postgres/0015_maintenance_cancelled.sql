-- Version 15: planned work cancelled. maintenance_notices.cancelled_at is when the leader began
-- telling the people told of an occurrence that it will not happen as announced (its window
-- removed or moved before it started), kept before the first of those messages is decided, so
-- that a cancellation a crash cut off is finished as one, never followed by the note that the
-- work is over. NULL: not cancelled.
ALTER TABLE maintenance_notices ADD COLUMN cancelled_at double precision;
