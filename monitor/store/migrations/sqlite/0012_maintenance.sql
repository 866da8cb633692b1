-- Version 12: planned work. maintenance_windows holds the windows posted to the API (POST
-- /api/v1/maintenance), each as its settings in JSON, under an id never handed out again (it is
-- in its notices' Message-IDs). maintenance_notices holds each occurrence of a window (a file's
-- or the API's) whose customers are being or were told, by its ref (the window's and the start's:
-- unique, so two replicas leading for a moment record it once), under an id of its own: its
-- messages are the outbox's and told's rows of incident_id = -id (never an incident's), so a
-- person hears of one occurrence in order and its rows go with it. Open ones (not yet told as
-- over) are read at every tick: a partial index holds only them.
CREATE TABLE maintenance_windows (
    id INTEGER PRIMARY KEY AUTOINCREMENT, spec TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE maintenance_notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ref TEXT NOT NULL UNIQUE, systems TEXT NOT NULL,
    starts_at REAL NOT NULL, ends_at REAL NOT NULL, announced_at REAL, over_at REAL);
CREATE INDEX maintenance_notices_open ON maintenance_notices (id) WHERE over_at IS NULL;
