-- v1: practice facts, schedule, patients, calls, appointments, audit, settings.
-- Times are INTEGER unix seconds UTC unless named *_ms. Local wall-clock times of the practice are
-- minutes after midnight (office hours) or ISO dates (closures).
CREATE TABLE practice (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    name               TEXT NOT NULL,
    timezone           TEXT NOT NULL,
    address            TEXT NOT NULL DEFAULT '',
    phone              TEXT NOT NULL DEFAULT '',
    front_desk_uri     TEXT NOT NULL DEFAULT '',
    on_call_uri        TEXT NOT NULL DEFAULT '',
    greeting           TEXT NOT NULL DEFAULT '',
    insurance_accepted TEXT NOT NULL DEFAULT '[]'   -- JSON array of strings
);
CREATE TABLE services (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    price_cents INTEGER,
    keywords    TEXT NOT NULL DEFAULT '[]'           -- JSON array of strings
);
CREATE TABLE users (
    id           INTEGER PRIMARY KEY,
    username     TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'front_desk', 'it')),
    created_at   INTEGER NOT NULL
);
CREATE TABLE office_hours (
    weekday   INTEGER PRIMARY KEY CHECK (weekday BETWEEN 0 AND 6),   -- 0 = Sunday
    open_min  INTEGER NOT NULL,
    close_min INTEGER NOT NULL,
    CHECK (0 <= open_min AND open_min < close_min AND close_min <= 1440)
);
CREATE TABLE office_breaks (
    id        INTEGER PRIMARY KEY,
    weekday   INTEGER NOT NULL REFERENCES office_hours(weekday) ON DELETE CASCADE,
    start_min INTEGER NOT NULL,
    end_min   INTEGER NOT NULL,
    CHECK (start_min < end_min)
);
CREATE TABLE closures (
    date   TEXT PRIMARY KEY,                         -- YYYY-MM-DD, practice-local
    reason TEXT NOT NULL DEFAULT ''
);
CREATE TABLE appointment_types (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    minutes            INTEGER NOT NULL CHECK (minutes > 0),
    buffer_before      INTEGER NOT NULL DEFAULT 0 CHECK (buffer_before >= 0),
    buffer_after       INTEGER NOT NULL DEFAULT 0 CHECK (buffer_after >= 0),
    min_notice_minutes INTEGER NOT NULL DEFAULT 0 CHECK (min_notice_minutes >= 0),
    window_days        INTEGER NOT NULL DEFAULT 90 CHECK (window_days >= 0),
    price_cents        INTEGER,
    bookable_by_phone  INTEGER NOT NULL DEFAULT 1,
    active             INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE chairs (
    id     INTEGER PRIMARY KEY,
    name   TEXT NOT NULL UNIQUE,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE patients (
    id            INTEGER PRIMARY KEY,
    first_name    TEXT NOT NULL,
    last_name     TEXT NOT NULL,
    phone         TEXT,                               -- E.164
    dob           TEXT,                               -- YYYY-MM-DD
    contact_pref  TEXT NOT NULL DEFAULT 'phone' CHECK (contact_pref IN ('phone', 'sms', 'email', 'none')),
    sms_opt_out   INTEGER NOT NULL DEFAULT 0,
    call_opt_out  INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX patients_phone ON patients(phone);
CREATE INDEX patients_name_dob ON patients(last_name COLLATE NOCASE, first_name COLLATE NOCASE, dob);
CREATE TABLE calls (
    id          INTEGER PRIMARY KEY,
    direction   TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    caller      TEXT,
    callee      TEXT,
    started_at  INTEGER NOT NULL,
    answered_at INTEGER,
    ended_at    INTEGER,
    outcome     TEXT CHECK (outcome IN ('booked', 'rescheduled', 'cancelled', 'message', 'transferred', 'info', 'abandoned')),
    summary     TEXT,
    sentiment   TEXT,
    patient_id  INTEGER REFERENCES patients(id)
);
CREATE INDEX calls_started ON calls(started_at, id);
CREATE TABLE call_turns (
    id           INTEGER PRIMARY KEY,
    call_id      INTEGER NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    speaker      TEXT NOT NULL CHECK (speaker IN ('caller', 'receptionist', 'staff')),
    text         TEXT NOT NULL,
    offset_ms    INTEGER NOT NULL,
    asr_ms       INTEGER,
    llm_ms       INTEGER,
    tts_ms       INTEGER,
    first_rtp_ms INTEGER,
    UNIQUE (call_id, seq)
);
CREATE TABLE appointments (
    id               INTEGER PRIMARY KEY,
    patient_id       INTEGER NOT NULL REFERENCES patients(id),
    type_id          INTEGER NOT NULL REFERENCES appointment_types(id),
    chair_id         INTEGER NOT NULL REFERENCES chairs(id),
    start_at         INTEGER NOT NULL,
    end_at           INTEGER NOT NULL,
    status           TEXT NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'cancelled', 'completed', 'no_show')),
    confirmation     TEXT NOT NULL DEFAULT 'unconfirmed' CHECK (confirmation IN ('unconfirmed', 'confirmed', 'declined')),
    source_call_id   INTEGER REFERENCES calls(id),
    rescheduled_from INTEGER REFERENCES appointments(id),
    reminders_sent   INTEGER NOT NULL DEFAULT 0,
    idempotency_key  TEXT UNIQUE,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    CHECK (end_at > start_at)
);
CREATE INDEX appointments_start ON appointments(start_at);
CREATE INDEX appointments_patient ON appointments(patient_id);
-- Last line of defence against a double booking; the scheduler's check (with buffers) runs first.
CREATE UNIQUE INDEX appointments_chair_start ON appointments(chair_id, start_at) WHERE status = 'booked';
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,          -- 'user:<id>', 'call:<id>', 'system', 'cli'
    action     TEXT NOT NULL,          -- 'read', 'insert', 'update', 'delete', 'export', ...
    table_name TEXT NOT NULL,
    record_id  INTEGER                 -- NULL for a listing
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL                -- JSON, validated by the program before writing
);
