-- Version 5: the outbox in shards, so that several replicas send from it at once without two
-- ever sending one message (docs/replicas.md, "Sending is shared"). Each message's shard comes
-- from its person's id (crc32 % 64, written when it is decided): a person's messages are all
-- in one shard, so one replica sends them, in order. A replica holds shards as it holds checks
-- (check_owners, named "outbox:NN"), and reads only its own shards' messages as due. Messages
-- decided before this version are in shard 0.
ALTER TABLE outbox ADD COLUMN shard integer NOT NULL DEFAULT 0;
