-- Version 10: when on-call was first alerted of an incident and by which routes (the apprise
-- services, comma-separated), so that every replica's messages say the same time and routes;
-- and the goodwill offered to each person of an incident, with the key of the one message that
-- carries it: the primary key makes it once per person and incident, whoever decides it.
CREATE TABLE alerts (
    incident_id bigint PRIMARY KEY, alerted_at double precision NOT NULL,
    routes text NOT NULL);
CREATE TABLE goodwill (
    incident_id bigint NOT NULL, person_id text NOT NULL, outbox_key text NOT NULL,
    PRIMARY KEY (incident_id, person_id));
