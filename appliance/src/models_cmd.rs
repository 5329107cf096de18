//! Model bundles on the appliance: which keys are trusted, install at start-up, and the
//! `frontdesk models` subcommands for IT.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use ed25519_dalek::VerifyingKey;
use fd_models::bundle::{install_with_status, InstallStatus};
use fd_models::InstalledBundle;

/// Where the bundles are and which keys may sign them (shared by every bundle command).
#[derive(Debug, Args)]
pub struct BundleTrust {
    /// Data directory (its models/ holds the installed bundles).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Also trust the dev key (a development machine only).
    #[arg(long)]
    pub dev: bool,
    /// Directory of trusted vendor public keys.
    #[arg(long, value_name = "DIR", default_value = "/etc/frontdesk/trusted-keys")]
    pub trusted_keys_dir: PathBuf,
}

impl BundleTrust {
    pub fn keys(&self) -> Result<Vec<VerifyingKey>> {
        trusted_keys(&self.trusted_keys_dir, self.dev)
    }
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Show the installed model bundle (version, expiry, models, signing key) and check its files.
    Status {
        #[command(flatten)]
        trust: BundleTrust,
    },
    /// Verify and install a signed bundle (directory or .fdbundle file); the previous one is kept.
    Install {
        bundle: PathBuf,
        #[command(flatten)]
        trust: BundleTrust,
    },
    /// Switch back to the previously installed bundle.
    Rollback {
        #[command(flatten)]
        trust: BundleTrust,
    },
}

pub fn models_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("models")
}

/// The keys a bundle may be signed with: every `*.pub` in the trusted-keys directory, plus the
/// committed dev key only in dev mode (its private half is public).
pub fn trusted_keys(dir: &Path, dev: bool) -> Result<Vec<VerifyingKey>> {
    let mut keys = Vec::new();
    if dir.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read trusted-keys directory {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pub"))
            .collect();
        entries.sort();
        for p in entries {
            keys.push(fd_models::keys::load_public_key(&p)?);
        }
    }
    if dev {
        keys.push(fd_models::keys::dev_public_key()?);
    }
    if keys.is_empty() {
        bail!(
            "no trusted model-bundle keys: put the vendor's public key (*.pub) in {} \
             (or use --dev on a development machine)",
            dir.display()
        );
    }
    Ok(keys)
}

/// Start-up: clean up an interrupted install, install `bundle` if given (and newer), then load the
/// current bundle and verify every file's hash before any engine reads it.
pub fn prepare(data_dir: &Path, bundle: Option<&Path>, trusted: &[VerifyingKey]) -> Result<InstalledBundle> {
    let dir = models_dir(data_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fd_models::bundle::recover(&dir)?;
    if let Some(src) = bundle {
        let (b, status) = install_with_status(src, &dir, trusted, time::OffsetDateTime::now_utc())?;
        match status {
            InstallStatus::Installed => tracing::info!(version = b.version(), "model bundle installed"),
            InstallStatus::AlreadyInstalled => tracing::info!(version = b.version(), "model bundle already installed"),
        }
    }
    let current = InstalledBundle::current(&dir, trusted).context(
        "no usable model bundle is installed: install one with `frontdesk models install BUNDLE` \
         (or start with --bundle)",
    )?;
    current.verify_files()?;
    Ok(current)
}

pub fn run(cmd: ModelsCommand) -> Result<()> {
    match cmd {
        ModelsCommand::Status { trust } => {
            let b = InstalledBundle::current(&models_dir(&trust.data_dir), &trust.keys()?)?;
            let m = b.manifest();
            println!("bundle {} version {} (signed by key {})", m.name, b.version(), b.key_id());
            println!("expires {}", m.expires);
            for e in &m.models {
                println!("  {:<12} {:<48} {}", e.role.to_string(), e.file, &e.sha256[..16]);
            }
            b.verify_files()?;
            println!("all file hashes verified");
        }
        ModelsCommand::Install { bundle, trust } => {
            let trusted = trust.keys()?;
            let dir = models_dir(&trust.data_dir);
            std::fs::create_dir_all(&dir)?;
            fd_models::bundle::recover(&dir)?;
            let (b, status) = install_with_status(&bundle, &dir, &trusted, time::OffsetDateTime::now_utc())?;
            match status {
                InstallStatus::Installed => println!("installed bundle version {}", b.version()),
                InstallStatus::AlreadyInstalled => println!("bundle version {} is already installed", b.version()),
            }
        }
        ModelsCommand::Rollback { trust } => {
            let b = fd_models::rollback(&models_dir(&trust.data_dir), &trust.keys()?)?;
            println!("rolled back to bundle version {}", b.version());
        }
    }
    Ok(())
}
