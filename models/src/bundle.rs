//! Signed model bundles: building them (vendor side) and installing, verifying and rolling them back
//! (appliance side).
//!
//! A bundle is a directory holding `manifest.json`, `manifest.sig` (hex ed25519 signature over the
//! exact manifest bytes) and the files the manifest lists; for shipping it may be packed into one
//! `.fdbundle` tar file of that directory.
//!
//! Appliance layout under the models directory:
//! ```text
//! <models>/bundles/<version>/   installed bundles (the current one and the previous one)
//! <models>/current  -> bundles/<version>     symlink, switched atomically by rename
//! <models>/previous -> bundles/<version>     what `rollback` returns to
//! <models>/staging-*/                        work in progress; removed on the next start/install
//! ```
//! Expiry is enforced when installing only: a running practice must not lose its receptionist
//! because a date passed, and an expired bundle cannot be (re)installed from an old copy.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{ModelsError, Result};
use crate::keys::key_id;
use crate::manifest::{check_relative_path, Manifest, ModelEntry, Role, FORMAT_VERSION};
use crate::ModelPaths;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const SIGNATURE_FILE: &str = "manifest.sig";
/// File name extension of a packed bundle.
pub const ARCHIVE_EXT: &str = "fdbundle";

const BUNDLES_DIR: &str = "bundles";
const CURRENT: &str = "current";
const PREVIOUS: &str = "previous";
const STAGING_PREFIX: &str = "staging-";

// ------------------------------------------------------------------------------------------------
// Hashing and file helpers

/// sha256 (lower-case hex) and size of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut f = File::open(path).map_err(|e| ModelsError::io("open", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n_total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| ModelsError::io("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        n_total += n as u64;
    }
    Ok((hex::encode(h.finalize()), n_total))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).map_err(|e| ModelsError::io("create", path, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| ModelsError::io("write", path, e))
}

fn copy_synced(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(|e| ModelsError::io("create directory", parent, e))?;
    }
    fs::copy(from, to).map_err(|e| ModelsError::io("copy to", to, e))?;
    File::open(to)
        .and_then(|f| f.sync_all())
        .map_err(|e| ModelsError::io("sync", to, e))
}

fn sync_dir(dir: &Path) {
    // Best effort: makes renames durable on power loss; failing to sync is not worth an install error.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn remove_path(p: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ModelsError::io("inspect", p, e)),
    };
    let res = if meta.is_dir() {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    };
    res.map_err(|e| ModelsError::io("remove", p, e))
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

// ------------------------------------------------------------------------------------------------
// Signatures

fn sign_manifest(bytes: &[u8], key: &SigningKey) -> String {
    format!("{}\n", hex::encode(key.sign(bytes).to_bytes()))
}

/// Check `manifest.sig` over the exact `manifest_bytes` against the trusted keys, then parse and
/// validate the manifest. Returns the manifest and the id of the key that signed it.
pub fn verify_manifest(
    manifest_bytes: &[u8],
    sig_text: &[u8],
    trusted: &[VerifyingKey],
) -> Result<(Manifest, String)> {
    let sig_hex = std::str::from_utf8(sig_text).map(str::trim).unwrap_or("");
    let sig_bytes: [u8; 64] = hex::decode(sig_hex)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ModelsError::SignatureMissing {
            reason: "manifest.sig is not a 128-hex-digit ed25519 signature".into(),
        })?;
    let sig = Signature::from_bytes(&sig_bytes);
    // Only parse what a trusted key signed; the claimed key id is read from the unverified bytes
    // solely to say which key an unverifiable bundle claims.
    for key in trusted {
        if key.verify_strict(manifest_bytes, &sig).is_ok() {
            let m = Manifest::from_bytes(manifest_bytes)?;
            let id = key_id(key);
            if m.key_id != id {
                return Err(ModelsError::ManifestInvalid {
                    reason: format!("it names signing key {} but was signed by {id}", m.key_id),
                });
            }
            m.validate()?;
            return Ok((m, id));
        }
    }
    let claimed = serde_json::from_slice::<serde_json::Value>(manifest_bytes)
        .ok()
        .and_then(|v| v.get("key_id").and_then(|k| k.as_str()).map(str::to_owned));
    match claimed {
        Some(id) if !trusted.iter().any(|k| key_id(k) == id) => {
            Err(ModelsError::UnknownKey { key_id: id })
        }
        Some(id) => Err(ModelsError::SignatureInvalid { key_id: id }),
        None => Err(ModelsError::SignatureInvalid {
            key_id: trusted.iter().map(key_id).collect::<Vec<_>>().join(","),
        }),
    }
}

fn read_manifest_pair(dir: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let mp = dir.join(MANIFEST_FILE);
    let manifest = fs::read(&mp).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ModelsError::ManifestInvalid {
            reason: format!(
                "{} has no manifest.json (is it a bundle directory?)",
                dir.display()
            ),
        },
        _ => ModelsError::io("read", &mp, e),
    })?;
    let sp = dir.join(SIGNATURE_FILE);
    let sig = fs::read(&sp).map_err(|e| ModelsError::SignatureMissing {
        reason: format!("cannot read {}: {e}", sp.display()),
    })?;
    Ok((manifest, sig))
}

/// Verify a bundle directory completely: signature, manifest rules, and every file's size and hash.
pub fn verify_dir(dir: &Path, trusted: &[VerifyingKey]) -> Result<(Manifest, String)> {
    let (mb, sb) = read_manifest_pair(dir)?;
    let (m, id) = verify_manifest(&mb, &sb, trusted)?;
    verify_files_in(dir, &m, true)?;
    Ok((m, id))
}

/// Check every listed file exists with the right size, and (when `hashes`) the right sha256.
fn verify_files_in(dir: &Path, m: &Manifest, hashes: bool) -> Result<()> {
    for e in &m.models {
        let p = dir.join(&e.file);
        let meta = match fs::symlink_metadata(&p) {
            Ok(meta) if meta.is_file() => meta,
            // A symlink inside a bundle could point anywhere: treat it as missing.
            Ok(_) => {
                return Err(ModelsError::FileMissing {
                    file: e.file.clone(),
                })
            }
            Err(_) => {
                return Err(ModelsError::FileMissing {
                    file: e.file.clone(),
                })
            }
        };
        if meta.len() != e.size {
            return Err(ModelsError::SizeMismatch {
                file: e.file.clone(),
                expected: e.size,
                found: meta.len(),
            });
        }
        if hashes {
            let (found, _) = sha256_file(&p)?;
            if found != e.sha256 {
                return Err(ModelsError::HashMismatch {
                    file: e.file.clone(),
                    expected: e.sha256.clone(),
                    found,
                });
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Vendor side: build and pack

/// One file to put into a bundle.
#[derive(Debug, Clone)]
pub struct BundleSource {
    pub id: String,
    pub role: Role,
    /// Where the file is now.
    pub path: PathBuf,
    /// Its path inside the bundle.
    pub file: String,
    pub licence: String,
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub name: String,
    pub bundle_version: u64,
    pub created: OffsetDateTime,
    pub expires: OffsetDateTime,
}

/// Vendor-side bundle operations.
pub struct Bundle;

impl Bundle {
    /// Build a signed bundle directory at `out_dir` (which must not exist). Built in
    /// `<out_dir>.partial` and renamed, so `out_dir` is either complete or absent.
    pub fn build(
        out_dir: &Path,
        sources: &[BundleSource],
        opts: &BuildOptions,
        key: &SigningKey,
    ) -> Result<Manifest> {
        if out_dir.exists() {
            return Err(ModelsError::io(
                "build bundle into",
                out_dir,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "it already exists; remove it first",
                ),
            ));
        }
        let mut tmp = out_dir.as_os_str().to_owned();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        remove_path(&tmp)?;
        fs::create_dir_all(&tmp).map_err(|e| ModelsError::io("create directory", &tmp, e))?;
        let res = Self::build_into(&tmp, sources, opts, key).and_then(|m| {
            fs::rename(&tmp, out_dir)
                .map_err(|e| ModelsError::io("rename into place", out_dir, e))?;
            Ok(m)
        });
        if res.is_err() {
            let _ = remove_path(&tmp);
        }
        res
    }

    fn build_into(
        dir: &Path,
        sources: &[BundleSource],
        opts: &BuildOptions,
        key: &SigningKey,
    ) -> Result<Manifest> {
        let mut models = Vec::new();
        for s in sources {
            check_relative_path(&s.file)?;
            let dest = dir.join(&s.file);
            copy_synced(&s.path, &dest)?;
            let (sha256, size) = sha256_file(&dest)?;
            models.push(ModelEntry {
                id: s.id.clone(),
                role: s.role,
                file: s.file.clone(),
                sha256,
                size,
                licence: s.licence.clone(),
                source: s.source.clone(),
            });
        }
        let m = Manifest {
            format: FORMAT_VERSION,
            name: opts.name.clone(),
            bundle_version: opts.bundle_version,
            created: opts.created,
            expires: opts.expires,
            key_id: key_id(&key.verifying_key()),
            models,
        };
        m.validate()?;
        Self::write_signed(dir, &m, key)?;
        sync_dir(dir);
        Ok(m)
    }

    /// Write `manifest.json` and its signature into `dir` (also used by tests to forge variants).
    pub fn write_signed(dir: &Path, m: &Manifest, key: &SigningKey) -> Result<()> {
        let bytes = m.to_bytes();
        write_synced(&dir.join(MANIFEST_FILE), &bytes)?;
        write_synced(
            &dir.join(SIGNATURE_FILE),
            sign_manifest(&bytes, key).as_bytes(),
        )
    }

    /// Pack a bundle directory into a single `.fdbundle` (tar) file: manifest first, then the files.
    pub fn pack(dir: &Path, out_file: &Path) -> Result<()> {
        let (mb, _) = read_manifest_pair(dir)?;
        let m = Manifest::from_bytes(&mb)?;
        let mut tmp = out_file.as_os_str().to_owned();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        let f = File::create(&tmp).map_err(|e| ModelsError::io("create", &tmp, e))?;
        let mut b = tar::Builder::new(std::io::BufWriter::new(f));
        b.mode(tar::HeaderMode::Deterministic);
        let mut names = vec![MANIFEST_FILE.to_owned(), SIGNATURE_FILE.to_owned()];
        names.extend(m.models.iter().map(|e| e.file.clone()));
        let res = (|| {
            for n in &names {
                if n != MANIFEST_FILE && n != SIGNATURE_FILE {
                    check_relative_path(n)?;
                }
                b.append_path_with_name(dir.join(n), n)
                    .map_err(|e| ModelsError::io("add to archive", dir.join(n), e))?;
            }
            let w = b
                .into_inner()
                .map_err(|e| ModelsError::io("write", &tmp, e))?;
            let f = w
                .into_inner()
                .map_err(|e| ModelsError::io("write", &tmp, e.into_error()))?;
            f.sync_all().map_err(|e| ModelsError::io("sync", &tmp, e))?;
            fs::rename(&tmp, out_file)
                .map_err(|e| ModelsError::io("rename into place", out_file, e))
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }
}

/// Largest manifest or signature accepted from an archive (a real manifest is a few KB).
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// Unpack a `.fdbundle` into `dest` (a fresh directory), accepting only regular files and
/// directories at safe relative paths. With `trusted` keys, the archive must start with
/// `manifest.json` and `manifest.sig` (as [`Bundle::pack`] writes it); the signature is checked before
/// any model file is written, and entries the manifest does not list are refused.
pub fn unpack_archive(file: &Path, dest: &Path, trusted: Option<&[VerifyingKey]>) -> Result<()> {
    let f = File::open(file).map_err(|e| ModelsError::io("open", file, e))?;
    let mut ar = tar::Archive::new(std::io::BufReader::new(f));
    let entries = ar.entries().map_err(|e| ModelsError::Archive {
        reason: e.to_string(),
    })?;
    let mut listed: Option<Vec<String>> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| ModelsError::Archive {
            reason: e.to_string(),
        })?;
        let name = entry
            .path()
            .map_err(|e| ModelsError::Archive {
                reason: e.to_string(),
            })?
            .to_string_lossy()
            .trim_end_matches('/')
            .to_owned();
        let kind = entry.header().entry_type();
        let is_meta = name == MANIFEST_FILE || name == SIGNATURE_FILE;
        if kind.is_dir() {
            check_relative_path(&name)?;
            fs::create_dir_all(dest.join(&name))
                .map_err(|e| ModelsError::io("create directory", dest.join(&name), e))?;
            continue;
        }
        if !kind.is_file() {
            return Err(ModelsError::Archive {
                reason: format!(
                    "entry {name:?} is not a regular file (links are not allowed in bundles)"
                ),
            });
        }
        if !is_meta {
            check_relative_path(&name)?;
            if trusted.is_some() {
                match &listed {
                    None => {
                        return Err(ModelsError::Archive {
                            reason: "it does not start with manifest.json and manifest.sig (pack it with `fd-modeltool pack`)".into(),
                        })
                    }
                    Some(files) if !files.contains(&name) => {
                        return Err(ModelsError::Archive {
                            reason: format!("it holds {name:?}, which the signed manifest does not list"),
                        })
                    }
                    Some(_) => {}
                }
            }
        } else if entry.size() > MAX_MANIFEST_BYTES {
            return Err(ModelsError::Archive {
                reason: format!("{name} is implausibly large ({} bytes)", entry.size()),
            });
        }
        let out = dest.join(&name);
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| ModelsError::io("create directory", parent, e))?;
        }
        let mut of = File::create(&out).map_err(|e| ModelsError::io("create", &out, e))?;
        std::io::copy(&mut entry, &mut of)
            .and_then(|_| of.sync_all())
            .map_err(|e| ModelsError::io("unpack to", &out, e))?;
        if let (Some(keys), None, true) = (trusted, &listed, is_meta) {
            if dest.join(MANIFEST_FILE).is_file() && dest.join(SIGNATURE_FILE).is_file() {
                let (mb, sb) = read_manifest_pair(dest)?;
                let (m, _) = verify_manifest(&mb, &sb, keys)?;
                listed = Some(m.models.iter().map(|e| e.file.clone()).collect());
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Appliance side

/// A verified, installed bundle.
#[derive(Debug, Clone)]
pub struct InstalledBundle {
    dir: PathBuf,
    manifest: Manifest,
    key_id: String,
}

/// What [`install_with_status`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallStatus {
    Installed,
    /// The same version is already current; nothing changed.
    AlreadyInstalled,
}

impl InstalledBundle {
    /// Load a bundle directory: verifies the signature and manifest and that every file exists with
    /// its size (cheap). Call [`Self::verify_files`] for the full hash check.
    pub fn open(dir: &Path, trusted: &[VerifyingKey]) -> Result<Self> {
        let (mb, sb) = read_manifest_pair(dir)?;
        let (manifest, key_id) = verify_manifest(&mb, &sb, trusted)?;
        verify_files_in(dir, &manifest, false)?;
        let dir = fs::canonicalize(dir).map_err(|e| ModelsError::io("resolve", dir, e))?;
        Ok(Self {
            dir,
            manifest,
            key_id,
        })
    }

    /// The bundle `current` points to.
    pub fn current(models_dir: &Path, trusted: &[VerifyingKey]) -> Result<Self> {
        let link = models_dir.join(CURRENT);
        if fs::symlink_metadata(&link).is_err() {
            return Err(ModelsError::NoCurrentBundle {
                models_dir: models_dir.to_owned(),
            });
        }
        Self::open(&link, trusted)
    }

    /// The bundle `previous` points to (what [`rollback`] would switch to).
    pub fn previous(models_dir: &Path, trusted: &[VerifyingKey]) -> Result<Self> {
        let link = models_dir.join(PREVIOUS);
        if fs::symlink_metadata(&link).is_err() {
            return Err(ModelsError::NoPreviousBundle {
                models_dir: models_dir.to_owned(),
            });
        }
        Self::open(&link, trusted)
    }

    /// Re-hash every file (the appliance does this at start).
    pub fn verify_files(&self) -> Result<()> {
        verify_files_in(&self.dir, &self.manifest, true)
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    pub fn version(&self) -> u64 {
        self.manifest.bundle_version
    }
    /// Absolute directory of the bundle (symlinks resolved).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Path of a required role's file (validate() guaranteed one entry per required role).
    pub fn path_of(&self, role: Role) -> PathBuf {
        self.optional_path_of(role).unwrap_or_default()
    }

    /// Path of a role's file, if the bundle has one (for optional roles).
    pub fn optional_path_of(&self, role: Role) -> Option<PathBuf> {
        self.manifest.entry(role).map(|e| self.dir.join(&e.file))
    }

    pub fn model_paths(&self) -> ModelPaths {
        ModelPaths {
            asr: self.path_of(Role::Asr),
            llm: self.path_of(Role::Llm),
            tts_model: self.path_of(Role::Tts),
            tts_config: self.path_of(Role::TtsConfig),
            vad: self.path_of(Role::Vad),
            onnxruntime: self.path_of(Role::Onnxruntime),
            asr_names: self.optional_path_of(Role::AsrNames),
            surnames: self.optional_path_of(Role::Surnames),
            first_names: self.optional_path_of(Role::FirstNames),
            surname_homophones: self.optional_path_of(Role::SurnameHomophones),
            first_name_homophones: self.optional_path_of(Role::FirstNameHomophones),
        }
    }
}

/// Remove what an interrupted install left behind (`staging-*`, half-made links). Call at start,
/// before the appliance (or an install) touches the models directory; must not run concurrently
/// with an install. Returns what was removed.
pub fn recover(models_dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let rd = match fs::read_dir(models_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(ModelsError::io("list", models_dir, e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| ModelsError::io("list", models_dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(STAGING_PREFIX) || name.ends_with(".new") {
            remove_path(&entry.path())?;
            removed.push(entry.path());
        }
    }
    Ok(removed)
}

/// Install a bundle directory or `.fdbundle` file into `models_dir` (see the module docs).
pub fn install(
    src: &Path,
    models_dir: &Path,
    trusted: &[VerifyingKey],
    now: OffsetDateTime,
) -> Result<InstalledBundle> {
    install_with_status(src, models_dir, trusted, now).map(|(b, _)| b)
}

/// [`install`], also saying whether anything changed.
pub fn install_with_status(
    src: &Path,
    models_dir: &Path,
    trusted: &[VerifyingKey],
    now: OffsetDateTime,
) -> Result<(InstalledBundle, InstallStatus)> {
    let bundles = models_dir.join(BUNDLES_DIR);
    fs::create_dir_all(&bundles).map_err(|e| ModelsError::io("create directory", &bundles, e))?;
    recover(models_dir)?;
    // A current bundle that no longer verifies must not block installing a good one (that is how
    // it gets repaired), so it counts as "nothing installed".
    let installed = InstalledBundle::current(models_dir, trusted).ok();

    let (staging, manifest_bytes, sig_bytes) = if src.is_dir() {
        let (mb, sb) = read_manifest_pair(src)?;
        // Cheap checks first so a refused bundle costs no copying.
        let (m, _) = verify_manifest(&mb, &sb, trusted)?;
        if let Some(done) = check_version_and_expiry(&m, installed.as_ref(), now)? {
            return Ok((done, InstallStatus::AlreadyInstalled));
        }
        let staging = models_dir.join(format!("{STAGING_PREFIX}{}", m.bundle_version));
        fs::create_dir_all(&staging)
            .map_err(|e| ModelsError::io("create directory", &staging, e))?;
        let res = (|| {
            for e in &m.models {
                let from = src.join(&e.file);
                if !from.is_file() {
                    return Err(ModelsError::FileMissing {
                        file: e.file.clone(),
                    });
                }
                copy_synced(&from, &staging.join(&e.file))?;
            }
            // Write the exact bytes that were verified, not a re-read of the source.
            write_synced(&staging.join(MANIFEST_FILE), &mb)?;
            write_synced(&staging.join(SIGNATURE_FILE), &sb)
        })();
        if let Err(e) = res {
            let _ = remove_path(&staging);
            return Err(e);
        }
        (staging, mb, sb)
    } else {
        let staging = models_dir.join(format!("{STAGING_PREFIX}incoming"));
        fs::create_dir_all(&staging)
            .map_err(|e| ModelsError::io("create directory", &staging, e))?;
        if let Err(e) = unpack_archive(src, &staging, Some(trusted)) {
            let _ = remove_path(&staging);
            return Err(e);
        }
        match read_manifest_pair(&staging) {
            Ok((mb, sb)) => (staging, mb, sb),
            Err(e) => {
                let _ = remove_path(&staging);
                return Err(e);
            }
        }
    };

    let res = finish_install(
        &staging,
        &manifest_bytes,
        &sig_bytes,
        models_dir,
        installed.as_ref(),
        trusted,
        now,
    );
    if res.is_err() {
        let _ = remove_path(&staging);
    }
    res
}

/// `Ok(Some(current))` when this version is already installed (no-op).
fn check_version_and_expiry(
    m: &Manifest,
    installed: Option<&InstalledBundle>,
    now: OffsetDateTime,
) -> Result<Option<InstalledBundle>> {
    if let Some(cur) = installed {
        // Same version: a no-op, unless the installed copy is damaged, in which case it is replaced.
        if m.bundle_version == cur.version() && cur.verify_files().is_ok() {
            return Ok(Some(cur.clone()));
        }
        if m.bundle_version < cur.version() {
            return Err(ModelsError::Downgrade {
                offered: m.bundle_version,
                installed: cur.version(),
            });
        }
    }
    if now >= m.expires {
        return Err(ModelsError::Expired {
            expires: fmt_time(m.expires),
        });
    }
    Ok(None)
}

fn finish_install(
    staging: &Path,
    mb: &[u8],
    sb: &[u8],
    models_dir: &Path,
    installed: Option<&InstalledBundle>,
    trusted: &[VerifyingKey],
    now: OffsetDateTime,
) -> Result<(InstalledBundle, InstallStatus)> {
    // Verified again on the staged copy: this is what will run.
    let (m, _) = verify_manifest(mb, sb, trusted)?;
    if let Some(done) = check_version_and_expiry(&m, installed, now)? {
        return Ok((done, InstallStatus::AlreadyInstalled));
    }
    verify_files_in(staging, &m, true)?;
    sync_dir(staging);

    let rel = format!("{BUNDLES_DIR}/{}", m.bundle_version);
    let final_dir = models_dir.join(&rel);
    // A leftover of the same version (e.g. rolled back from earlier) is replaced by the verified copy.
    remove_path(&final_dir)?;
    fs::rename(staging, &final_dir)
        .map_err(|e| ModelsError::io("move staged bundle to", &final_dir, e))?;
    sync_dir(&models_dir.join(BUNDLES_DIR));

    let old_current = fs::read_link(models_dir.join(CURRENT)).ok();
    switch_link(models_dir, CURRENT, Path::new(&rel))?;
    if let Some(old) = old_current.filter(|o| o != Path::new(&rel)) {
        switch_link(models_dir, PREVIOUS, &old)?;
    }
    prune(models_dir)?;
    let b = InstalledBundle::open(&models_dir.join(CURRENT), trusted)?;
    Ok((b, InstallStatus::Installed))
}

/// Point `<models>/<name>` at `target` atomically: a new symlink renamed over the old one.
fn switch_link(models_dir: &Path, name: &str, target: &Path) -> Result<()> {
    let tmp = models_dir.join(format!("{name}.new"));
    remove_path(&tmp)?;
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, &tmp)
        .map_err(|e| ModelsError::io("create symlink", &tmp, e))?;
    #[cfg(not(unix))]
    compile_error!("bundle installation needs symlinks (the appliance runs Linux)");
    let link = models_dir.join(name);
    fs::rename(&tmp, &link).map_err(|e| ModelsError::io("switch symlink", &link, e))?;
    sync_dir(models_dir);
    Ok(())
}

/// Delete installed bundles that neither `current` nor `previous` points to.
fn prune(models_dir: &Path) -> Result<()> {
    let keep: Vec<PathBuf> = [CURRENT, PREVIOUS]
        .iter()
        .filter_map(|n| fs::read_link(models_dir.join(n)).ok())
        .filter_map(|t| t.file_name().map(PathBuf::from))
        .collect();
    let dir = models_dir.join(BUNDLES_DIR);
    let rd = fs::read_dir(&dir).map_err(|e| ModelsError::io("list", &dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| ModelsError::io("list", &dir, e))?;
        if !keep.iter().any(|k| k.as_os_str() == entry.file_name()) {
            remove_path(&entry.path())?;
        }
    }
    Ok(())
}

/// Switch back to the previous bundle (fully re-verified first); the bundle rolled back from becomes
/// the new `previous`, so a second rollback undoes the first.
pub fn rollback(models_dir: &Path, trusted: &[VerifyingKey]) -> Result<InstalledBundle> {
    recover(models_dir)?;
    let prev = InstalledBundle::previous(models_dir, trusted)?;
    prev.verify_files()?;
    let prev_target = fs::read_link(models_dir.join(PREVIOUS))
        .map_err(|e| ModelsError::io("read", models_dir.join(PREVIOUS), e))?;
    let cur_target = fs::read_link(models_dir.join(CURRENT)).ok();
    switch_link(models_dir, CURRENT, &prev_target)?;
    match cur_target {
        Some(t) => switch_link(models_dir, PREVIOUS, &t)?,
        None => remove_path(&models_dir.join(PREVIOUS))?,
    }
    InstalledBundle::open(&models_dir.join(CURRENT), trusted)
}
