//! The database key: 32 random bytes, never printed, zeroed on drop.
//!
//! Sources, in order: the systemd credential `$CREDENTIALS_DIRECTORY/frontdesk-db-key`
//! (for `LoadCredentialEncrypted=`), then `<data-dir>/keys/db.key` (0600). A key is generated only
//! when neither exists *and* there is no database yet, so a lost key never silently becomes a new,
//! empty database.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::RngCore;
use zeroize::Zeroize;

use crate::error::{Result, StoreError};

pub const CREDENTIAL_NAME: &str = "frontdesk-db-key";

#[derive(Clone, PartialEq, Eq)]
pub struct DbKey([u8; 32]);

impl DbKey {
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        DbKey(k)
    }

    pub fn from_bytes(b: [u8; 32]) -> Self {
        DbKey(b)
    }

    /// Accepts 64 hex characters (optionally with surrounding whitespace) or exactly 32 raw bytes.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        let bad = || StoreError::KeyMalformed { path: path.to_path_buf() };
        let trimmed = std::str::from_utf8(bytes).map(str::trim).ok();
        if let Some(t) = trimmed.filter(|t| t.len() == 64) {
            let mut k = [0u8; 32];
            hex::decode_to_slice(t, &mut k).map_err(|_| bad())?;
            return Ok(DbKey(k));
        }
        if bytes.len() == 32 {
            let mut k = [0u8; 32];
            k.copy_from_slice(bytes);
            return Ok(DbKey(k));
        }
        Err(bad())
    }

    /// The SQLCipher raw-key literal `x'..'` (no KDF: the key is already random).
    pub(crate) fn pragma_literal(&self) -> String {
        format!("\"x'{}'\"", hex::encode(self.0))
    }

    pub(crate) fn hex(&self) -> String {
        hex::encode(self.0)
    }

}

impl Drop for DbKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for DbKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbKey(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Credential(PathBuf),
    File(PathBuf),
}

impl KeySource {
    pub fn describe(&self) -> String {
        match self {
            KeySource::Credential(p) => format!("systemd credential {}", p.display()),
            KeySource::File(p) => p.display().to_string(),
        }
    }
}

pub(crate) fn read_key(path: &Path) -> Result<Option<DbKey>> {
    match fs::read(path) {
        Ok(mut b) => {
            let k = DbKey::parse(&b, path);
            b.zeroize();
            k.map(Some)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// Write `key` to `path` atomically: temp file (0600) → fsync → rename → fsync directory.
pub(crate) fn write_key_atomic(path: &Path, key: &DbKey) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = open_private(&tmp)?;
        let mut text = key.hex();
        text.push('\n');
        let r = f.write_all(text.as_bytes()).and_then(|_| f.sync_all());
        text.zeroize();
        r.map_err(|e| StoreError::io(&tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| StoreError::io(path, e))?;
    sync_dir(dir)
}

pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| StoreError::io(dir, e))?;
    }
    Ok(())
}

/// Make sure `path` exists with mode 0600 (SQLite gives its -wal/-shm files the database's mode).
pub(crate) fn ensure_private_file(path: &Path) -> Result<()> {
    if !path.exists() {
        drop(open_private_append(path)?);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|e| StoreError::io(path, e))?;
    }
    Ok(())
}

fn open_private_append(path: &Path) -> Result<fs::File> {
    let mut o = fs::OpenOptions::new();
    o.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(|e| StoreError::io(path, e))
}

fn open_private(path: &Path) -> Result<fs::File> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map_err(|e| StoreError::io(path, e))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StoreError::io(dir, e))
}

/// Where the key file and its rotation companion live.
#[derive(Debug, Clone)]
pub struct KeyPaths {
    pub file: PathBuf,
    /// Written (fsynced) before `PRAGMA rekey`; renamed over `file` after it. See `Store::rekey`.
    pub pending: PathBuf,
    pub credential: Option<PathBuf>,
}

impl KeyPaths {
    pub fn new(data_dir: &Path, credentials_dir: Option<&Path>) -> Self {
        let keys = data_dir.join("keys");
        KeyPaths {
            file: keys.join("db.key"),
            pending: keys.join("db.key.new"),
            credential: credentials_dir.map(|d| d.join(CREDENTIAL_NAME)),
        }
    }
}
