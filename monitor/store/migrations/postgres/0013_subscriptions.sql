-- Version 13: self-service subscriptions. unsubscribed holds each person who cancelled (by the
-- link in a message, or one-click List-Unsubscribe), by id and by address (lower case), so that
-- a later import or POST /api/v1/users of that id or address does not subscribe them again
-- unasked; a confirmed subscription of the address (double opt-in) removes its rows.
-- subscription_claims counts the subscribe requests per address (hashed, never the address
-- itself) and per client IP, so that every replica shares one limit; expired claims are pruned
-- by their time.
CREATE TABLE unsubscribed (
    person_id text COLLATE "C" PRIMARY KEY, email text, at double precision NOT NULL);
CREATE INDEX unsubscribed_email ON unsubscribed (email);
CREATE TABLE subscription_claims (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, key text COLLATE "C" NOT NULL,
    at double precision NOT NULL);
CREATE INDEX subscription_claims_key ON subscription_claims (key, at);
CREATE INDEX subscription_claims_at ON subscription_claims (at);
