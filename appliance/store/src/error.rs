//! The one error type of fd-store. Messages are written for the IT person who runs the box.

use std::path::PathBuf;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the database key in {key_source} does not open {db}: restore the key file from your backup \
         (or supply the right systemd credential 'frontdesk-db-key'); if the key is lost, restore the \
         database from a backup made with the current key — the data cannot be decrypted without it"
    )]
    WrongKey { db: PathBuf, key_source: String },

    #[error(
        "{db} exists but its key is missing: expected {key} (or the systemd credential \
         'frontdesk-db-key'). Restore the key file from your backup (mode 0600, owner root); do not \
         delete the database — without its key it cannot be read"
    )]
    KeyMissing { db: PathBuf, key: PathBuf },

    #[error("the key in {path} is malformed: expected 64 hex characters or 32 raw bytes; restore it from your backup")]
    KeyMalformed { path: PathBuf },

    #[error(
        "the database key comes from the systemd credential 'frontdesk-db-key', which this program \
         cannot rewrite: rotate it by re-encrypting a new credential with systemd-creds and restoring \
         a backup, or remove LoadCredentialEncrypted= to use the key file"
    )]
    KeyFromCredential,

    #[error("{path}: {source} (check that the data directory exists and is writable by the frontdesk service)")]
    Io { path: PathBuf, source: std::io::Error },

    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),

    #[error("{db} has schema version {found}, newer than this program understands ({supported}): install the newer frontdesk release or restore an older backup")]
    SchemaTooNew { db: PathBuf, found: u32, supported: u32 },

    #[error("{0}")]
    Practice(String),

    #[error("setting '{key}': {reason}")]
    Setting { key: String, reason: String },

    #[error("unknown appointment type {0}")]
    UnknownType(String),

    #[error("that time is no longer offered (slot id unknown or stale); ask for available times again")]
    UnknownSlot,

    #[error("that time has just been taken or is not bookable; offer other times")]
    SlotTaken,

    #[error("appointment {0} not found or not booked")]
    NoSuchAppointment(i64),

    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: i64 },

    #[error("backup file {path} is not usable: {reason}")]
    BadBackup { path: PathBuf, reason: String },

    #[error("invalid input: {0}")]
    Invalid(String),
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io { path: path.into(), source }
    }
}
