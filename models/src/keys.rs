//! Ed25519 signing keys for model bundles.
//!
//! Files are one-line text so an IT person can read and compare them:
//! - private key (`PREFIX.key`, mode 0600): `fd-ed25519-secret <64 hex seed>`
//! - public key (`PREFIX.pub`): `fd-ed25519 <64 hex public key> <key id> [comment]`
//!
//! The key id is the first 8 bytes of sha256(public key), in hex. Only the hex key is trusted; the id
//! in the file is a convenience and is checked against it.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::{ModelsError, Result};

const SECRET_TAG: &str = "fd-ed25519-secret";
const PUBLIC_TAG: &str = "fd-ed25519";

/// The committed development public key (`models/keys/dev.pub`). Only an appliance started with
/// `--dev` may trust it: its private half is in the repository.
pub const DEV_PUBLIC_KEY: &str = include_str!("../keys/dev.pub");

/// [`DEV_PUBLIC_KEY`] parsed.
pub fn dev_public_key() -> Result<VerifyingKey> {
    parse_public_key(DEV_PUBLIC_KEY, Path::new("models/keys/dev.pub (built in)"))
}

/// The key id of a public key: hex of the first 8 bytes of its sha256.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

fn key_err(path: &Path, reason: impl Into<String>) -> ModelsError {
    ModelsError::KeyFile {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// The text of a `.pub` file for `key`.
pub fn public_key_line(key: &VerifyingKey, comment: &str) -> String {
    let comment = comment.replace(['\n', '\r'], " ");
    format!(
        "{PUBLIC_TAG} {} {} {comment}\n",
        hex::encode(key.as_bytes()),
        key_id(key)
    )
    .replace(" \n", "\n")
}

/// Parse the text of a `.pub` file; `path` names it in errors.
pub fn parse_public_key(text: &str, path: &Path) -> Result<VerifyingKey> {
    let mut it = text.split_whitespace();
    if it.next() != Some(PUBLIC_TAG) {
        return Err(key_err(
            path,
            format!("not a public key file (expected it to start with `{PUBLIC_TAG}`)"),
        ));
    }
    let hexkey = it
        .next()
        .ok_or_else(|| key_err(path, "no key after the tag"))?;
    let bytes: [u8; 32] = hex::decode(hexkey)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| key_err(path, "the key is not 64 hex digits"))?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| key_err(path, "not a valid ed25519 public key"))?;
    if let Some(id) = it.next() {
        if id != key_id(&key) {
            return Err(key_err(
                path,
                format!(
                    "key id {id} does not match the key (its id is {})",
                    key_id(&key)
                ),
            ));
        }
    }
    Ok(key)
}

/// Load a trusted public key from a `.pub` file.
pub fn load_public_key(path: &Path) -> Result<VerifyingKey> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ModelsError::io("read public key", path, e))?;
    parse_public_key(&text, path)
}

/// Load a signing key from a private key file.
pub fn load_signing_key(path: &Path) -> Result<SigningKey> {
    let text =
        std::fs::read_to_string(path).map_err(|e| ModelsError::io("read private key", path, e))?;
    let mut it = text.split_whitespace();
    if it.next() != Some(SECRET_TAG) {
        return Err(key_err(
            path,
            format!("not a private key file (expected it to start with `{SECRET_TAG}`)"),
        ));
    }
    let seed: [u8; 32] = it
        .next()
        .and_then(|h| hex::decode(h).ok())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| key_err(path, "the seed is not 64 hex digits"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Paths written by [`generate_keypair`].
#[derive(Debug, Clone)]
pub struct KeyPairFiles {
    pub private: PathBuf,
    pub public: PathBuf,
    pub key_id: String,
}

/// Generate a new key pair as `PREFIX.key` (0600) and `PREFIX.pub`. Refuses to overwrite either,
/// because overwriting a signing key orphans every appliance that trusts it.
pub fn generate_keypair(prefix: &Path, comment: &str) -> Result<KeyPairFiles> {
    let mut rng = rand::rngs::OsRng;
    let key = SigningKey::generate(&mut rng);
    write_keypair(prefix, &key, comment)
}

/// Write an existing key as a key pair (see [`generate_keypair`]).
pub fn write_keypair(prefix: &Path, key: &SigningKey, comment: &str) -> Result<KeyPairFiles> {
    let private = with_ext(prefix, "key");
    let public = with_ext(prefix, "pub");
    for p in [&private, &public] {
        if p.exists() {
            return Err(key_err(
                p,
                "already exists; refusing to overwrite a key (move it away first)",
            ));
        }
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(&private)
        .map_err(|e| ModelsError::io("create private key", &private, e))?;
    writeln!(f, "{SECRET_TAG} {}", hex::encode(key.to_bytes()))
        .and_then(|_| f.sync_all())
        .map_err(|e| ModelsError::io("write private key", &private, e))?;
    let vk = key.verifying_key();
    std::fs::write(&public, public_key_line(&vk, comment))
        .map_err(|e| ModelsError::io("write public key", &public, e))?;
    Ok(KeyPairFiles {
        private,
        public,
        key_id: key_id(&vk),
    })
}

fn with_ext(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keypair_roundtrip_and_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("vendor");
        let files = generate_keypair(&prefix, "test key").unwrap();
        let sk = load_signing_key(&files.private).unwrap();
        let pk = load_public_key(&files.public).unwrap();
        assert_eq!(sk.verifying_key(), pk);
        assert_eq!(files.key_id, key_id(&pk));
        assert_eq!(files.key_id.len(), 16);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&files.private)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            generate_keypair(&prefix, ""),
            Err(ModelsError::KeyFile { .. })
        ));
    }

    #[test]
    fn committed_dev_key_pair_matches() {
        let sk =
            load_signing_key(&Path::new(env!("CARGO_MANIFEST_DIR")).join("keys/dev.key")).unwrap();
        assert_eq!(sk.verifying_key(), dev_public_key().unwrap());
    }

    #[test]
    fn public_key_with_wrong_id_is_rejected() {
        let sk = SigningKey::from_bytes(&[7; 32]);
        let line = public_key_line(&sk.verifying_key(), "c");
        let id = key_id(&sk.verifying_key());
        let bad = line.replace(&id, "0000000000000000");
        assert!(parse_public_key(&line, Path::new("k.pub")).is_ok());
        assert!(parse_public_key(&bad, Path::new("k.pub")).is_err());
        assert!(parse_public_key("ssh-ed25519 AAAA", Path::new("k.pub")).is_err());
    }
}
