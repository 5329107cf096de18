//! fd-modeltool: the vendor's model-bundle tool (convert Whisper, make keys, build, verify, inspect).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use fd_models::bundle::{self, Bundle, InstalledBundle};
use fd_models::keys;
use fd_models::manifest::Manifest;
use fd_models::ModelsError;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Print to stdout, ignoring a closed pipe (`fd-modeltool inspect | head` must not panic).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! say_raw {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "fd-modeltool",
    version,
    about = "Front Desk model-bundle tool (vendor side)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Convert a CTranslate2 Whisper model (model.bin) to a whisper.cpp ggml file.
    ConvertWhisper {
        /// Directory holding the CTranslate2 model.bin.
        #[arg(long)]
        ct2_dir: PathBuf,
        /// openai-whisper assets directory (mel_filters.npz, gpt2.tiktoken, multilingual.tiktoken).
        #[arg(long)]
        assets_dir: PathBuf,
        /// Output ggml file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Generate an ed25519 signing key pair: PREFIX.key (private, 0600) and PREFIX.pub.
    Keygen {
        /// Path prefix of the two files.
        #[arg(long)]
        out: PathBuf,
        /// Comment stored in the .pub file.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Build and sign the default bundle from the fetched download cache.
    Build {
        /// Pinned sources (models/sources.toml).
        #[arg(long)]
        sources: PathBuf,
        /// Download cache filled by packaging/fetch-models.py (holds files/<id>) [default:
        /// $FRONTDESK_CACHE, else ~/.cache/frontdesk].
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Private signing key file.
        #[arg(long)]
        key: PathBuf,
        /// Bundle version; must be higher than any bundle already shipped.
        #[arg(long)]
        version: u64,
        /// Days until the bundle can no longer be installed.
        #[arg(long, default_value_t = 365)]
        expires_days: i64,
        /// Bundle name recorded in the manifest.
        #[arg(long, default_value = "frontdesk-default")]
        name: String,
        /// Output bundle directory (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Also pack the bundle into this single .fdbundle file.
        #[arg(long)]
        pack: Option<PathBuf>,
    },
    /// Verify a bundle (directory or .fdbundle): signature, manifest rules and every file's hash.
    Verify {
        /// Bundle directory or .fdbundle file.
        bundle: PathBuf,
        /// Trusted public key file (.pub); repeat for several.
        #[arg(long = "trusted-key", required = true)]
        trusted_key: Vec<PathBuf>,
    },
    /// Print a bundle's manifest (not verified unless --trusted-key is given).
    Inspect {
        /// Bundle directory.
        bundle: PathBuf,
        /// Trusted public key file; when given, the signature is checked too.
        #[arg(long = "trusted-key")]
        trusted_key: Vec<PathBuf>,
        /// Print the raw manifest JSON.
        #[arg(long)]
        json: bool,
    },
    /// Install a bundle into an appliance models directory (what `frontdesk models install` does;
    /// here for development and timing).
    Install {
        /// Bundle directory or .fdbundle file.
        bundle: PathBuf,
        /// Appliance models directory (holds bundles/, current, previous).
        #[arg(long)]
        models_dir: PathBuf,
        /// Trusted public key file; repeat for several.
        #[arg(long = "trusted-key", required = true)]
        trusted_key: Vec<PathBuf>,
    },
    /// Load the current bundle of a models directory as the appliance does at start (signature,
    /// then every file's hash) and print how long each step took.
    Check {
        #[arg(long)]
        models_dir: PathBuf,
        #[arg(long = "trusted-key", required = true)]
        trusted_key: Vec<PathBuf>,
    },
    /// Pack a bundle directory into a single .fdbundle file.
    Pack {
        /// Bundle directory.
        bundle: PathBuf,
        /// Output .fdbundle file.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fd-modeltool: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_manifest(m: &Manifest) {
    say!("bundle  {} version {}", m.name, m.bundle_version);
    say!("created {}", m.created.format(&Rfc3339).unwrap_or_default());
    say!("expires {}", m.expires.format(&Rfc3339).unwrap_or_default());
    say!("key     {}", m.key_id);
    for e in &m.models {
        say!(
            "  {:<21} {:<44} {:>11} bytes  sha256 {}  [{}; {}]",
            e.role.as_str(),
            e.file,
            e.size,
            e.sha256,
            e.licence,
            e.source
        );
    }
    say!("total   {:.1} MB", m.total_size() as f64 / 1e6);
}

fn load_keys(paths: &[PathBuf]) -> Result<Vec<ed25519_dalek::VerifyingKey>, ModelsError> {
    paths.iter().map(|p| keys::load_public_key(p)).collect()
}

fn run(cli: Cli) -> Result<(), ModelsError> {
    match cli.cmd {
        Cmd::ConvertWhisper {
            ct2_dir,
            assets_dir,
            out,
        } => {
            let t = Instant::now();
            let (hp, n) = fd_models::convert::convert_whisper(&ct2_dir, &assets_dir, &out)?;
            let (sha, size) = bundle::sha256_file(&out)?;
            say!("{hp:?}");
            say!(
                "wrote {} ({n} tensors, {size} bytes, sha256 {sha}) in {:.2} s",
                out.display(),
                t.elapsed().as_secs_f64()
            );
        }
        Cmd::Keygen { out, comment } => {
            let files = keys::generate_keypair(&out, &comment)?;
            say!("key id {}", files.key_id);
            say!("private {} (keep it secret)", files.private.display());
            say!("public  {}", files.public.display());
        }
        Cmd::Build {
            sources,
            cache,
            key,
            version,
            expires_days,
            name,
            out,
            pack,
        } => {
            let t = Instant::now();
            let sk = keys::load_signing_key(&key)?;
            let cache = cache.unwrap_or_else(default_cache);
            let now = OffsetDateTime::now_utc()
                .replace_nanosecond(0)
                .unwrap_or_else(|_| OffsetDateTime::now_utc());
            let (m, converted) = fd_models::sources::build_default_bundle(
                &sources,
                &cache,
                &sk,
                &fd_models::sources::DefaultBundleOptions {
                    name,
                    bundle_version: version,
                    expires_days,
                    now,
                },
                &out,
            )?;
            print_manifest(&m);
            say!(
                "built {} in {:.2} s (converted files {})",
                out.display(),
                t.elapsed().as_secs_f64(),
                if converted {
                    "made now"
                } else {
                    "reused from cache"
                }
            );
            if let Some(p) = pack {
                Bundle::pack(&out, &p)?;
                say!("packed {}", p.display());
            }
        }
        Cmd::Verify {
            bundle: path,
            trusted_key,
        } => {
            let trusted = load_keys(&trusted_key)?;
            let t = Instant::now();
            let (dir, _tmp) = unpacked(&path, Some(&trusted))?;
            let (m, id) = bundle::verify_dir(&dir, &trusted)?;
            let b = InstalledBundle::open(&dir, &trusted)?;
            let now = OffsetDateTime::now_utc();
            say!(
                "OK: {} version {} signed by {id}; {} files, {:.1} MB, all hashes match ({:.2} s)",
                m.name,
                b.version(),
                m.models.len(),
                m.total_size() as f64 / 1e6,
                t.elapsed().as_secs_f64()
            );
            if now >= m.expires {
                say!(
                    "WARNING: expired at {}; appliances will refuse to install it",
                    m.expires.format(&Rfc3339).unwrap_or_default()
                );
            }
        }
        Cmd::Inspect {
            bundle: path,
            trusted_key,
            json,
        } => {
            let (dir, _tmp) = unpacked(&path, None)?;
            let bytes = std::fs::read(dir.join(bundle::MANIFEST_FILE))
                .map_err(|e| ModelsError::io_public("read", dir.join(bundle::MANIFEST_FILE), e))?;
            let m = if trusted_key.is_empty() {
                say!("(signature NOT checked: pass --trusted-key to check it)");
                Manifest::from_bytes(&bytes)?
            } else {
                let sig = std::fs::read(dir.join(bundle::SIGNATURE_FILE)).unwrap_or_default();
                let (m, id) = bundle::verify_manifest(&bytes, &sig, &load_keys(&trusted_key)?)?;
                say!("(signature OK, key {id}; file hashes not checked: use `verify`)");
                m
            };
            if json {
                say_raw!("{}", String::from_utf8_lossy(&bytes));
            } else {
                print_manifest(&m);
            }
        }
        Cmd::Install {
            bundle: path,
            models_dir,
            trusted_key,
        } => {
            let trusted = load_keys(&trusted_key)?;
            let t = Instant::now();
            let (b, status) = bundle::install_with_status(
                &path,
                &models_dir,
                &trusted,
                OffsetDateTime::now_utc(),
            )?;
            say!(
                "{:?}: version {} at {} ({:.2} s)",
                status,
                b.version(),
                b.dir().display(),
                t.elapsed().as_secs_f64()
            );
        }
        Cmd::Check {
            models_dir,
            trusted_key,
        } => {
            let trusted = load_keys(&trusted_key)?;
            let t = Instant::now();
            let removed = bundle::recover(&models_dir)?;
            let b = InstalledBundle::current(&models_dir, &trusted)?;
            let t_load = t.elapsed();
            b.verify_files()?;
            let t_all = t.elapsed();
            say!(
                "current version {} ({:.1} MB); removed {} leftovers; load+signature {:.1} ms; all hashes {:.2} s",
                b.version(),
                b.manifest().total_size() as f64 / 1e6,
                removed.len(),
                t_load.as_secs_f64() * 1e3,
                (t_all - t_load).as_secs_f64()
            );
            say!(
                "{}",
                serde_json::to_string_pretty(&b.model_paths()).unwrap_or_default()
            );
        }
        Cmd::Pack { bundle: dir, out } => {
            Bundle::pack(&dir, &out)?;
            say!("packed {}", out.display());
        }
    }
    Ok(())
}

/// A directory to read the bundle from: the bundle itself, or a temporary unpacking of a .fdbundle.
fn unpacked(
    path: &Path,
    trusted: Option<&[ed25519_dalek::VerifyingKey]>,
) -> Result<(PathBuf, Option<TempDir>), ModelsError> {
    if path.is_dir() {
        return Ok((path.to_owned(), None));
    }
    let tmp = TempDir::new()?;
    bundle::unpack_archive(path, &tmp.0, trusted)?;
    Ok((tmp.0.clone(), Some(tmp)))
}

struct TempDir(PathBuf);
impl TempDir {
    fn new() -> Result<Self, ModelsError> {
        let p = std::env::temp_dir().join(format!("fd-modeltool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p)
            .map_err(|e| ModelsError::io_public("create directory", p.clone(), e))?;
        Ok(Self(p))
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn default_cache() -> PathBuf {
    if let Some(c) = std::env::var_os("FRONTDESK_CACHE") {
        return PathBuf::from(c);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache").join("frontdesk")
}
