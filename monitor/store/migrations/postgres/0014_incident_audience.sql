-- Version 14: how many people an incident affected, counted when its fix was told (the
-- post-incident report's figure; counted again later it would use later subscriptions), and
-- how many of them had unsubscribed. NULL: not counted yet (open, or resolved before this).
ALTER TABLE incidents ADD COLUMN affected integer;
ALTER TABLE incidents ADD COLUMN affected_unsubscribed integer;
