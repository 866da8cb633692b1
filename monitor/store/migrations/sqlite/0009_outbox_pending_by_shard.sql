-- Version 9: nothing changes in a SQLite file. On PostgreSQL this version indexes each outbox
-- shard's pending messages, for replicas that each read only their own shards' (a SQLite file
-- has one process sending, which reads them all). The file keeps the backends' versions in step.
SELECT 1;
