//! What the SQLite stores ([`crate::omemo::SqliteStore`] and, with `openpgp`, the OX store) share:
//! the file they live in, the connection settings, the versioned schema and write transactions.
//!
//! Both files hold secret keys, so on Unix the file is created with mode `0600` (an existing one is
//! narrowed to `0600`; SQLite gives its `-wal` and `-shm` companions the same mode), `secure_delete`
//! is on and `synchronous = FULL`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

/// The error type of a store: it takes I/O and SQLite errors and says how a file of a newer schema
/// is refused.
pub(crate) trait StoreError: From<std::io::Error> + From<rusqlite::Error> {
    /// The file has schema version `found`, newer than this build knows.
    fn unsupported_version(found: i64) -> Self;
}

/// Creates the file with mode 0600 if missing, and narrows an existing one to 0600.
#[cfg(unix)]
fn prepare_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(())
}

#[cfg(not(unix))]
fn prepare_file(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Opens the database at `path` (prepared by [`prepare_file`]), or one in memory when `None`, sets
/// the connection up (5 s busy timeout, write-ahead log, `synchronous = FULL`, `secure_delete`) and
/// creates `schema` in a new database, marked with `user_version` `version`. A database of another
/// non-zero version is refused with [`StoreError::unsupported_version`].
pub(crate) fn open<E: StoreError>(
    path: Option<&Path>,
    version: i64,
    schema: &str,
) -> Result<Connection, E> {
    let mut conn = match path {
        Some(path) => {
            prepare_file(path)?;
            Connection::open(path)?
        }
        None => Connection::open_in_memory()?,
    };
    conn.busy_timeout(Duration::from_secs(5))?;
    // In-memory databases answer "memory": nothing to check.
    let _mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found == 0 {
        tx.execute_batch(schema)?;
        tx.pragma_update(None, "user_version", version)?;
    } else if found != version {
        return Err(E::unsupported_version(found));
    }
    tx.commit()?;
    Ok(conn)
}

/// Runs `f` in one write transaction of `conn`.
pub(crate) fn write<E: StoreError>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<()>,
) -> Result<(), E> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    f(&tx)?;
    tx.commit()?;
    Ok(())
}
