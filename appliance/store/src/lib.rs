//! Encrypted practice store (SQLCipher), migrations, scheduler, practice import.
//!
//! All PHI lives in one SQLCipher database `<data-dir>/frontdesk.db` (recordings included, as BLOBs:
//! one encrypted file means one key, one backup, and purging a recording is a transactional DELETE).
//! [`Store`] is one connection; open one per thread/task. Every PHI read or write adds an audit row
//! (actor, action, table, record id, time — never the data itself).

/// `Debug` for types that carry PHI: the type name and its row id, never names, numbers or text,
/// so a stray `{:?}` in a log line cannot leak patient data.
#[macro_export]
#[doc(hidden)]
macro_rules! redacted_debug {
    ($t:ident) => {
        impl ::std::fmt::Debug for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(concat!(stringify!($t), " { <PHI redacted> }"))
            }
        }
    };
    ($t:ident, $id:ident) => {
        impl ::std::fmt::Debug for $t {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!(stringify!($t), " {{ ", stringify!($id), ": {}, <PHI redacted> }}"), self.$id)
            }
        }
    };
}

mod admin_ops;
mod error;
mod import;
mod key;
mod migrate;
pub mod practice;
mod records;
pub mod scheduler;
mod schedule_ops;
mod slot_id;
mod store;

pub use admin_ops::{ExportReport, PurgeReport, RekeyStop};
pub use error::{Result, StoreError};
pub use import::ImportReport;
pub use key::{DbKey, KeySource, CREDENTIAL_NAME};
pub use migrate::LATEST_VERSION;
pub use practice::Practice;
pub use records::*;
pub use schedule_ops::*;
pub use slot_id::{SlotId, SlotSigner};
pub use store::{Actor, OpenOptions, Store};

// Re-exported so callers (the CLI) use the same versions without their own dependency.
pub use chrono;
pub use chrono_tz;
