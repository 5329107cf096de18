//! IT operations: key rotation, encrypted backup/restore, plaintext export, retention purge.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::Duration;
use rusqlite::{params, types::ValueRef, Connection};
use serde::Serialize;

use crate::error::{Result, StoreError};
use crate::key::{self, DbKey, KeyPaths, KeySource};
use crate::migrate;
use crate::store::{apply_key, Actor, Store, DB_FILE};

#[derive(Debug, Clone, Default, Serialize)]
pub struct PurgeReport {
    pub recordings_deleted: usize,
    pub turns_deleted: usize,
    pub summaries_cleared: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportReport {
    pub tables: Vec<(String, usize)>,
    pub dir: PathBuf,
}

/// Tables in the practice export, in dependency order. `settings` is left out (internal keys).
const EXPORT_TABLES: &[&str] = &[
    "practice", "services", "users", "office_hours", "office_breaks", "closures", "appointment_types", "chairs",
    "patients", "calls", "call_turns", "appointments", "messages", "staff_notifications", "leads", "recordings",
    "usage_events", "audit_log",
];

/// Test hook: where to stop a key rotation, to prove every interruption point recovers.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RekeyStop {
    AfterPendingWritten,
    AfterRekey,
    Complete,
}

fn sqlite_literal(path: &Path) -> String {
    path.display().to_string().replace('\'', "''")
}

impl Store {
    /// Rotate the database key. Order, chosen so that a crash at any point leaves a key that opens
    /// the database: (1) new key → `keys/db.key.new` (fsync); (2) `PRAGMA rekey` (one transaction);
    /// (3) rename `db.key.new` over `db.key` (fsync dir). On open, if `db.key.new` exists, whichever
    /// key opens the database wins and the other file is cleaned up.
    pub fn rekey(&mut self) -> Result<()> {
        self.rekey_until(RekeyStop::Complete)
    }

    #[doc(hidden)]
    pub fn rekey_until(&mut self, stop: RekeyStop) -> Result<()> {
        match &self.key_source {
            Some(KeySource::File(_)) => {}
            Some(KeySource::Credential(_)) => return Err(StoreError::KeyFromCredential),
            None => return Err(StoreError::Invalid("this database is not encrypted (benchmark mode); nothing to rekey".into())),
        }
        let new = DbKey::generate();
        key::write_key_atomic(&self.key_paths.pending, &new)?;
        if stop == RekeyStop::AfterPendingWritten {
            return Ok(());
        }
        // SQLCipher rekeys in place inside one transaction; WAL content is checkpointed first so
        // no page encrypted under the old key is left in the log.
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        self.conn.execute_batch(&format!("PRAGMA rekey = {};", new.pragma_literal()))?;
        if stop == RekeyStop::AfterRekey {
            return Ok(());
        }
        fs::rename(&self.key_paths.pending, &self.key_paths.file).map_err(|e| StoreError::io(&self.key_paths.file, e))?;
        key::sync_dir(self.key_paths.file.parent().unwrap_or(Path::new(".")))?;
        self.key = Some(new);
        Store::audit(&self.conn, self.now(), Actor::Cli, "rekey", "database", None)?;
        Ok(())
    }

    /// Online encrypted backup to `out` (a new file), under the current key: keep the key file's
    /// backup separately — the backup is unreadable without it.
    pub fn backup(&self, out: &Path, actor: Actor) -> Result<()> {
        if out.exists() {
            return Err(StoreError::Invalid(format!("{} already exists; choose a new file name", out.display())));
        }
        let tmp = out.with_extension("partial");
        let _ = fs::remove_file(&tmp);
        let key_lit = match &self.key {
            Some(k) => k.pragma_literal(),
            None => "''".into(),
        };
        let version = self.schema_version()?;
        key::ensure_private_file(&tmp)?;
        // A fresh connection, not self.conn: SQLCipher 4.19 registers sqlcipher_export() as an
        // auto-extension only after marking itself initialised, so a connection opened by another
        // thread in that window lacks the function ("no such function: sqlcipher_export"; seen in
        // parallel tests). Any connection opened now, after init has finished, has it.
        let conn = rusqlite::Connection::open(&self.db_path)?;
        if let Some(k) = &self.key {
            apply_key(&conn, k)?;
        }
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(&format!("ATTACH DATABASE '{}' AS backup KEY {key_lit};", sqlite_literal(&tmp)))?;
        let r = (|| -> Result<()> {
            conn.query_row("SELECT sqlcipher_export('backup')", [], |_| Ok(()))?;
            conn.execute_batch(&format!("PRAGMA backup.user_version = {version};"))?;
            Ok(())
        })();
        conn.execute_batch("DETACH DATABASE backup;")?;
        drop(conn);
        if let Err(e) = r {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| StoreError::io(&tmp, e))?;
        fs::rename(&tmp, out).map_err(|e| StoreError::io(out, e))?;
        Store::audit(&self.conn, self.now(), actor, "backup", "database", None)?;
        Ok(())
    }

    /// Replace the database of `data_dir` with the backup `input`. Stop the daemon first.
    /// `backup_key`: the key the backup was made under, if it is not the current one (after a
    /// rotation); the restored database is re-encrypted under the current key. The previous
    /// database is kept as `frontdesk.db.pre-restore`. On a fresh box (no database, no key) the
    /// `backup_key` is installed as the box's key.
    pub fn restore(data_dir: &Path, input: &Path, backup_key: Option<&Path>, credentials_dir: Option<&Path>) -> Result<()> {
        let kp = KeyPaths::new(data_dir, credentials_dir);
        let bkey = match backup_key {
            Some(p) => Some(key::read_key(p)?.ok_or_else(|| StoreError::KeyMissing { db: input.to_path_buf(), key: p.to_path_buf() })?),
            None => None,
        };
        let current = match kp.credential.as_deref().map(key::read_key).transpose()?.flatten() {
            Some(k) => Some(k),
            None => key::read_key(&kp.file)?,
        };
        // Disaster recovery on a fresh box: no database and no key yet, but the backup's key was
        // given — it becomes this box's key.
        let fresh_box = current.is_none() && !data_dir.join(DB_FILE).exists();
        let (current, bkey, backup_key) = match (current, bkey) {
            (Some(c), Some(b)) => (c, b, backup_key),
            (Some(c), None) => (c.clone(), c, None),
            (None, Some(b)) if fresh_box => {
                key::create_private_dir(data_dir)?;
                key::write_key_atomic(&kp.file, &b)?;
                (b.clone(), b, None)
            }
            (None, _) => return Err(StoreError::KeyMissing { db: data_dir.join(DB_FILE), key: kp.file.clone() }),
        };
        let staged = data_dir.join(format!("{DB_FILE}.restore"));
        let _ = fs::remove_file(&staged);
        fs::copy(input, &staged).map_err(|e| StoreError::io(input, e))?;
        key::ensure_private_file(&staged)?;
        let check = (|| -> Result<()> {
            let conn = Connection::open(&staged)?;
            apply_key(&conn, &bkey)?;
            let bad = |reason: String| StoreError::BadBackup { path: input.to_path_buf(), reason };
            let ok: String = crate::store::quietly(&conn, |c| c.query_row("PRAGMA integrity_check", [], |r| r.get(0))).map_err(|e| {
                bad(format!("it does not open with {} ({e}); pass the key it was made with", if backup_key.is_some() { "the given key" } else { "the current key" }))
            })?;
            if ok != "ok" {
                return Err(bad(format!("integrity check failed: {ok}")));
            }
            let v = migrate::version(&conn)?;
            if v == 0 || v > migrate::LATEST_VERSION {
                return Err(bad(format!("schema version {v} is not one this program can restore")));
            }
            conn.execute_batch("PRAGMA journal_mode = DELETE;")?;
            if backup_key.is_some() {
                conn.execute_batch(&format!("PRAGMA rekey = {};", current.pragma_literal()))?;
            }
            Ok(())
        })();
        if let Err(e) = check {
            let _ = fs::remove_file(&staged);
            return Err(e);
        }
        fs::File::open(&staged).and_then(|f| f.sync_all()).map_err(|e| StoreError::io(&staged, e))?;
        let db = data_dir.join(DB_FILE);
        for suffix in ["", "-wal", "-shm"] {
            let from = PathBuf::from(format!("{}{suffix}", db.display()));
            if from.exists() {
                let to = PathBuf::from(format!("{}.pre-restore{suffix}", db.display()));
                fs::rename(&from, &to).map_err(|e| StoreError::io(&from, e))?;
            }
        }
        fs::rename(&staged, &db).map_err(|e| StoreError::io(&db, e))?;
        key::sync_dir(data_dir)?;
        let store = Store::open_with(crate::store::OpenOptions {
            credentials_dir: credentials_dir.map(Path::to_path_buf),
            ..crate::store::OpenOptions::new(data_dir)
        })?;
        Store::audit(&store.conn, store.now(), Actor::Cli, "restore", "database", None)?;
        Ok(())
    }

    /// Full plaintext export for the practice: `<table>.json` and `<table>.csv` per table, BLOBs as
    /// files under `blobs/`. The directory holds PHI in the clear: it is created 0700.
    pub fn export(&self, dir: &Path, actor: Actor) -> Result<ExportReport> {
        key::create_private_dir(dir)?;
        let blobs = dir.join("blobs");
        let mut report = ExportReport { dir: dir.to_path_buf(), ..Default::default() };
        for table in EXPORT_TABLES {
            let mut st = self.conn.prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))?;
            let cols: Vec<String> = st.column_names().map(String::from).collect();
            let mut rows_json = Vec::new();
            let mut csv = String::new();
            csv.push_str(&cols.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
            csv.push('\n');
            let mut rows = st.query([])?;
            let mut n = 0usize;
            while let Some(row) = rows.next()? {
                n += 1;
                let mut obj = serde_json::Map::new();
                let mut fields = Vec::with_capacity(cols.len());
                for (i, c) in cols.iter().enumerate() {
                    let v = match row.get_ref(i)? {
                        ValueRef::Null => serde_json::Value::Null,
                        ValueRef::Integer(x) => x.into(),
                        ValueRef::Real(x) => x.into(),
                        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
                        ValueRef::Blob(b) => {
                            key::create_private_dir(&blobs)?;
                            let name = format!("{table}-{n}-{c}.bin");
                            let p = blobs.join(&name);
                            fs::write(&p, b).map_err(|e| StoreError::io(&p, e))?;
                            format!("blobs/{name}").into()
                        }
                    };
                    fields.push(match &v {
                        serde_json::Value::Null => String::new(),
                        serde_json::Value::String(s) => csv_field(s),
                        other => other.to_string(),
                    });
                    obj.insert(c.clone(), v);
                }
                csv.push_str(&fields.join(","));
                csv.push('\n');
                rows_json.push(serde_json::Value::Object(obj));
            }
            write_file(&dir.join(format!("{table}.csv")), csv.as_bytes())?;
            let json = serde_json::to_vec_pretty(&rows_json).map_err(|e| StoreError::Invalid(e.to_string()))?;
            write_file(&dir.join(format!("{table}.json")), &json)?;
            report.tables.push((table.to_string(), n));
        }
        Store::audit(&self.conn, self.now(), actor, "export", "database", None)?;
        Ok(report)
    }

    /// Apply the retention settings: delete recordings / transcripts of calls older than N days.
    /// A setting that is not set keeps data forever.
    pub fn purge(&mut self, actor: Actor) -> Result<PurgeReport> {
        let now = self.now();
        let days = |k: &str| -> Result<Option<i64>> { Ok(self.setting(k)?.and_then(|v| v.as_i64())) };
        let rec_days = days("retention_days_recordings")?;
        let txt_days = days("retention_days_transcripts")?;
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut r = PurgeReport::default();
        if let Some(d) = rec_days {
            let cutoff = (now - Duration::days(d)).timestamp();
            r.recordings_deleted = tx.execute("DELETE FROM recordings WHERE created_at < ?1", params![cutoff])?;
            if r.recordings_deleted > 0 {
                Store::audit(&tx, now, actor, "delete", "recordings", None)?;
            }
        }
        if let Some(d) = txt_days {
            let cutoff = (now - Duration::days(d)).timestamp();
            r.turns_deleted = tx.execute(
                "DELETE FROM call_turns WHERE call_id IN (SELECT id FROM calls WHERE started_at < ?1)",
                params![cutoff],
            )?;
            r.summaries_cleared = tx.execute("UPDATE calls SET summary = NULL WHERE started_at < ?1 AND summary IS NOT NULL", params![cutoff])?;
            if r.turns_deleted + r.summaries_cleared > 0 {
                Store::audit(&tx, now, actor, "delete", "call_turns", None)?;
            }
        }
        tx.commit()?;
        // Move the deletions out of the WAL into the main file promptly.
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(r)
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = fs::File::create(path).map_err(|e| StoreError::io(path, e))?;
    f.write_all(data).map_err(|e| StoreError::io(path, e))
}
