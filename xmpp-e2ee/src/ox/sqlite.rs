//! [`SqliteOxStore`]: an [`OxStore`] in one SQLite file (feature `sqlite`, on by default).
//!
//! Rows hold [`SecretKey::to_bytes`], [`PublicKey::to_bytes`] and [`NodeSecrets::to_bytes`]. Every
//! write is one transaction. The schema is versioned with `PRAGMA user_version`; a file written by a
//! newer version is refused ([`SqliteOxStoreError::UnsupportedVersion`]). The file holds the secret
//! key and the node secrets: on Unix it is created with mode `0600`, and `secure_delete` is on.

use std::fmt;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::error::OxError;
use super::pgp::{PublicKey, SecretKey};
use super::pubsub::NodeSecrets;
use super::store::OxStore;
use crate::sqlite_util;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = "
CREATE TABLE own_key (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 0),
    data BLOB NOT NULL
);
CREATE TABLE public_keys (
    jid TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (jid, fingerprint)
) WITHOUT ROWID;
CREATE TABLE node_secrets (
    service TEXT NOT NULL,
    node TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (service, node)
) WITHOUT ROWID;
";

/// Errors of [`SqliteOxStore`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteOxStoreError {
    /// SQLite failed (I/O, locking, a file that is not a database...).
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Creating the file or setting its permissions failed.
    #[error("store file: {0}")]
    Io(#[from] std::io::Error),
    /// The file was written by a newer schema than this build knows.
    #[error("the OX store has schema version {found}; this build reads up to {supported}")]
    UnsupportedVersion {
        /// `user_version` of the file.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// A row does not hold what its table should.
    #[error("corrupt row in table {table}: {source}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong with the row.
        #[source]
        source: OxError,
    },
}

type Result<T> = std::result::Result<T, SqliteOxStoreError>;

fn corrupt(table: &'static str) -> impl Fn(OxError) -> SqliteOxStoreError {
    move |source| SqliteOxStoreError::Corrupt { table, source }
}

fn read_error(table: &'static str) -> impl Fn(rusqlite::Error) -> SqliteOxStoreError {
    move |e| match e {
        rusqlite::Error::InvalidColumnType(..) | rusqlite::Error::FromSqlConversionFailure(..) => {
            SqliteOxStoreError::Corrupt {
                table,
                source: OxError::Store("column of the wrong type".to_owned()),
            }
        }
        other => SqliteOxStoreError::Sqlite(other),
    }
}

/// An [`OxStore`] in a SQLite database (one account per file).
pub struct SqliteOxStore {
    conn: Connection,
    path: Option<PathBuf>,
}

impl fmt::Debug for SqliteOxStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteOxStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl sqlite_util::StoreError for SqliteOxStoreError {
    fn unsupported_version(found: i64) -> Self {
        SqliteOxStoreError::UnsupportedVersion {
            found,
            supported: SCHEMA_VERSION,
        }
    }
}

impl SqliteOxStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::init(Some(path.as_ref()))
    }

    /// A store in memory.
    pub fn open_in_memory() -> Result<Self> {
        Self::init(None)
    }

    fn init(path: Option<&Path>) -> Result<Self> {
        Ok(SqliteOxStore {
            conn: sqlite_util::open::<SqliteOxStoreError>(path, SCHEMA_VERSION, SCHEMA_V1)?,
            path: path.map(Path::to_owned),
        })
    }

    /// The file of the store (`None` in memory).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn write(&mut self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<()>) -> Result<()> {
        sqlite_util::write(&mut self.conn, f)
    }
}

impl OxStore for SqliteOxStore {
    type Error = SqliteOxStoreError;

    fn load_own_key(&self) -> Result<Option<SecretKey>> {
        let data: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT data FROM own_key WHERE singleton = 0")?
            .query_row([], |r| r.get(0))
            .optional()
            .map_err(read_error("own_key"))?;
        data.map(|d| SecretKey::from_bytes(&d).map_err(corrupt("own_key")))
            .transpose()
    }

    fn store_own_key(&mut self, key: &SecretKey) -> Result<()> {
        let data = key.to_bytes().map_err(corrupt("own_key"))?;
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO own_key (singleton, data) VALUES (0, ?1)
                 ON CONFLICT (singleton) DO UPDATE SET data = excluded.data",
            )?
            .execute(params![data])?;
            Ok(())
        })
    }

    fn load_public_keys(&self, jid: &str) -> Result<Vec<PublicKey>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT data FROM public_keys WHERE jid = ?1 ORDER BY fingerprint")?;
        let rows = stmt.query_map(params![jid], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for row in rows {
            let data = row.map_err(read_error("public_keys"))?;
            out.push(PublicKey::from_bytes(&data).map_err(corrupt("public_keys"))?);
        }
        Ok(out)
    }

    fn store_public_keys(&mut self, jid: &str, keys: &[PublicKey]) -> Result<()> {
        let mut rows = Vec::new();
        for k in keys {
            rows.push((
                k.fingerprint(),
                k.to_bytes().map_err(corrupt("public_keys"))?,
            ));
        }
        self.write(|tx| {
            tx.prepare_cached("DELETE FROM public_keys WHERE jid = ?1")?
                .execute(params![jid])?;
            let mut insert = tx.prepare_cached(
                "INSERT OR REPLACE INTO public_keys (jid, fingerprint, data) VALUES (?1, ?2, ?3)",
            )?;
            for (fpr, data) in &rows {
                insert.execute(params![jid, fpr, data])?;
            }
            Ok(())
        })
    }

    fn load_node_secrets(&self, service: &str, node: &str) -> Result<Option<NodeSecrets>> {
        let data: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT data FROM node_secrets WHERE service = ?1 AND node = ?2")?
            .query_row(params![service, node], |r| r.get(0))
            .optional()
            .map_err(read_error("node_secrets"))?;
        data.map(|d| NodeSecrets::from_bytes(&d).map_err(corrupt("node_secrets")))
            .transpose()
    }

    fn store_node_secrets(&mut self, secrets: &NodeSecrets) -> Result<()> {
        let data = secrets.to_bytes();
        let service = secrets.service.to_string();
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO node_secrets (service, node, data) VALUES (?1, ?2, ?3)
                 ON CONFLICT (service, node) DO UPDATE SET data = excluded.data",
            )?
            .execute(params![service, secrets.node, data])?;
            Ok(())
        })
    }
}
