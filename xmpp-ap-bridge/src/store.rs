//! The gateway's persistent state behind one trait, [`GatewayStore`], with a SQLite backend
//! ([`SqliteGatewayStore`]); a PostgreSQL backend for several gateway instances can implement the same
//! trait and pass the same conformance suite (`tests/store.rs`).
//!
//! What is kept: each local actor's signing key; remote actors and their keys (a cache with a fetch
//! time, refreshed by the caller); who follows whom (fediverse followers of XMPP nodes, and XMPP
//! subscribers of fediverse actors); ids of activities already received (inbound de-duplication);
//! the outbound delivery queue with attempts, next try and dead letters; and the mapping between XMPP
//! items and ActivityPub object ids.
//!
//! Methods are synchronous (SQLite calls take microseconds); async code calls them directly or through
//! `spawn_blocking` for bulk work.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

/// Errors of a gateway store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed.
    #[error("gateway store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer version of this crate.
    #[error("gateway store schema version {0} is newer than this software")]
    FutureSchema(i64),
}

/// Result alias of the store.
pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// A remote actor as last fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteActor {
    /// The actor's id (URL).
    pub id: String,
    /// Its inbox.
    pub inbox: String,
    /// Its server's shared inbox, if any.
    pub shared_inbox: Option<String>,
    /// The key id of its main key.
    pub key_id: String,
    /// The public key (SPKI PEM).
    pub public_key_pem: String,
    /// The whole actor document as fetched (JSON).
    pub document: String,
    /// Unix time of the fetch.
    pub fetched_at: i64,
}

/// One queued delivery: a signed POST of `body` to `inbox` on behalf of local actor `signer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The inbox URL.
    pub inbox: String,
    /// The activity (JSON).
    pub body: String,
    /// The local actor's handle whose key signs.
    pub signer: String,
}

/// A delivery taken from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedDelivery {
    /// Queue id.
    pub id: i64,
    /// What to deliver.
    pub delivery: Delivery,
    /// Attempts made so far.
    pub attempts: u32,
}

/// A delivery given up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Queue id.
    pub id: i64,
    /// What could not be delivered.
    pub delivery: Delivery,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub last_error: String,
}

/// Everything the gateway persists. See the module docs.
pub trait GatewayStore: Send + Sync {
    /// The signing key (PKCS#8 PEM) of a local actor.
    fn actor_key(&self, handle: &str) -> StoreResult<Option<String>>;
    /// Saves a local actor's signing key, unless one exists; returns the key in force.
    fn ensure_actor_key(&self, handle: &str, pkcs8_pem: &str) -> StoreResult<String>;

    /// A cached remote actor.
    fn remote_actor(&self, id: &str) -> StoreResult<Option<RemoteActor>>;
    /// Caches (or refreshes) a remote actor.
    fn store_remote_actor(&self, actor: &RemoteActor) -> StoreResult<()>;
    /// Forgets a remote actor (actor `Delete`) and every follow involving it.
    fn delete_remote_actor(&self, id: &str) -> StoreResult<()>;

    /// Records that remote actor `follower` follows local actor `handle`.
    fn add_follower(&self, handle: &str, follower: &str) -> StoreResult<()>;
    /// Removes a follower; returns whether it was one.
    fn remove_follower(&self, handle: &str, follower: &str) -> StoreResult<bool>;
    /// The followers of a local actor, sorted.
    fn followers(&self, handle: &str) -> StoreResult<Vec<String>>;

    /// Records that XMPP entity `jid` follows remote actor `actor` (`accepted` once the Accept came).
    fn set_following(&self, jid: &str, actor: &str, accepted: bool) -> StoreResult<()>;
    /// Removes that follow; returns whether it existed.
    fn remove_following(&self, jid: &str, actor: &str) -> StoreResult<bool>;
    /// Remote actors `jid` follows, with their accepted flag, sorted.
    fn following(&self, jid: &str) -> StoreResult<Vec<(String, bool)>>;
    /// XMPP entities following remote actor `actor`, sorted.
    fn subscribers(&self, actor: &str) -> StoreResult<Vec<String>>;

    /// Records an inbound activity id at time `now`; returns `false` when it was already seen
    /// (a replay or a second delivery: the caller ignores it).
    fn first_sight(&self, activity_id: &str, now: i64) -> StoreResult<bool>;
    /// Forgets activity ids seen before `before`; returns how many.
    fn prune_seen(&self, before: i64) -> StoreResult<usize>;

    /// Queues a delivery due at `due`.
    fn enqueue(&self, delivery: &Delivery, due: i64) -> StoreResult<i64>;
    /// Up to `limit` deliveries due at `now`, oldest first; they are leased until `now + lease` so that
    /// another worker does not take them meanwhile.
    fn take_due(&self, now: i64, lease: i64, limit: usize) -> StoreResult<Vec<QueuedDelivery>>;
    /// A delivery succeeded: it leaves the queue.
    fn complete(&self, id: i64) -> StoreResult<()>;
    /// A delivery failed: retried at `retry_at`, or dead-lettered when `retry_at` is `None`.
    fn fail(&self, id: i64, error: &str, retry_at: Option<i64>) -> StoreResult<()>;
    /// Deliveries waiting (not dead).
    fn pending_count(&self) -> StoreResult<usize>;
    /// Dead letters, oldest first.
    fn dead_letters(&self) -> StoreResult<Vec<DeadLetter>>;

    /// Links an XMPP item (`service`, `node`, `item`) to an ActivityPub object id.
    fn map_item(&self, service: &str, node: &str, item: &str, object_id: &str) -> StoreResult<()>;
    /// The object id of an XMPP item.
    fn object_of(&self, service: &str, node: &str, item: &str) -> StoreResult<Option<String>>;
    /// The XMPP item of an object id.
    fn item_of(&self, object_id: &str) -> StoreResult<Option<(String, String, String)>>;
    /// Remembers the `Announce` (JSON) an XMPP repeat item was federated as, for its `Undo` when the
    /// item is retracted (the entry is gone by then).
    fn record_repeat(
        &self,
        service: &str,
        node: &str,
        item: &str,
        announce: &str,
    ) -> StoreResult<()>;
    /// The `Announce` recorded for a repeat item, forgotten as it is returned.
    fn take_repeat(&self, service: &str, node: &str, item: &str) -> StoreResult<Option<String>>;
}

const SCHEMA_VERSION: i64 = 2;

/// Version 2: the `Announce` of each federated repeat.
const SCHEMA_V2: &str = "
CREATE TABLE IF NOT EXISTS repeats (service TEXT NOT NULL, node TEXT NOT NULL, item TEXT NOT NULL,
    announce TEXT NOT NULL, PRIMARY KEY (service, node, item));
";

const SCHEMA: &str = "
CREATE TABLE actor_keys (handle TEXT PRIMARY KEY, pkcs8_pem TEXT NOT NULL);
CREATE TABLE remote_actors (
    id TEXT PRIMARY KEY, inbox TEXT NOT NULL, shared_inbox TEXT, key_id TEXT NOT NULL,
    public_key_pem TEXT NOT NULL, document TEXT NOT NULL, fetched_at INTEGER NOT NULL);
CREATE TABLE followers (handle TEXT NOT NULL, follower TEXT NOT NULL, PRIMARY KEY (handle, follower));
CREATE INDEX followers_by_follower ON followers (follower);
CREATE TABLE following (jid TEXT NOT NULL, actor TEXT NOT NULL, accepted INTEGER NOT NULL,
    PRIMARY KEY (jid, actor));
CREATE INDEX following_by_actor ON following (actor);
CREATE TABLE seen_activities (id TEXT PRIMARY KEY, seen_at INTEGER NOT NULL);
CREATE INDEX seen_by_time ON seen_activities (seen_at);
CREATE TABLE queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT, inbox TEXT NOT NULL, body TEXT NOT NULL, signer TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, due INTEGER NOT NULL, dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT);
CREATE INDEX queue_due ON queue (dead, due);
CREATE TABLE items (service TEXT NOT NULL, node TEXT NOT NULL, item TEXT NOT NULL,
    object_id TEXT NOT NULL UNIQUE, PRIMARY KEY (service, node, item));
";

/// [`GatewayStore`] in SQLite (WAL; one connection behind a mutex).
#[derive(Debug)]
pub struct SqliteGatewayStore {
    conn: Mutex<Connection>,
}

impl SqliteGatewayStore {
    /// Opens (creating it and its schema if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        Self::init(Connection::open(path)?)
    }

    /// A store in memory (tests).
    pub fn open_in_memory() -> StoreResult<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> StoreResult<Self> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // In-memory databases answer "memory"; both are fine.
        let _: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::FutureSchema(version));
        }
        if version < 1 {
            conn.execute_batch(&format!("BEGIN; {SCHEMA} PRAGMA user_version = 1; COMMIT;"))?;
        }
        if version < 2 {
            conn.execute_batch(&format!(
                "BEGIN; {SCHEMA_V2} PRAGMA user_version = 2; COMMIT;"
            ))?;
        }
        Ok(SqliteGatewayStore {
            conn: Mutex::new(conn),
        })
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (statements are atomic).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn strings(conn: &Connection, sql: &str, arg: &str) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([arg], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl GatewayStore for SqliteGatewayStore {
    fn actor_key(&self, handle: &str) -> StoreResult<Option<String>> {
        Ok(self
            .db()
            .query_row(
                "SELECT pkcs8_pem FROM actor_keys WHERE handle = ?1",
                [handle],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn ensure_actor_key(&self, handle: &str, pkcs8_pem: &str) -> StoreResult<String> {
        let db = self.db();
        db.execute(
            "INSERT OR IGNORE INTO actor_keys (handle, pkcs8_pem) VALUES (?1, ?2)",
            [handle, pkcs8_pem],
        )?;
        Ok(db.query_row(
            "SELECT pkcs8_pem FROM actor_keys WHERE handle = ?1",
            [handle],
            |r| r.get(0),
        )?)
    }

    fn remote_actor(&self, id: &str) -> StoreResult<Option<RemoteActor>> {
        Ok(self
            .db()
            .query_row(
                "SELECT id, inbox, shared_inbox, key_id, public_key_pem, document, fetched_at
                 FROM remote_actors WHERE id = ?1",
                [id],
                |r| {
                    Ok(RemoteActor {
                        id: r.get(0)?,
                        inbox: r.get(1)?,
                        shared_inbox: r.get(2)?,
                        key_id: r.get(3)?,
                        public_key_pem: r.get(4)?,
                        document: r.get(5)?,
                        fetched_at: r.get(6)?,
                    })
                },
            )
            .optional()?)
    }

    fn store_remote_actor(&self, a: &RemoteActor) -> StoreResult<()> {
        self.db().execute(
            "INSERT INTO remote_actors (id, inbox, shared_inbox, key_id, public_key_pem, document,
                 fetched_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO UPDATE SET inbox = ?2, shared_inbox = ?3, key_id = ?4,
                 public_key_pem = ?5, document = ?6, fetched_at = ?7",
            params![
                a.id,
                a.inbox,
                a.shared_inbox,
                a.key_id,
                a.public_key_pem,
                a.document,
                a.fetched_at
            ],
        )?;
        Ok(())
    }

    fn delete_remote_actor(&self, id: &str) -> StoreResult<()> {
        let mut db = self.db();
        let tx = db.transaction()?;
        tx.execute("DELETE FROM remote_actors WHERE id = ?1", [id])?;
        tx.execute("DELETE FROM followers WHERE follower = ?1", [id])?;
        tx.execute("DELETE FROM following WHERE actor = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    fn add_follower(&self, handle: &str, follower: &str) -> StoreResult<()> {
        self.db().execute(
            "INSERT OR IGNORE INTO followers (handle, follower) VALUES (?1, ?2)",
            [handle, follower],
        )?;
        Ok(())
    }

    fn remove_follower(&self, handle: &str, follower: &str) -> StoreResult<bool> {
        Ok(self.db().execute(
            "DELETE FROM followers WHERE handle = ?1 AND follower = ?2",
            [handle, follower],
        )? > 0)
    }

    fn followers(&self, handle: &str) -> StoreResult<Vec<String>> {
        strings(
            &self.db(),
            "SELECT follower FROM followers WHERE handle = ?1 ORDER BY follower",
            handle,
        )
    }

    fn set_following(&self, jid: &str, actor: &str, accepted: bool) -> StoreResult<()> {
        self.db().execute(
            "INSERT INTO following (jid, actor, accepted) VALUES (?1, ?2, ?3)
             ON CONFLICT (jid, actor) DO UPDATE SET accepted = ?3",
            params![jid, actor, accepted],
        )?;
        Ok(())
    }

    fn remove_following(&self, jid: &str, actor: &str) -> StoreResult<bool> {
        Ok(self.db().execute(
            "DELETE FROM following WHERE jid = ?1 AND actor = ?2",
            [jid, actor],
        )? > 0)
    }

    fn following(&self, jid: &str) -> StoreResult<Vec<(String, bool)>> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT actor, accepted FROM following WHERE jid = ?1 ORDER BY actor",
        )?;
        let rows = stmt.query_map([jid], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn subscribers(&self, actor: &str) -> StoreResult<Vec<String>> {
        strings(
            &self.db(),
            "SELECT jid FROM following WHERE actor = ?1 ORDER BY jid",
            actor,
        )
    }

    fn first_sight(&self, activity_id: &str, now: i64) -> StoreResult<bool> {
        Ok(self.db().execute(
            "INSERT OR IGNORE INTO seen_activities (id, seen_at) VALUES (?1, ?2)",
            params![activity_id, now],
        )? == 1)
    }

    fn prune_seen(&self, before: i64) -> StoreResult<usize> {
        Ok(self
            .db()
            .execute("DELETE FROM seen_activities WHERE seen_at < ?1", [before])?)
    }

    fn enqueue(&self, d: &Delivery, due: i64) -> StoreResult<i64> {
        let db = self.db();
        db.execute(
            "INSERT INTO queue (inbox, body, signer, due) VALUES (?1, ?2, ?3, ?4)",
            params![d.inbox, d.body, d.signer, due],
        )?;
        Ok(db.last_insert_rowid())
    }

    fn take_due(&self, now: i64, lease: i64, limit: usize) -> StoreResult<Vec<QueuedDelivery>> {
        let mut db = self.db();
        let tx = db.transaction()?;
        let taken: Vec<QueuedDelivery> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, inbox, body, signer, attempts FROM queue
                 WHERE dead = 0 AND due <= ?1 ORDER BY due, id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![now, limit as i64], |r| {
                Ok(QueuedDelivery {
                    id: r.get(0)?,
                    delivery: Delivery {
                        inbox: r.get(1)?,
                        body: r.get(2)?,
                        signer: r.get(3)?,
                    },
                    attempts: r.get(4)?,
                })
            })?;
            rows.collect::<Result<_, _>>()?
        };
        for q in &taken {
            tx.execute(
                "UPDATE queue SET due = ?2 WHERE id = ?1",
                params![q.id, now.saturating_add(lease)],
            )?;
        }
        tx.commit()?;
        Ok(taken)
    }

    fn complete(&self, id: i64) -> StoreResult<()> {
        self.db().execute("DELETE FROM queue WHERE id = ?1", [id])?;
        Ok(())
    }

    fn fail(&self, id: i64, error: &str, retry_at: Option<i64>) -> StoreResult<()> {
        // Error texts come from remote servers: keep them short.
        let error: String = error.chars().take(500).collect();
        match retry_at {
            Some(at) => self.db().execute(
                "UPDATE queue SET attempts = attempts + 1, due = ?2, last_error = ?3 WHERE id = ?1",
                params![id, at, error],
            )?,
            None => self.db().execute(
                "UPDATE queue SET attempts = attempts + 1, dead = 1, last_error = ?2 WHERE id = ?1",
                params![id, error],
            )?,
        };
        Ok(())
    }

    fn pending_count(&self) -> StoreResult<usize> {
        let n: i64 = self
            .db()
            .query_row("SELECT COUNT(*) FROM queue WHERE dead = 0", [], |r| {
                r.get(0)
            })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn dead_letters(&self) -> StoreResult<Vec<DeadLetter>> {
        let db = self.db();
        let mut stmt = db.prepare_cached(
            "SELECT id, inbox, body, signer, attempts, COALESCE(last_error, '') FROM queue
             WHERE dead = 1 ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(DeadLetter {
                id: r.get(0)?,
                delivery: Delivery {
                    inbox: r.get(1)?,
                    body: r.get(2)?,
                    signer: r.get(3)?,
                },
                attempts: r.get(4)?,
                last_error: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn map_item(&self, service: &str, node: &str, item: &str, object_id: &str) -> StoreResult<()> {
        self.db().execute(
            "INSERT INTO items (service, node, item, object_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (service, node, item) DO UPDATE SET object_id = ?4",
            [service, node, item, object_id],
        )?;
        Ok(())
    }

    fn object_of(&self, service: &str, node: &str, item: &str) -> StoreResult<Option<String>> {
        Ok(self
            .db()
            .query_row(
                "SELECT object_id FROM items WHERE service = ?1 AND node = ?2 AND item = ?3",
                [service, node, item],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn record_repeat(
        &self,
        service: &str,
        node: &str,
        item: &str,
        announce: &str,
    ) -> StoreResult<()> {
        self.db().execute(
            "INSERT INTO repeats (service, node, item, announce) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (service, node, item) DO UPDATE SET announce = ?4",
            [service, node, item, announce],
        )?;
        Ok(())
    }

    fn take_repeat(&self, service: &str, node: &str, item: &str) -> StoreResult<Option<String>> {
        let db = self.db();
        let announce: Option<String> = db
            .query_row(
                "SELECT announce FROM repeats WHERE service = ?1 AND node = ?2 AND item = ?3",
                [service, node, item],
                |r| r.get(0),
            )
            .optional()?;
        if announce.is_some() {
            db.execute(
                "DELETE FROM repeats WHERE service = ?1 AND node = ?2 AND item = ?3",
                [service, node, item],
            )?;
        }
        Ok(announce)
    }

    fn item_of(&self, object_id: &str) -> StoreResult<Option<(String, String, String)>> {
        Ok(self
            .db()
            .query_row(
                "SELECT service, node, item FROM items WHERE object_id = ?1",
                [object_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
    }
}
