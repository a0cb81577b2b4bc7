//! [`SqliteStore`]: an [`OmemoStore`] in one SQLite file (feature `sqlite`, on by default).
//!
//! Rows hold the opaque stored forms ([`DeviceKeys::to_bytes`], [`Session::to_bytes`],
//! [`DeviceRecord::to_bytes`]) under their address (profile namespace, bare JID, device id). Every write is
//! one transaction. The schema is versioned with `PRAGMA user_version`; a file written by a newer version
//! of this crate is refused ([`SqliteStoreError::UnsupportedVersion`]) rather than misread.
//!
//! The file holds the device's private keys and ratchet states:
//!
//! * on Unix it is created with mode `0600` (and an existing file is set to `0600` when opened); SQLite
//!   gives its `-wal` and `-shm` companions the same mode;
//! * `secure_delete` is on, so replaced and deleted sessions are overwritten in the database file (old
//!   page images can stay in the write-ahead log until the next checkpoint; dropping the store runs a
//!   truncating checkpoint);
//! * `synchronous = FULL`: a session written after an encryption must survive a crash, or the next
//!   message would reuse a message key.

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::error::OmemoError;
use super::keys::DeviceKeys;
use super::profile::Profile;
use super::session::Session;
use super::store::{DeviceAddress, OmemoStore};
use super::trust::DeviceRecord;
use crate::sqlite_util;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = "
CREATE TABLE own_device (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 0),
    device_id INTEGER NOT NULL,
    keys BLOB NOT NULL
);
CREATE TABLE sessions (
    profile TEXT NOT NULL,
    jid TEXT NOT NULL,
    device_id INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (profile, jid, device_id)
) WITHOUT ROWID;
CREATE TABLE devices (
    profile TEXT NOT NULL,
    jid TEXT NOT NULL,
    device_id INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (profile, jid, device_id)
) WITHOUT ROWID;
";

/// Errors of [`SqliteStore`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteStoreError {
    /// SQLite failed (I/O, locking, a file that is not a database...).
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Creating the file or setting its permissions failed.
    #[error("store file: {0}")]
    Io(#[from] std::io::Error),
    /// The file was written by a newer schema than this build knows.
    #[error("the OMEMO store has schema version {found}; this build reads up to {supported}")]
    UnsupportedVersion {
        /// `user_version` of the file.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// A row does not hold what its table should (bad stored bytes, unknown profile, out-of-range id).
    #[error("corrupt row in table {table}: {source}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong with the row.
        #[source]
        source: OmemoError,
    },
}

type Result<T> = std::result::Result<T, SqliteStoreError>;

/// An [`OmemoStore`] in a SQLite database (one account per file).
pub struct SqliteStore {
    conn: Connection,
    path: Option<PathBuf>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn corrupt(table: &'static str, what: &'static str) -> SqliteStoreError {
    SqliteStoreError::Corrupt {
        table,
        source: OmemoError::CorruptState(what),
    }
}

/// Maps errors of reading a row: a value of the wrong type or range is a corrupt row, the rest SQLite's.
fn read_error(table: &'static str) -> impl Fn(rusqlite::Error) -> SqliteStoreError {
    move |e| match e {
        rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => {
            corrupt(table, "column of the wrong type")
        }
        other => SqliteStoreError::Sqlite(other),
    }
}

fn profile_key(p: Profile) -> &'static str {
    p.namespace()
}

fn device_id(table: &'static str, id: i64) -> Result<u32> {
    u32::try_from(id).map_err(|_| corrupt(table, "device id out of range"))
}

impl sqlite_util::StoreError for SqliteStoreError {
    fn unsupported_version(found: i64) -> Self {
        SqliteStoreError::UnsupportedVersion {
            found,
            supported: SCHEMA_VERSION,
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::init(Some(path.as_ref()))
    }

    /// A store in memory (tests, ephemeral accounts).
    pub fn open_in_memory() -> Result<Self> {
        Self::init(None)
    }

    fn init(path: Option<&Path>) -> Result<Self> {
        Ok(SqliteStore {
            conn: sqlite_util::open::<SqliteStoreError>(path, SCHEMA_VERSION, SCHEMA_V1)?,
            path: path.map(Path::to_owned),
        })
    }

    /// The file of the store (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Runs `f` in one write transaction.
    fn write(&mut self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<()>) -> Result<()> {
        sqlite_util::write(&mut self.conn, f)
    }

    fn load_blob(&self, table: &'static str, address: &DeviceAddress) -> Result<Option<Vec<u8>>> {
        let sql =
            format!("SELECT data FROM {table} WHERE profile = ?1 AND jid = ?2 AND device_id = ?3");
        self.conn
            .prepare_cached(&sql)?
            .query_row(
                params![
                    profile_key(address.profile),
                    address.jid,
                    i64::from(address.device_id)
                ],
                |r| r.get(0),
            )
            .optional()
            .map_err(read_error(table))
    }

    fn store_blob(
        &mut self,
        table: &'static str,
        address: &DeviceAddress,
        data: &[u8],
    ) -> Result<()> {
        let sql = format!(
            "INSERT INTO {table} (profile, jid, device_id, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (profile, jid, device_id) DO UPDATE SET data = excluded.data"
        );
        self.write(|tx| {
            tx.prepare_cached(&sql)?.execute(params![
                profile_key(address.profile),
                address.jid,
                i64::from(address.device_id),
                data
            ])?;
            Ok(())
        })
    }

    fn rows(
        &self,
        table: &'static str,
        profile: Profile,
        jid: &str,
        with_data: bool,
    ) -> Result<Vec<(u32, Vec<u8>)>> {
        let sql = if with_data {
            format!("SELECT device_id, data FROM {table} WHERE profile = ?1 AND jid = ?2 ORDER BY device_id")
        } else {
            format!("SELECT device_id, x'' FROM {table} WHERE profile = ?1 AND jid = ?2 ORDER BY device_id")
        };
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![profile_key(profile), jid], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, data) = row.map_err(read_error(table))?;
            out.push((device_id(table, id)?, data));
        }
        Ok(out)
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Best effort: move everything into the database file and empty the log, so old ratchet states
        // do not linger in it. Another connection may hold the file; then the log stays.
        if self.path.is_some() {
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
}

fn read<T>(
    table: &'static str,
    data: Option<Vec<u8>>,
    parse: impl FnOnce(&[u8]) -> std::result::Result<T, OmemoError>,
) -> Result<Option<T>> {
    data.map(|b| parse(&b).map_err(|source| SqliteStoreError::Corrupt { table, source }))
        .transpose()
}

impl OmemoStore for SqliteStore {
    type Error = SqliteStoreError;

    fn load_own_device(&self) -> Result<Option<(u32, DeviceKeys)>> {
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT device_id, keys FROM own_device WHERE singleton = 0")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(read_error("own_device"))?;
        let Some((id, keys)) = row else {
            return Ok(None);
        };
        let id = device_id("own_device", id)?;
        let keys = DeviceKeys::from_bytes(&keys).map_err(|source| SqliteStoreError::Corrupt {
            table: "own_device",
            source,
        })?;
        Ok(Some((id, keys)))
    }

    fn store_own_device(&mut self, device_id: u32, keys: &DeviceKeys) -> Result<()> {
        let data = keys.to_bytes();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO own_device (singleton, device_id, keys) VALUES (0, ?1, ?2)
                 ON CONFLICT (singleton) DO UPDATE SET device_id = excluded.device_id, keys = excluded.keys",
                params![i64::from(device_id), data],
            )?;
            Ok(())
        })
    }

    fn load_session(&self, address: &DeviceAddress) -> Result<Option<Session>> {
        read(
            "sessions",
            self.load_blob("sessions", address)?,
            Session::from_bytes,
        )
    }

    fn store_session(&mut self, address: &DeviceAddress, session: &Session) -> Result<()> {
        self.store_blob("sessions", address, &session.to_bytes())
    }

    fn delete_session(&mut self, address: &DeviceAddress) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM sessions WHERE profile = ?1 AND jid = ?2 AND device_id = ?3",
                params![
                    profile_key(address.profile),
                    address.jid,
                    i64::from(address.device_id)
                ],
            )?;
            Ok(())
        })
    }

    fn session_devices(&self, profile: Profile, jid: &str) -> Result<Vec<u32>> {
        Ok(self
            .rows("sessions", profile, jid, false)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    fn load_device(&self, address: &DeviceAddress) -> Result<Option<DeviceRecord>> {
        read(
            "devices",
            self.load_blob("devices", address)?,
            DeviceRecord::from_bytes,
        )
    }

    fn store_device(&mut self, address: &DeviceAddress, record: &DeviceRecord) -> Result<()> {
        self.store_blob("devices", address, &record.to_bytes())
    }

    fn devices(&self, profile: Profile, jid: &str) -> Result<Vec<(u32, DeviceRecord)>> {
        self.rows("devices", profile, jid, true)?
            .into_iter()
            .map(|(id, data)| {
                DeviceRecord::from_bytes(&data)
                    .map(|r| (id, r))
                    .map_err(|source| SqliteStoreError::Corrupt {
                        table: "devices",
                        source,
                    })
            })
            .collect()
    }
}
