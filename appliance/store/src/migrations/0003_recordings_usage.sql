-- v3: recordings (BLOBs inside the encrypted database) and the anonymized usage outbox.
CREATE TABLE recordings (
    id         INTEGER PRIMARY KEY,
    call_id    INTEGER NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    format     TEXT NOT NULL DEFAULT 'wav',
    audio      BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX recordings_call ON recordings(call_id);
ALTER TABLE calls ADD COLUMN recording_id INTEGER REFERENCES recordings(id) ON DELETE SET NULL;
-- Counts only: never numbers, names or text.
CREATE TABLE usage_events (
    id         INTEGER PRIMARY KEY,
    at_day     TEXT NOT NULL,          -- YYYY-MM-DD (UTC): coarse on purpose
    kind       TEXT NOT NULL,          -- 'call'
    seconds    INTEGER NOT NULL DEFAULT 0,
    outcome    TEXT,
    sent_at    INTEGER
);
