//! IT subcommands of `frontdesk`: practice import, listings, database key/backup/restore/export.
//!
//! Wiring (main.rs): add `#[command(flatten)] Admin(admin::AdminCommand)` to the top-level
//! `Command` enum and call `admin::run(cmd, Path::new(admin::DEFAULT_DATA_DIR))`. Every leaf
//! command takes `--data-dir DIR`, which overrides that default.
//!
//! Listings print PHI to the terminal of an authorised IT person; each listing writes an audit row
//! with actor "cli".

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use fd_store::chrono::{NaiveDate, TimeZone, Utc};
use fd_store::{Actor, CallPage, Store};

pub const DEFAULT_DATA_DIR: &str = "/var/lib/frontdesk";

#[derive(Debug, Clone, Args)]
pub struct DataDir {
    /// Data directory holding frontdesk.db and keys/ [default: /var/lib/frontdesk]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub dir: DataDir,
    /// Print JSON (one array) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Maximum number of rows.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Practice configuration (hours, appointment types, existing schedule).
    #[command(subcommand)]
    Practice(PracticeCommand),
    /// Appointments in the encrypted store.
    #[command(subcommand)]
    Appointments(AppointmentsCommand),
    /// Call history, newest first.
    #[command(subcommand)]
    Calls(CallsCommand),
    /// Messages taken for staff, newest first.
    #[command(subcommand)]
    Messages(MessagesCommand),
    /// Database maintenance: key rotation, backup, restore, export, retention purge, check.
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Debug, Subcommand)]
pub enum PracticeCommand {
    /// Import (or re-import) a practice file; safe to repeat, never duplicates appointments.
    Import {
        /// The practice file (practice.toml format).
        #[arg(value_name = "PRACTICE.toml")]
        file: PathBuf,
        #[command(flatten)]
        dir: DataDir,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppointmentsCommand {
    /// List appointments from a date on (default: today), in time order.
    List {
        #[command(flatten)]
        list: ListArgs,
        /// First local date to show (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        from: Option<NaiveDate>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CallsCommand {
    /// List calls, newest first.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
    /// Show one call's transcript with per-turn latencies (ASR, TTS, first reply audio).
    Show {
        /// Call id (from `frontdesk calls list`).
        id: i64,
        #[command(flatten)]
        dir: DataDir,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// List messages, newest first.
    List {
        #[command(flatten)]
        list: ListArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Rotate the database key (rewrites keys/db.key; back up the new key file afterwards).
    Rekey {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Write an encrypted online backup to OUT (same key as the database: back up keys/db.key too).
    Backup {
        #[arg(value_name = "OUT")]
        out: PathBuf,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Replace the database with the backup IN. Stop the frontdesk service first.
    Restore {
        #[arg(value_name = "IN")]
        input: PathBuf,
        /// Key file the backup was made with, if the key was rotated since.
        #[arg(long, value_name = "FILE")]
        backup_key: Option<PathBuf>,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Export everything in plain JSON and CSV (one file per table) into DIR. Contains PHI.
    Export {
        #[arg(value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        dir: DataDir,
    },
    /// Delete recordings and transcripts older than the retention settings.
    Purge {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Run an integrity check and print the schema version.
    Check {
        #[command(flatten)]
        dir: DataDir,
    },
}

fn pick(dir: &DataDir, default: &Path) -> PathBuf {
    dir.data_dir.clone().unwrap_or_else(|| default.to_path_buf())
}

fn open(dir: &Path) -> Result<Store> {
    // fd-store's errors already tell IT what to do; add which directory was used.
    Store::open(dir).with_context(|| format!("opening the Front Desk store in {}", dir.display()))
}

fn print_json<T: serde::Serialize>(rows: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(rows)?);
    Ok(())
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("-")
}

pub fn run(cmd: AdminCommand, data_dir: &Path) -> Result<()> {
    match cmd {
        AdminCommand::Practice(PracticeCommand::Import { file, dir }) => {
            let mut s = open(&pick(&dir, data_dir))?;
            let r = s.import_practice_file(&file, Actor::Cli)?;
            println!(
                "imported {}: {} appointment types, {} days of hours, {} closures, {} existing appointments added ({} already present)",
                file.display(),
                r.appointment_types,
                r.hours_days,
                r.closures,
                r.existing_added,
                r.existing_already_present
            );
        }
        AdminCommand::Appointments(AppointmentsCommand::List { list, from }) => {
            let s = open(&pick(&list.dir, data_dir))?;
            let tz = s.timezone()?;
            let day = from.unwrap_or_else(|| Utc::now().with_timezone(&tz).date_naive());
            let from_utc = tz
                .from_local_datetime(&day.and_hms_opt(0, 0, 0).context("invalid date")?)
                .earliest()
                .map(|d| d.with_timezone(&Utc));
            let rows = s.list_appointments(from_utc, list.limit, Actor::Cli)?;
            if list.json {
                return print_json(&rows);
            }
            println!("{:>6}  {:16}  {:4}  {:10}  {:22}  patient", "id", "local start", "min", "status", "type");
            for a in rows {
                println!(
                    "{:>6}  {:16}  {:4}  {:10}  {:22}  {}",
                    a.id,
                    a.local_start.format("%Y-%m-%d %H:%M"),
                    (a.end - a.start).num_minutes(),
                    format!("{:?}", a.status).to_lowercase(),
                    a.type_name,
                    a.patient_name
                );
            }
        }
        AdminCommand::Calls(CallsCommand::List { list }) => {
            let s = open(&pick(&list.dir, data_dir))?;
            let rows = s.list_calls(CallPage { before: None, limit: list.limit }, Actor::Cli)?;
            if list.json {
                return print_json(&rows);
            }
            println!("{:>8}  {:20}  {:16}  {:6}  {:12}  summary", "id", "started (UTC)", "caller", "secs", "outcome");
            for c in rows {
                let secs = c.ended_at.map(|e| (e - c.started_at).num_seconds().to_string()).unwrap_or_else(|| "-".into());
                println!(
                    "{:>8}  {:20}  {:16}  {:6}  {:12}  {}",
                    c.id,
                    c.started_at.format("%Y-%m-%d %H:%M:%S"),
                    opt(&c.caller),
                    secs,
                    opt(&c.outcome),
                    opt(&c.summary)
                );
            }
        }
        AdminCommand::Calls(CallsCommand::Show { id, dir, json }) => {
            let s = open(&pick(&dir, data_dir))?;
            let turns = s.call_turns(id, Actor::Cli)?;
            if json {
                return print_json(&turns);
            }
            println!("{:>8}  {:12}  {:>6}  {:>6}  {:>6}  text", "at ms", "speaker", "asr", "tts", "reply");
            let ms = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
            for t in turns {
                println!("{:>8}  {:12}  {:>6}  {:>6}  {:>6}  {}", t.offset_ms, t.speaker, ms(t.asr_ms), ms(t.tts_ms), ms(t.first_rtp_ms), t.text);
            }
        }
        AdminCommand::Messages(MessagesCommand::List { list }) => {
            let s = open(&pick(&list.dir, data_dir))?;
            let rows = s.list_messages(list.limit, Actor::Cli)?;
            if list.json {
                return print_json(&rows);
            }
            println!("{:>6}  {:20}  {:6}  {:16}  {:20}  topic", "id", "created (UTC)", "status", "callback", "name");
            for m in rows {
                println!(
                    "{:>6}  {:20}  {:6}  {:16}  {:20}  {}",
                    m.id,
                    m.created_at.format("%Y-%m-%d %H:%M:%S"),
                    m.status,
                    opt(&m.callback),
                    opt(&m.caller_name),
                    m.topic
                );
            }
        }
        AdminCommand::Db(DbCommand::Rekey { dir }) => {
            let dir = pick(&dir, data_dir);
            let mut s = open(&dir)?;
            s.rekey()?;
            println!(
                "database key rotated; the new key is in {}. Back it up now: older backups need the old key (frontdesk db restore --backup-key).",
                dir.join("keys/db.key").display()
            );
        }
        AdminCommand::Db(DbCommand::Backup { out, dir }) => {
            let s = open(&pick(&dir, data_dir))?;
            s.backup(&out, Actor::Cli)?;
            println!("encrypted backup written to {} (it opens only with the current keys/db.key)", out.display());
        }
        AdminCommand::Db(DbCommand::Restore { input, backup_key, dir }) => {
            let dir = pick(&dir, data_dir);
            Store::restore(&dir, &input, backup_key.as_deref(), std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from).as_deref())?;
            println!("restored {} into {} (previous database kept as frontdesk.db.pre-restore)", input.display(), dir.display());
        }
        AdminCommand::Db(DbCommand::Export { out, dir }) => {
            let s = open(&pick(&dir, data_dir))?;
            let r = s.export(&out, Actor::Cli)?;
            for (t, n) in &r.tables {
                println!("{t:22} {n:>8} rows");
            }
            println!("exported to {} — this directory holds patient data in the clear: protect and delete it when done", out.display());
        }
        AdminCommand::Db(DbCommand::Purge { dir }) => {
            let mut s = open(&pick(&dir, data_dir))?;
            let r = s.purge(Actor::Cli)?;
            println!(
                "purged {} recordings, {} transcript turns, {} call summaries",
                r.recordings_deleted, r.turns_deleted, r.summaries_cleared
            );
        }
        AdminCommand::Db(DbCommand::Check { dir }) => {
            let s = open(&pick(&dir, data_dir))?;
            let ok = s.integrity_ok()?;
            println!("schema version {}, integrity {}", s.schema_version()?, if ok { "ok" } else { "FAILED" });
            if !ok {
                anyhow::bail!("integrity check failed: restore the latest backup (frontdesk db restore)");
            }
        }
    }
    Ok(())
}
