-- Version 6: each person's time zone (an IANA name) and language (a BCP 47 tag), so that their
-- messages tell the time where they are, in their language. NULL: monitor.yaml's
-- default_timezone / default_language.
ALTER TABLE people ADD COLUMN timezone text, ADD COLUMN language text;
