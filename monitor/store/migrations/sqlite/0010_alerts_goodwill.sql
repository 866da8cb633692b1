-- Version 10: when on-call was first alerted of an incident and by which routes (the apprise
-- services, comma-separated), so that every replica's messages say the same time and routes;
-- and the goodwill offered to each person of an incident, with the key of the one message that
-- carries it: the primary key makes it once per person and incident, whoever decides it.
CREATE TABLE alerts (
    incident_id INTEGER PRIMARY KEY, alerted_at REAL NOT NULL, routes TEXT NOT NULL);
CREATE TABLE goodwill (
    incident_id INTEGER NOT NULL, person_id TEXT NOT NULL, outbox_key TEXT NOT NULL,
    PRIMARY KEY (incident_id, person_id));
