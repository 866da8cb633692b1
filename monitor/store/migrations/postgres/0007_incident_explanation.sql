-- Version 7: an incident's explanation (what happened, and what changes so it does not happen
-- again) and the promise to give one, a row an incident that has either. The promise is made
-- when a resolved message goes out without the explanation (promised_at) and kept once every
-- explanation message is decided (kept_at); told_at is when messages carrying the text began
-- to be decided, after which it cannot be replaced; reminded_at is on-call's last reminder,
-- here so that replicas remind once between them.
CREATE TABLE explanations (
    incident_id bigint PRIMARY KEY, text text NOT NULL, explained_at double precision,
    told_at double precision, promised_at double precision, kept_at double precision,
    reminded_at double precision);
CREATE INDEX explanations_open ON explanations (incident_id)
    WHERE promised_at IS NOT NULL AND kept_at IS NULL;
