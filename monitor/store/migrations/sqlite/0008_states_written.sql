-- Version 8: nothing changes in a SQLite file. On PostgreSQL this version marks each state row
-- with the transaction that wrote it, so that a replica reads back only the states that
-- changed since its last read; a SQLite file is read in-process on one machine, where reading
-- every state costs little. The file keeps the two backends' versions in step.
SELECT 1;
