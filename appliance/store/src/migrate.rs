//! Forward-only migrations tracked in `PRAGMA user_version`; each step is its own SQL file and runs
//! in its own transaction, so an interrupted upgrade leaves the previous version intact.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::Result;

pub(crate) const MIGRATIONS: &[(u32, &str)] = &[
    (1, include_str!("migrations/0001_core.sql")),
    (2, include_str!("migrations/0002_messages_leads.sql")),
    (3, include_str!("migrations/0003_recordings_usage.sql")),
    (4, include_str!("migrations/0004_lead_notifications.sql")),
];

pub const LATEST_VERSION: u32 = 4;

pub(crate) fn version(conn: &Connection) -> Result<u32> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get::<_, u32>(0))?)
}

/// Apply every migration above the current version up to `target`.
pub(crate) fn migrate_to(conn: &mut Connection, target: u32) -> Result<()> {
    let current = version(conn)?;
    for &(v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current && *v <= target) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the write lock.
        if version(&tx)? >= v {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", v)?;
        tx.commit()?;
    }
    Ok(())
}
