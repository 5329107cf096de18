-- v2: messages for staff, staff notifications, leads.
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    patient_id   INTEGER REFERENCES patients(id),
    caller_name  TEXT,
    callback     TEXT,                 -- E.164
    topic        TEXT NOT NULL DEFAULT '',
    body         TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'seen', 'done')),
    call_id      INTEGER REFERENCES calls(id),
    created_at   INTEGER NOT NULL
);
CREATE INDEX messages_created ON messages(created_at, id);
CREATE TABLE staff_notifications (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,        -- 'message', 'booking', 'emergency', ...
    message_id   INTEGER REFERENCES messages(id) ON DELETE CASCADE,
    appointment_id INTEGER REFERENCES appointments(id),
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE TABLE leads (
    id             INTEGER PRIMARY KEY,
    patient_id     INTEGER REFERENCES patients(id),
    name           TEXT,
    phone          TEXT,
    status         TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'contacted', 'booked', 'lost')),
    score          INTEGER NOT NULL DEFAULT 0,
    follow_up_date TEXT,
    source_call_id INTEGER REFERENCES calls(id),
    created_at     INTEGER NOT NULL
);
