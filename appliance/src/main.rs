//! `frontdesk`: the Front Desk appliance daemon and its command line for IT.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

mod admin;
mod call;
mod clock;
mod config;
mod engines;
mod models_cmd;
mod recording;
mod serve;
mod tools;

/// Front Desk: an AI receptionist that runs entirely inside the practice.
#[derive(Debug, Parser)]
#[command(name = "frontdesk", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the appliance: SIP endpoint, engines, receptionist and web UI.
    Serve(ServeArgs),
    /// Check the installed model bundle and run each engine's health check and a real self-test.
    Doctor(DoctorArgs),
    /// Model bundles: status, install, rollback.
    #[command(subcommand)]
    Models(models_cmd::ModelsCommand),
    #[command(flatten)]
    Admin(admin::AdminCommand),
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub trust: models_cmd::BundleTrust,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory for the encrypted database, keys, recordings and model bundles.
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Configuration file (TOML). Without it, defaults apply (see README "Configuration").
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Seed a fresh data directory from a practice file (the demo practice format).
    #[arg(long, value_name = "PRACTICE.toml")]
    pub practice: Option<PathBuf>,
    /// Install this model bundle (directory) first if it is newer than the installed one.
    #[arg(long, value_name = "BUNDLE")]
    pub bundle: Option<PathBuf>,
    /// SIP listen address (UDP and TCP); overrides `sip.listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub sip_listen: Option<SocketAddr>,
    /// Web UI listen address; overrides `http.listen`.
    #[arg(long, value_name = "ADDR:PORT")]
    pub http_listen: Option<SocketAddr>,
    /// Development mode: trust the dev model-bundle key. Never on a practice's box.
    #[arg(long)]
    pub dev: bool,
    /// Tests and demos only: start the clock at this local time (practice timezone), then run in real time.
    #[arg(long, value_name = "YYYY-MM-DDTHH:MM:SS")]
    pub now: Option<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result: Result<()> = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Doctor(args) => doctor(args),
        Command::Models(cmd) => models_cmd::run(cmd),
        Command::Admin(cmd) => admin::run(cmd, std::path::Path::new(admin::DEFAULT_DATA_DIR)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // anyhow's alternate form prints the whole cause chain on one line.
            eprintln!("frontdesk: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn doctor(args: DoctorArgs) -> Result<()> {
    let bundle = models_cmd::prepare(&args.trust.data_dir, None, &args.trust.keys()?)?;
    println!("model bundle: {} v{} (key {}), all file hashes verified", bundle.manifest().name, bundle.version(), bundle.key_id());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let ok = rt.block_on(async {
        let runtime_dir = tempfile_dir()?;
        let set = engines::EngineSet::start(None, bundle.model_paths(), runtime_dir.clone(), engines::EngineConfig::default()).await?;
        let checks = engines::doctor(&set).await;
        let mut ok = true;
        for c in &checks {
            println!("{}", c.line());
            ok &= c.ok();
        }
        set.shutdown().await;
        let _ = std::fs::remove_dir_all(&runtime_dir);
        anyhow::Ok(ok)
    })?;
    if !ok {
        anyhow::bail!("one or more engines failed their self-test (see above)");
    }
    Ok(())
}

/// A private runtime directory for the doctor's engine sockets.
fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("frontdesk-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
