//! Opening the encrypted database: key resolution, key-rotation recovery, pragmas, migrations.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::RngCore;
use rusqlite::{Connection, ErrorCode, OptionalExtension};

use crate::error::{Result, StoreError};
use crate::key::{self, DbKey, KeyPaths, KeySource};
use crate::migrate;
use crate::slot_id::SlotSigner;

/// Who touched PHI, for the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User(i64),
    Call(i64),
    System,
    Cli,
}

impl Actor {
    pub fn as_audit(&self) -> String {
        match self {
            Actor::User(id) => format!("user:{id}"),
            Actor::Call(id) => format!("call:{id}"),
            Actor::System => "system".into(),
            Actor::Cli => "cli".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub data_dir: PathBuf,
    /// Directory holding systemd credentials; defaults to `$CREDENTIALS_DIRECTORY`.
    pub credentials_dir: Option<PathBuf>,
    /// Benchmark only: an unencrypted database (`PRAGMA key = ''`). Never for PHI.
    pub plaintext: bool,
    /// Tests only: stop migrating at this version.
    #[doc(hidden)]
    pub migrate_to: Option<u32>,
}

impl OpenOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        OpenOptions {
            data_dir: data_dir.into(),
            credentials_dir: std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
            plaintext: false,
            migrate_to: None,
        }
    }
}

pub(crate) type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) data_dir: PathBuf,
    pub(crate) db_path: PathBuf,
    pub(crate) key_paths: KeyPaths,
    pub(crate) key: Option<DbKey>,
    pub(crate) key_source: Option<KeySource>,
    pub(crate) signer: SlotSigner,
    pub(crate) clock: Clock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("db", &self.db_path).field("key_source", &self.key_source).finish_non_exhaustive()
    }
}

pub(crate) const DB_FILE: &str = "frontdesk.db";
const SLOT_KEY_SETTING: &str = "internal.slot_hmac_key";

impl Store {
    /// Open (creating on first start) `<data_dir>/frontdesk.db`.
    pub fn open(data_dir: &Path) -> Result<Store> {
        Store::open_with(OpenOptions::new(data_dir))
    }

    pub fn open_with(opts: OpenOptions) -> Result<Store> {
        key::create_private_dir(&opts.data_dir)?;
        let db_path = opts.data_dir.join(DB_FILE);
        let key_paths = KeyPaths::new(&opts.data_dir, opts.credentials_dir.as_deref());
        if db_exists(&db_path) {
            key::ensure_private_file(&db_path)?;
        }
        let (conn, key, key_source) = if opts.plaintext {
            key::ensure_private_file(&db_path)?;
            // No PRAGMA key at all: SQLCipher then behaves as plain SQLite.
            let conn = Connection::open(&db_path)?;
            (conn, None, None)
        } else {
            let (conn, key, src) = open_encrypted(&db_path, &key_paths)?;
            (conn, Some(key), Some(src))
        };
        let mut store = Store {
            conn,
            data_dir: opts.data_dir.clone(),
            db_path,
            key_paths,
            key,
            key_source,
            signer: SlotSigner::new([0; 32]),
            clock: Arc::new(Utc::now),
        };
        store.configure()?;
        let found = migrate::version(&store.conn)?;
        if found > migrate::LATEST_VERSION {
            return Err(StoreError::SchemaTooNew { db: store.db_path.clone(), found, supported: migrate::LATEST_VERSION });
        }
        migrate::migrate_to(&mut store.conn, opts.migrate_to.unwrap_or(migrate::LATEST_VERSION))?;
        if migrate::version(&store.conn)? >= 1 {
            store.signer = SlotSigner::new(store.slot_key()?);
        }
        Ok(store)
    }

    fn configure(&self) -> Result<()> {
        self.conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL: readers (web UI) never block the call path's writes. synchronous=FULL: a booking the
        // caller heard confirmed must survive a power cut, not only a crash.
        let mode: String = self.conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Invalid(format!("could not switch {} to WAL mode (got {mode})", self.db_path.display())));
        }
        self.conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        Ok(())
    }

    fn slot_key(&self) -> Result<[u8; 32]> {
        let existing: Option<String> =
            self.conn.query_row("SELECT value FROM settings WHERE key = ?1", [SLOT_KEY_SETTING], |r| r.get(0)).optional()?;
        let hexed = match existing {
            Some(v) => serde_json::from_str::<String>(&v).unwrap_or_default(),
            None => {
                let mut k = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut k);
                let v = serde_json::to_string(&hex::encode(k)).unwrap_or_default();
                self.conn.execute("INSERT OR IGNORE INTO settings(key, value) VALUES (?1, ?2)", rusqlite::params![SLOT_KEY_SETTING, v])?;
                let v: String = self.conn.query_row("SELECT value FROM settings WHERE key = ?1", [SLOT_KEY_SETTING], |r| r.get(0))?;
                serde_json::from_str::<String>(&v).unwrap_or_default()
            }
        };
        let mut k = [0u8; 32];
        hex::decode_to_slice(hexed, &mut k).map_err(|_| StoreError::Invalid("internal slot key is corrupt".into()))?;
        Ok(k)
    }

    /// Replace the clock (tests and scripted scenarios run at a fixed "now").
    pub fn set_clock(&mut self, clock: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) {
        self.clock = Arc::new(clock);
    }

    pub fn set_fixed_now(&mut self, now: DateTime<Utc>) {
        self.set_clock(move || now);
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn key_source(&self) -> Option<&KeySource> {
        self.key_source.as_ref()
    }

    pub fn schema_version(&self) -> Result<u32> {
        migrate::version(&self.conn)
    }

    /// `PRAGMA integrity_check` → `Ok(true)` when it reports "ok".
    pub fn integrity_ok(&self) -> Result<bool> {
        let r: String = self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        Ok(r == "ok")
    }

    /// The raw connection, for tests and benchmarks. Bypasses the audit log: not for PHI paths.
    #[doc(hidden)]
    pub fn raw_conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn audit(conn: &Connection, now: DateTime<Utc>, actor: Actor, action: &str, table: &str, record: Option<i64>) -> Result<()> {
        conn.execute(
            "INSERT INTO audit_log(at, actor, action, table_name, record_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![now.timestamp(), actor.as_audit(), action, table, record],
        )?;
        Ok(())
    }
}

pub(crate) fn apply_key(conn: &Connection, key: &DbKey) -> Result<()> {
    conn.execute_batch(&format!("PRAGMA key = {};", key.pragma_literal()))?;
    Ok(())
}

/// Does `key` open the database? (SQLCipher only notices a wrong key at the first read.)
fn key_opens(conn: &Connection) -> Result<bool> {
    // A wrong key is expected here and reported as a typed error; keep SQLCipher from also
    // printing its own "hmac check failed" lines, then restore its normal logging.
    let r = quietly(conn, |c| c.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0)));
    match r {
        Ok(_) => Ok(true),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::NotADatabase => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Run a probe that may fail on a wrong key without SQLCipher logging to stderr.
pub(crate) fn quietly<T>(conn: &Connection, f: impl FnOnce(&Connection) -> T) -> T {
    let _ = conn.query_row("PRAGMA cipher_log_level = NONE", [], |_| Ok(()));
    let r = f(conn);
    let _ = conn.query_row("PRAGMA cipher_log_level = WARN", [], |_| Ok(()));
    r
}

fn open_conn(db: &Path, key: &DbKey) -> Result<Option<Connection>> {
    let conn = Connection::open(db)?;
    apply_key(&conn, key)?;
    Ok(if key_opens(&conn)? { Some(conn) } else { None })
}

fn db_exists(db: &Path) -> bool {
    fs::metadata(db).map(|m| m.len() > 0).unwrap_or(false)
}

/// Resolve the key and open. Rotation recovery (see `Store::rekey`): if `db.key.new` exists, the
/// rotation was interrupted; whichever of the two keys opens the database is the real one.
fn open_encrypted(db: &Path, kp: &KeyPaths) -> Result<(Connection, DbKey, KeySource)> {
    if let Some(cred) = &kp.credential {
        if let Some(k) = key::read_key(cred)? {
            let src = KeySource::Credential(cred.clone());
            return match open_conn(db, &k)? {
                Some(c) => Ok((c, k, src)),
                None => Err(StoreError::WrongKey { db: db.to_path_buf(), key_source: src.describe() }),
            };
        }
    }
    let src = KeySource::File(kp.file.clone());
    let primary = key::read_key(&kp.file)?;
    let pending = key::read_key(&kp.pending)?;
    let exists = db_exists(db);
    match (primary, pending) {
        (None, None) if exists => Err(StoreError::KeyMissing { db: db.to_path_buf(), key: kp.file.clone() }),
        (None, None) => {
            // First start: the key file is durable before the database exists, so a crash here can
            // never leave a database without its key.
            let k = DbKey::generate();
            key::write_key_atomic(&kp.file, &k)?;
            key::ensure_private_file(db)?;
            let c = open_conn(db, &k)?.ok_or_else(|| StoreError::WrongKey { db: db.to_path_buf(), key_source: src.describe() })?;
            Ok((c, k, src))
        }
        (primary, pending) => {
            if let Some(k) = primary {
                if let Some(c) = open_conn(db, &k)? {
                    if pending.is_some() {
                        // Rotation died before PRAGMA rekey committed: the old key is still the key.
                        let _ = fs::remove_file(&kp.pending);
                    }
                    return Ok((c, k, src));
                }
            }
            if let Some(k) = pending {
                if let Some(c) = open_conn(db, &k)? {
                    // Rotation died after the rekey committed: finish it.
                    fs::rename(&kp.pending, &kp.file).map_err(|e| StoreError::io(&kp.file, e))?;
                    key::sync_dir(kp.file.parent().unwrap_or(Path::new(".")))?;
                    return Ok((c, k, src));
                }
            }
            Err(StoreError::WrongKey { db: db.to_path_buf(), key_source: src.describe() })
        }
    }
}
