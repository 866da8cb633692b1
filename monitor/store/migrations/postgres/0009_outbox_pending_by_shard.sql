-- Version 9: each outbox shard's pending messages in the order they are due, so that a replica
-- reads its own shards' due messages without walking past the other replicas' (docs/replicas.md,
-- "Sending is shared"). Only pending messages are in it: it stays as small as the backlog.
CREATE INDEX outbox_pending_by_shard ON outbox (shard, next_try_at, seq) WHERE status = 'pending';
