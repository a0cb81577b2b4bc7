//! The SQLite store (bundled SQLite with FTS5 and JSON1), in WAL mode.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};

use crate::error::{CacheError, QueryError, Result};
use crate::migrations::MIGRATIONS;
use crate::model::{
    CachedItem, DecryptedInput, ItemInput, Micros, NodeKey, NodeRecord, NodeSettings,
    PurgeCriteria, PutReport, Stats, SyncState,
};
use crate::query::{Column, CompiledQuery, Condition, FieldType, Op, OrderKey, Scalar, Target};
use crate::store::{CacheStore, SearchPage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Read every full-text match and sort.
    No,
    /// Collect the matching ids, walk the date index.
    IdSet,
    /// Walk the date index, check each row.
    CheckEach,
}

/// Items kept per node when neither the node nor the store sets a limit.
pub const DEFAULT_MAX_ITEMS: u32 = 10_000;

/// Options of a [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Items kept per node without a node-specific limit.
    pub default_max_items: u32,
    /// How long to wait for a lock held by another connection.
    pub busy_timeout: Duration,
    /// A full-text query matching at least this many items counts as frequent: searches ordered by
    /// a date then walk the date index instead of reading and sorting every match (see `search`).
    pub frequent_term: u32,
    /// A full-text query matching at least this many items counts as very frequent: the date index
    /// walk then checks each row against the full-text index instead of collecting the matches.
    pub very_frequent_term: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            default_max_items: DEFAULT_MAX_ITEMS,
            busy_timeout: Duration::from_secs(10),
            frequent_term: 4_000,
            very_frequent_term: 40_000,
        }
    }
}

/// A [`CacheStore`] in one SQLite database (file or memory). Calls are serialised on one connection.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    options: SqliteOptions,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Unicode lower-casing, for case-insensitive comparisons (SQLite's own `lower` is ASCII-only).
pub fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// Converts a `LIKE` pattern (`%`, `_`, `\` escapes) to a case-sensitive `GLOB` pattern.
fn like_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => out.push('*'),
            '_' => out.push('?'),
            '\\' => match chars.next() {
                Some(n) => push_glob_literal(&mut out, n),
                None => push_glob_literal(&mut out, '\\'),
            },
            c => push_glob_literal(&mut out, c),
        }
    }
    out
}

fn push_glob_literal(out: &mut String, c: char) {
    match c {
        '*' | '?' | '[' => {
            out.push('[');
            out.push(c);
            out.push(']');
        }
        c => out.push(c),
    }
}

impl SqliteStore {
    /// Opens (or creates) a database file, in WAL mode, and migrates it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// [`SqliteStore::open`] with options.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(options.busy_timeout)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL + NORMAL: a committed transaction survives a process crash; only a power loss may undo
        // the last ones.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // 32 MiB of page cache (the default is 2 MiB).
        conn.pragma_update(None, "cache_size", -32_768)?;
        Self::init(conn, options)
    }

    /// A private in-memory database.
    pub fn open_in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?, SqliteOptions::default())
    }

    /// [`SqliteStore::open_in_memory`] with options.
    pub fn open_in_memory_with(options: SqliteOptions) -> Result<Self> {
        Self::init(Connection::open_in_memory()?, options)
    }

    fn init(mut conn: Connection, options: SqliteOptions) -> Result<Self> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.create_scalar_function(
            "ufold",
            1,
            FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
            |ctx| {
                Ok(match ctx.get_raw(0) {
                    rusqlite::types::ValueRef::Text(t) => Some(fold(&String::from_utf8_lossy(t))),
                    _ => None,
                })
            },
        )?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            options,
        })
    }

    /// The schema version (number of migrations applied).
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Runs `PRAGMA integrity_check` and FTS5's own check of the full-text index against the items;
    /// `Ok(())` when both pass.
    pub fn integrity_check(&self) -> Result<()> {
        let conn = self.lock();
        let r: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if r != "ok" {
            return Err(CacheError::Storage(format!("integrity check: {r}")));
        }
        conn.execute(
            "INSERT INTO items_fts (items_fts, rank) VALUES ('integrity-check', 1)",
            [],
        )?;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back on drop).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = MIGRATIONS.len() as i64;
    if version > latest {
        return Err(CacheError::SchemaTooNew {
            found: version,
            supported: latest,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

struct NodeRow {
    id: i64,
    max_items: Option<u32>,
    purged_at: Option<Micros>,
}

fn node_row(tx: &Connection, key: &NodeKey) -> Result<NodeRow> {
    tx.prepare_cached(
        "SELECT id, max_items, purged_at FROM nodes WHERE profile = ?1 AND service = ?2 AND node = ?3",
    )?
    .query_row(params![key.profile, key.service, key.node], |r| {
        Ok(NodeRow {
            id: r.get(0)?,
            max_items: r.get(1)?,
            purged_at: r.get(2)?,
        })
    })
    .optional()?
    .ok_or_else(|| CacheError::NodeNotFound {
        service: key.service.clone(),
        node: key.node.clone(),
    })
}

fn write_tags(
    tx: &Transaction<'_>,
    item: i64,
    tags: &[String],
    published: Option<Micros>,
) -> Result<()> {
    tx.prepare_cached("DELETE FROM item_tags WHERE item = ?1")?
        .execute([item])?;
    let mut st = tx.prepare_cached(
        "INSERT OR IGNORE INTO item_tags (item, tag, tag_folded, published) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for t in tags {
        st.execute(params![item, t, fold(t), published])?;
    }
    Ok(())
}

const NODE_COLUMNS: &str = "n.profile, n.service, n.node, n.pep, n.access_model, n.publish_model, \
    n.type, n.subtype, n.analyser, n.subscribed, n.config, n.max_items, n.sync_state, \
    n.sync_state_at, n.sync_error, n.purged_at, (SELECT count(*) FROM items WHERE node_id = n.id)";

fn read_node(r: &rusqlite::Row<'_>) -> rusqlite::Result<NodeRecord> {
    let config: Option<String> = r.get(10)?;
    Ok(NodeRecord {
        key: NodeKey::new(
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ),
        settings: NodeSettings {
            pep: r.get(3)?,
            access_model: r.get(4)?,
            publish_model: r.get(5)?,
            node_type: r.get(6)?,
            subtype: r.get(7)?,
            analyser: r.get(8)?,
            subscribed: r.get(9)?,
            config: config.and_then(|c| serde_json::from_str(&c).ok()),
            max_items: r.get(11)?,
        },
        sync_state: SyncState::from_i64(r.get(12)?),
        sync_state_at: r.get(13)?,
        sync_error: r.get(14)?,
        purged_at: r.get(15)?,
        item_count: r.get::<_, i64>(16)?.max(0) as u64,
    })
}

const ITEM_COLUMNS: &str = "n.profile, n.service, n.node, n.type, n.subtype, i.item_id, \
    i.publisher, d.parsed, d.text, i.published, i.updated, i.author, i.created, i.modified, \
    i.encrypted, i.decrypted, i.signature_verified, \
    (SELECT json_group_array(tag) FROM item_tags WHERE item = i.id)";

/// Reads an item row: [`ITEM_COLUMNS`], then xml, plain_xml, rank.
fn read_item(r: &rusqlite::Row<'_>) -> rusqlite::Result<CachedItem> {
    let parsed: Option<String> = r.get(7)?;
    let tags: Option<String> = r.get(17)?;
    Ok(CachedItem {
        node: NodeKey::new(
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ),
        node_type: r.get(3)?,
        subtype: r.get(4)?,
        item_id: r.get(5)?,
        publisher: r.get(6)?,
        parsed: parsed.and_then(|p| serde_json::from_str(&p).ok()),
        text: r.get(8)?,
        published: r.get(9)?,
        updated: r.get(10)?,
        author: r.get(11)?,
        created: r.get(12)?,
        modified: r.get(13)?,
        encrypted: r.get(14)?,
        decrypted: r.get(15)?,
        signature_verified: r.get(16)?,
        tags: tags
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
        xml: r.get(18)?,
        plain_xml: r.get(19)?,
        rank: r.get(20)?,
    })
}

fn scalar_value(s: &Scalar, ignore_case: bool) -> SqlValue {
    match s {
        Scalar::Text(t) if ignore_case => SqlValue::Text(fold(t)),
        Scalar::Text(t) => SqlValue::Text(t.clone()),
        Scalar::Int(i) => SqlValue::Integer(*i),
        Scalar::Real(f) => SqlValue::Real(*f),
        Scalar::Bool(b) => SqlValue::Integer(i64::from(*b)),
    }
}

fn column_sql(c: Column) -> &'static str {
    match c {
        Column::ItemId => "i.item_id",
        Column::Publisher => "i.publisher",
        Column::Created => "i.created",
        Column::Modified => "i.modified",
        Column::Published => "i.published",
        Column::Updated => "i.updated",
        Column::Author => "i.author",
        Column::Service => "n.service",
        Column::Node => "n.node",
        Column::Encrypted => "i.encrypted",
        Column::Decrypted => "i.decrypted",
        Column::SignatureVerified => "i.signature_verified",
    }
}

/// Appends `?, ?, ...` for `values` to `sql` and the values to `params`.
fn placeholders(
    sql: &mut String,
    params: &mut Vec<SqlValue>,
    values: impl Iterator<Item = SqlValue>,
) {
    let mut first = true;
    for v in values {
        if !first {
            sql.push_str(", ");
        }
        first = false;
        sql.push('?');
        params.push(v);
    }
    if first {
        sql.push_str("NULL");
    }
}

fn render_condition(c: &Condition, sql: &mut String, p: &mut Vec<SqlValue>) {
    let vals = || c.values.iter().map(|v| scalar_value(v, c.ignore_case));
    // List semantics: the tags table, or a JSON array walked with json_each.
    let list_target = matches!(c.target, Target::Tags)
        || (c.field_type == FieldType::TextList)
        || matches!(c.op, Op::Overlap | Op::Disjoint);
    if list_target {
        let negate = matches!(c.op, Op::Ne | Op::NotIn | Op::Disjoint);
        if negate {
            sql.push_str("NOT ");
        }
        match &c.target {
            Target::Tags => {
                // One index, on the folded tag: case-sensitive matches are narrowed from it.
                sql.push_str("i.id IN (SELECT item FROM item_tags WHERE tag_folded IN (");
                placeholders(sql, p, c.values.iter().map(|v| scalar_value(v, true)));
                sql.push(')');
                if !c.ignore_case {
                    sql.push_str(" AND tag IN (");
                    placeholders(sql, p, vals());
                    sql.push(')');
                }
                sql.push(')');
            }
            other => {
                let path = match other {
                    Target::Json(path) => path.clone(),
                    // Other columns are scalar: treat as a one-element list.
                    _ => String::from("$"),
                };
                sql.push_str("EXISTS (SELECT 1 FROM json_each((SELECT parsed FROM item_data WHERE id = i.id), ?) j WHERE ");
                p.push(SqlValue::Text(path));
                sql.push_str(if c.ignore_case {
                    "ufold(j.value)"
                } else {
                    "j.value"
                });
                sql.push_str(" IN (");
                placeholders(sql, p, vals());
                sql.push_str("))");
            }
        }
        return;
    }
    let mut expr = String::new();
    let mut expr_params = Vec::new();
    match &c.target {
        Target::Column(col) => expr.push_str(column_sql(*col)),
        Target::Json(path) => {
            expr.push_str("json_extract((SELECT parsed FROM item_data WHERE id = i.id), ?)");
            expr_params.push(SqlValue::Text(path.clone()));
        }
        Target::Tags => {}
    }
    if c.ignore_case {
        expr = format!("ufold({expr})");
    }
    let mut push_expr = |sql: &mut String, p: &mut Vec<SqlValue>| {
        sql.push_str(&expr);
        p.extend(expr_params.iter().cloned());
    };
    let cmp = |op: &str,
               sql: &mut String,
               p: &mut Vec<SqlValue>,
               push: &mut dyn FnMut(&mut String, &mut Vec<SqlValue>)| {
        sql.push('(');
        push(sql, p);
        sql.push_str(op);
        sql.push_str("?)");
        p.push(scalar_value(&c.values[0], c.ignore_case));
    };
    match c.op {
        Op::Eq => cmp(" = ", sql, p, &mut push_expr),
        Op::Lt => cmp(" < ", sql, p, &mut push_expr),
        Op::Le => cmp(" <= ", sql, p, &mut push_expr),
        Op::Gt => cmp(" > ", sql, p, &mut push_expr),
        Op::Ge => cmp(" >= ", sql, p, &mut push_expr),
        Op::Ne => {
            // A missing field is "not equal".
            sql.push_str("coalesce(");
            cmp(" != ", sql, p, &mut push_expr);
            sql.push_str(", 1)");
        }
        Op::Between => {
            sql.push('(');
            push_expr(sql, p);
            sql.push_str(" BETWEEN ? AND ?)");
            p.push(scalar_value(&c.values[0], c.ignore_case));
            p.push(scalar_value(&c.values[1], c.ignore_case));
        }
        Op::In | Op::NotIn => {
            if c.op == Op::NotIn {
                sql.push_str("coalesce(NOT ");
            }
            sql.push('(');
            push_expr(sql, p);
            sql.push_str(" IN (");
            placeholders(sql, p, vals());
            sql.push_str("))");
            if c.op == Op::NotIn {
                sql.push_str(", 1)");
            }
        }
        Op::Like | Op::NotLike => {
            if c.op == Op::NotLike {
                sql.push_str("coalesce(NOT ");
            }
            let pattern = match &c.values[0] {
                Scalar::Text(t) => t.clone(),
                _ => String::new(),
            };
            sql.push('(');
            push_expr(sql, p);
            if c.ignore_case {
                sql.push_str(" LIKE ? ESCAPE '\\')");
                p.push(SqlValue::Text(fold(&pattern)));
            } else {
                sql.push_str(" GLOB ?)");
                p.push(SqlValue::Text(like_to_glob(&pattern)));
            }
            if c.op == Op::NotLike {
                sql.push_str(", 1)");
            }
        }
        Op::Overlap | Op::Disjoint => {}
    }
}

fn in_list(sql: &mut String, p: &mut Vec<SqlValue>, column: &str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    sql.push_str(" AND ");
    sql.push_str(column);
    sql.push_str(" IN (");
    placeholders(sql, p, values.iter().map(|v| SqlValue::Text(v.clone())));
    sql.push(')');
}

fn map_search_error(e: rusqlite::Error, fts: bool) -> CacheError {
    // Our SQL has a fixed, tested shape and binds every user value, so a plain SQLITE_ERROR (as
    // opposed to I/O, locking or corruption codes) during a full-text search comes from the MATCH
    // expression: FTS5 reports its syntax errors that way.
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        if fts && f.code == rusqlite::ErrorCode::Unknown {
            let message: String = msg
                .as_deref()
                .unwrap_or("invalid full-text query")
                .trim_start_matches("fts5: ")
                .chars()
                .take(200)
                .collect();
            return CacheError::Query(QueryError::FtsSyntax { message });
        }
    }
    CacheError::from(e)
}

impl CacheStore for SqliteStore {
    fn upsert_node(&self, key: &NodeKey, s: &NodeSettings) -> Result<()> {
        let config = s.config.as_ref().map(|c| c.to_string());
        self.lock().execute(
            "INSERT INTO nodes (profile, service, node, pep, access_model, publish_model, type, subtype, \
             analyser, subscribed, config, max_items) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
             ON CONFLICT (profile, service, node) DO UPDATE SET pep = ?4, access_model = ?5, \
             publish_model = ?6, type = ?7, subtype = ?8, analyser = ?9, subscribed = ?10, config = ?11, \
             max_items = ?12",
            params![
                key.profile,
                key.service,
                key.node,
                s.pep,
                s.access_model,
                s.publish_model,
                s.node_type,
                s.subtype,
                s.analyser,
                s.subscribed,
                config,
                s.max_items
            ],
        )?;
        Ok(())
    }

    fn node(&self, key: &NodeKey) -> Result<Option<NodeRecord>> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {NODE_COLUMNS} FROM nodes n WHERE profile = ?1 AND service = ?2 AND node = ?3"
        );
        let r = conn
            .prepare_cached(&sql)?
            .query_row(params![key.profile, key.service, key.node], read_node)
            .optional()?;
        Ok(r)
    }

    fn nodes(&self, profile: Option<&str>) -> Result<Vec<NodeRecord>> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {NODE_COLUMNS} FROM nodes n WHERE ?1 IS NULL OR profile = ?1 \
             ORDER BY profile, service, node"
        );
        let mut st = conn.prepare_cached(&sql)?;
        let rows = st.query_map([profile], read_node)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn delete_node(&self, key: &NodeKey) -> Result<bool> {
        let n = self.lock().execute(
            "DELETE FROM nodes WHERE profile = ?1 AND service = ?2 AND node = ?3",
            params![key.profile, key.service, key.node],
        )?;
        Ok(n > 0)
    }

    fn set_sync_state(&self, key: &NodeKey, state: SyncState, error: Option<&str>) -> Result<()> {
        let n = self.lock().execute(
            "UPDATE nodes SET sync_state = ?4, sync_state_at = ?5, sync_error = ?6 \
             WHERE profile = ?1 AND service = ?2 AND node = ?3",
            params![
                key.profile,
                key.service,
                key.node,
                state.as_i64(),
                crate::model::now_micros(),
                error
            ],
        )?;
        if n == 0 {
            return Err(CacheError::NodeNotFound {
                service: key.service.clone(),
                node: key.node.clone(),
            });
        }
        Ok(())
    }

    fn reset_stale_syncs(&self, older_than: Micros) -> Result<u64> {
        let n = self.lock().execute(
            "UPDATE nodes SET sync_state = ?1, sync_error = 'interrupted sync', sync_state_at = ?3 \
             WHERE sync_state = ?2 AND (sync_state_at IS NULL OR sync_state_at < ?4)",
            params![
                SyncState::Error.as_i64(),
                SyncState::InProgress.as_i64(),
                crate::model::now_micros(),
                older_than
            ],
        )?;
        Ok(n as u64)
    }

    fn put_items(&self, key: &NodeKey, items: &[ItemInput], as_of: Micros) -> Result<PutReport> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let node = node_row(&tx, key)?;
        let mut report = PutReport::default();
        if node.purged_at.is_some_and(|p| as_of <= p) {
            report.stale = items.len() as u64;
            return Ok(report);
        }
        let mut next_created: Micros = {
            let max: Option<Micros> = tx
                .prepare_cached("SELECT max(created) FROM items WHERE node_id = ?1")?
                .query_row([node.id], |r| r.get(0))?;
            max.map_or(as_of, |m| (m + 1).max(as_of))
        };
        let has_tombstones: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM tombstones WHERE node_id = ?1)")?
            .query_row([node.id], |r| r.get(0))?;
        {
            let mut tomb = tx.prepare_cached(
                "SELECT retracted_at FROM tombstones WHERE node_id = ?1 AND item_id = ?2",
            )?;
            let mut del_tomb =
                tx.prepare_cached("DELETE FROM tombstones WHERE node_id = ?1 AND item_id = ?2")?;
            let mut existing = tx.prepare_cached(
                "SELECT i.id, i.as_of, d.xml, i.publisher, i.updated, i.modified FROM items i \
                 JOIN item_data d ON d.id = i.id WHERE i.node_id = ?1 AND i.item_id = ?2",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO items (node_id, item_id, publisher, published, updated, \
                 author, created, modified, as_of, encrypted) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9)",
            )?;
            let mut insert_data = tx.prepare_cached(
                "INSERT INTO item_data (id, xml, parsed, text) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut update = tx.prepare_cached(
                "UPDATE items SET publisher = ?2, published = ?3, \
                 updated = ?4, author = ?5, modified = ?6, as_of = ?7, encrypted = ?8, \
                 decrypted = 0, signature_verified = 0 WHERE id = ?1",
            )?;
            let mut update_data = tx.prepare_cached(
                "UPDATE item_data SET xml = ?2, parsed = ?3, text = ?4, plain_xml = NULL WHERE id = ?1",
            )?;
            let mut touch = tx.prepare_cached("UPDATE items SET as_of = ?2 WHERE id = ?1")?;
            let mut tag_insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO item_tags (item, tag, tag_folded, published) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for it in items {
                let retracted: Option<Micros> = if has_tombstones {
                    tomb.query_row(params![node.id, it.item_id], |r| r.get(0))
                        .optional()?
                } else {
                    None
                };
                if let Some(t) = retracted {
                    if as_of <= t {
                        report.stale += 1;
                        continue;
                    }
                    del_tomb.execute(params![node.id, it.item_id])?;
                }
                let parsed = it.parsed.as_ref().map(|p| p.to_string());
                type Existing = (i64, Micros, String, Option<String>, Option<Micros>, Micros);
                let cur: Option<Existing> = existing
                    .query_row(params![node.id, it.item_id], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    })
                    .optional()?;
                match cur {
                    None => {
                        let created = next_created;
                        next_created += 1;
                        insert.execute(params![
                            node.id,
                            it.item_id,
                            it.publisher,
                            it.published,
                            it.updated,
                            it.author,
                            created,
                            as_of,
                            it.encrypted
                        ])?;
                        let id = tx.last_insert_rowid();
                        insert_data.execute(params![id, it.xml, parsed, it.text])?;
                        for t in &it.tags {
                            tag_insert.execute(params![id, t, fold(t), it.published])?;
                        }
                        report.inserted += 1;
                    }
                    Some((id, cur_as_of, xml, publisher, updated, modified)) => {
                        let older_payload =
                            matches!((it.updated, updated), (Some(new), Some(old)) if new < old);
                        if as_of < cur_as_of || older_payload {
                            report.stale += 1;
                        } else if xml == it.xml && publisher == it.publisher {
                            touch.execute(params![id, as_of])?;
                            report.unchanged += 1;
                        } else {
                            update.execute(params![
                                id,
                                it.publisher,
                                it.published,
                                it.updated,
                                it.author,
                                as_of.max(modified + 1),
                                as_of,
                                it.encrypted
                            ])?;
                            update_data.execute(params![id, it.xml, parsed, it.text])?;
                            write_tags(&tx, id, &it.tags, it.published)?;
                            report.updated += 1;
                        }
                    }
                }
            }
        }
        let limit = i64::from(node.max_items.unwrap_or(self.options.default_max_items));
        let count: i64 = tx
            .prepare_cached("SELECT count(*) FROM items WHERE node_id = ?1")?
            .query_row([node.id], |r| r.get(0))?;
        if count > limit {
            report.evicted = tx.execute(
                "DELETE FROM items WHERE id IN (SELECT id FROM items WHERE node_id = ?1 \
                 ORDER BY created ASC LIMIT ?2)",
                params![node.id, count - limit],
            )? as u64;
        }
        tx.commit()?;
        Ok(report)
    }

    fn retract_items(&self, key: &NodeKey, ids: &[String], as_of: Micros) -> Result<u64> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let node = node_row(&tx, key)?;
        let mut deleted = 0;
        {
            let mut del = tx.prepare_cached(
                "DELETE FROM items WHERE node_id = ?1 AND item_id = ?2 AND as_of <= ?3",
            )?;
            let mut tomb = tx.prepare_cached(
                "INSERT INTO tombstones (node_id, item_id, retracted_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (node_id, item_id) DO UPDATE SET retracted_at = max(retracted_at, ?3)",
            )?;
            for id in ids {
                deleted += del.execute(params![node.id, id, as_of])? as u64;
                tomb.execute(params![node.id, id, as_of])?;
            }
        }
        tx.commit()?;
        Ok(deleted)
    }

    fn purge_node(&self, key: &NodeKey, as_of: Micros) -> Result<u64> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let node = node_row(&tx, key)?;
        let n = tx.execute(
            "DELETE FROM items WHERE node_id = ?1 AND as_of <= ?2",
            params![node.id, as_of],
        )?;
        tx.execute(
            "UPDATE nodes SET purged_at = max(coalesce(purged_at, ?2), ?2) WHERE id = ?1",
            params![node.id, as_of],
        )?;
        tx.execute(
            "DELETE FROM tombstones WHERE node_id = ?1 AND retracted_at <= ?2",
            params![node.id, as_of],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    fn finish_snapshot(&self, key: &NodeKey, present: &[String], as_of: Micros) -> Result<u64> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let node = node_row(&tx, key)?;
        tx.execute_batch("CREATE TEMP TABLE IF NOT EXISTS snapshot_ids (id TEXT PRIMARY KEY)")?;
        tx.execute("DELETE FROM temp.snapshot_ids", [])?;
        {
            let mut ins =
                tx.prepare_cached("INSERT OR IGNORE INTO temp.snapshot_ids VALUES (?1)")?;
            for id in present {
                ins.execute([id])?;
            }
        }
        let n = tx.execute(
            "DELETE FROM items WHERE node_id = ?1 AND as_of < ?2 \
             AND item_id NOT IN (SELECT id FROM temp.snapshot_ids)",
            params![node.id, as_of],
        )?;
        tx.execute(
            "DELETE FROM tombstones WHERE node_id = ?1 AND retracted_at < ?2",
            params![node.id, as_of],
        )?;
        tx.execute("DELETE FROM temp.snapshot_ids", [])?;
        tx.commit()?;
        Ok(n as u64)
    }

    fn set_decrypted(&self, key: &NodeKey, item_id: &str, d: &DecryptedInput) -> Result<()> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let node = node_row(&tx, key)?;
        let id: i64 = tx
            .query_row(
                "SELECT id FROM items WHERE node_id = ?1 AND item_id = ?2",
                params![node.id, item_id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| CacheError::ItemNotFound {
                item: item_id.to_owned(),
            })?;
        tx.execute(
            "UPDATE items SET published = ?2, updated = ?3, author = ?4, encrypted = 1, \
             decrypted = 1, signature_verified = ?5 WHERE id = ?1",
            params![id, d.published, d.updated, d.author, d.signature_verified],
        )?;
        tx.execute(
            "UPDATE item_data SET plain_xml = ?2, parsed = ?3, text = ?4 WHERE id = ?1",
            params![
                id,
                d.plain_xml,
                d.parsed.as_ref().map(|p| p.to_string()),
                d.text
            ],
        )?;
        write_tags(&tx, id, &d.tags, d.published)?;
        tx.commit()?;
        Ok(())
    }

    fn item(&self, key: &NodeKey, item_id: &str) -> Result<Option<CachedItem>> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {ITEM_COLUMNS}, d.xml, d.plain_xml, NULL FROM items i JOIN nodes n ON n.id = i.node_id \
             JOIN item_data d ON d.id = i.id \
             WHERE n.profile = ?1 AND n.service = ?2 AND n.node = ?3 AND i.item_id = ?4"
        );
        let r = conn
            .prepare_cached(&sql)?
            .query_row(
                params![key.profile, key.service, key.node, item_id],
                read_item,
            )
            .optional()?;
        Ok(r)
    }

    fn items(&self, key: &NodeKey) -> Result<Vec<CachedItem>> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {ITEM_COLUMNS}, d.xml, d.plain_xml, NULL FROM items i JOIN nodes n ON n.id = i.node_id \
             JOIN item_data d ON d.id = i.id \
             WHERE n.profile = ?1 AND n.service = ?2 AND n.node = ?3 ORDER BY i.created, i.id"
        );
        let mut st = conn.prepare_cached(&sql)?;
        let rows = st.query_map(params![key.profile, key.service, key.node], read_item)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn search(&self, q: &CompiledQuery) -> Result<SearchPage> {
        let fts = q.fts.is_some();
        let conn = self.lock();
        let by_rank = q.order.iter().any(|(k, _)| *k == OrderKey::Rank);
        // Plan choice for full text + date order: a frequent term matches so many rows that reading
        // them all and sorting costs more than walking the date index newest first and checking each
        // row against the full-text index until the page is full. Probe the match count (bounded).
        let order_index = match q.order.first() {
            Some((OrderKey::Field(Target::Column(c)), _)) => match c {
                Column::Published => Some("items_published"),
                Column::Created => Some("items_created"),
                _ => None,
            },
            _ => None,
        };
        // Plans for full text + date order, by how many items the terms match (probed, bounded):
        // few: read every match and sort; many: collect the matching ids once and walk the date index
        // newest first until the page is full; nearly all: walk the date index and check each row's
        // match (the first rows nearly always match).
        let count = |cap: u32| -> Result<i64> {
            let f = q.fts.as_deref().unwrap_or_default();
            conn.prepare_cached(
                "SELECT count(*) FROM (SELECT 1 FROM items_fts WHERE items_fts MATCH ?1 LIMIT ?2)",
            )
            .and_then(|mut st| st.query_row(params![f, cap], |r| r.get(0)))
            .map_err(|e| map_search_error(e, true))
        };
        let o = &self.options;
        let walk =
            if fts && order_index.is_some() && !by_rank && q.offset + u64::from(q.limit) <= 1_000 {
                // One probe: its cost is proportional to the (capped) number of matches.
                let n = count(o.very_frequent_term.max(o.frequent_term))?;
                if n >= i64::from(o.very_frequent_term) {
                    Walk::CheckEach
                } else if n >= i64::from(o.frequent_term) {
                    Walk::IdSet
                } else {
                    Walk::No
                }
            } else {
                Walk::No
            };
        let drive_by_order = walk != Walk::No;
        let mut sql = String::with_capacity(1024);
        let mut p: Vec<SqlValue> = Vec::new();
        // Phase 1 selects and sorts row ids only (sorting whole rows, or computing their tags, for
        // every match would cost far more); phase 2 reads the page's rows by id.
        sql.push_str("SELECT i.id");
        if drive_by_order {
            sql.push_str(", NULL FROM items i INDEXED BY ");
            sql.push_str(order_index.unwrap_or("items_created"));
        } else if fts {
            // CROSS JOIN keeps the full-text index as the outer loop: without it the planner may
            // walk a date index and run the MATCH once per row, which is slow for rare terms.
            sql.push_str(if by_rank {
                ", items_fts.rank"
            } else {
                ", NULL"
            });
            sql.push_str(" FROM items_fts CROSS JOIN items i ON i.id = items_fts.rowid");
        } else {
            sql.push_str(", NULL FROM items i");
        }
        sql.push_str(" JOIN nodes n ON n.id = i.node_id WHERE 1");
        if let Some(f) = &q.fts {
            if walk == Walk::CheckEach {
                sql.push_str(
                    " AND EXISTS (SELECT 1 FROM items_fts WHERE items_fts MATCH ? AND items_fts.rowid = i.id)",
                );
            } else if walk == Walk::IdSet {
                sql.push_str(" AND i.id IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)");
            } else {
                sql.push_str(" AND items_fts MATCH ?");
            }
            p.push(SqlValue::Text(f.clone()));
        }
        in_list(&mut sql, &mut p, "n.profile", &q.profiles);
        in_list(&mut sql, &mut p, "n.service", &q.services);
        in_list(&mut sql, &mut p, "n.node", &q.nodes);
        in_list(&mut sql, &mut p, "n.type", &q.types);
        in_list(&mut sql, &mut p, "n.subtype", &q.subtypes);
        in_list(&mut sql, &mut p, "i.item_id", &q.item_ids);
        for c in &q.conditions {
            sql.push_str(" AND ");
            render_condition(c, &mut sql, &mut p);
        }
        sql.push_str(" ORDER BY ");
        let mut last_desc = true;
        for (key, desc) in &q.order {
            match key {
                OrderKey::Rank => sql.push_str("items_fts.rank"),
                OrderKey::Field(Target::Column(c)) => sql.push_str(column_sql(*c)),
                OrderKey::Field(Target::Json(path)) => {
                    sql.push_str("json_extract((SELECT parsed FROM item_data WHERE id = i.id), ?)");
                    p.push(SqlValue::Text(path.clone()));
                }
                OrderKey::Field(Target::Tags) => sql.push_str("NULL"),
            }
            sql.push_str(if *desc { " DESC, " } else { " ASC, " });
            last_desc = *desc;
        }
        sql.push_str(if last_desc { "i.id DESC" } else { "i.id ASC" });
        sql.push_str(" LIMIT ? OFFSET ?");
        p.push(SqlValue::Integer(i64::from(q.limit)));
        p.push(SqlValue::Integer(
            i64::try_from(q.offset).unwrap_or(i64::MAX),
        ));
        let mut st = conn
            .prepare_cached(&sql)
            .map_err(|e| map_search_error(e, fts))?;
        let rows = st
            .query_map(params_from_iter(p.iter()), |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<f64>>(1)?))
            })
            .map_err(|e| map_search_error(e, fts))?;
        let ids = rows
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| map_search_error(e, fts))?;
        let payload = if q.with_payload {
            "d.xml, d.plain_xml"
        } else {
            "NULL, NULL"
        };
        let row_sql = format!(
            "SELECT {ITEM_COLUMNS}, {payload}, ?2 FROM items i JOIN nodes n ON n.id = i.node_id \
             JOIN item_data d ON d.id = i.id \
             WHERE i.id = ?1"
        );
        let mut row = conn.prepare_cached(&row_sql)?;
        let mut items = Vec::with_capacity(ids.len());
        for (id, rank) in ids {
            items.push(row.query_row(params![id, rank], read_item)?);
        }
        let next_cursor = q.next_cursor(items.len());
        Ok(SearchPage { items, next_cursor })
    }

    fn purge(&self, c: &PurgeCriteria) -> Result<u64> {
        let mut sql = String::from(
            "DELETE FROM items WHERE id IN (SELECT i.id FROM items i JOIN nodes n ON n.id = i.node_id WHERE 1",
        );
        let mut p = Vec::new();
        in_list(&mut sql, &mut p, "n.profile", &c.profiles);
        in_list(&mut sql, &mut p, "n.service", &c.services);
        in_list(&mut sql, &mut p, "n.node", &c.nodes);
        in_list(&mut sql, &mut p, "n.type", &c.types);
        in_list(&mut sql, &mut p, "n.subtype", &c.subtypes);
        if let Some(t) = c.created_before {
            sql.push_str(" AND i.created < ?");
            p.push(SqlValue::Integer(t));
        }
        if let Some(t) = c.updated_before {
            sql.push_str(" AND i.modified < ?");
            p.push(SqlValue::Integer(t));
        }
        sql.push(')');
        let n = self.lock().execute(&sql, params_from_iter(p.iter()))?;
        Ok(n as u64)
    }

    fn stats(&self) -> Result<Stats> {
        let conn = self.lock();
        let one = |sql: &str| -> Result<u64> {
            Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))?.max(0) as u64)
        };
        let pairs = |sql: &str| -> Result<Vec<(String, u64)>> {
            let mut st = conn.prepare(sql)?;
            let rows = st.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        };
        let states =
            pairs("SELECT CAST(sync_state AS TEXT), count(*) FROM nodes GROUP BY sync_state")?;
        Ok(Stats {
            nodes: one("SELECT count(*) FROM nodes")?,
            items: one("SELECT count(*) FROM items")?,
            encrypted_items: one("SELECT count(*) FROM items WHERE encrypted")?,
            decrypted_items: one("SELECT count(*) FROM items WHERE decrypted")?,
            tombstones: one("SELECT count(*) FROM tombstones")?,
            items_by_type: pairs(
                "SELECT coalesce(n.type, ''), count(*) FROM items i JOIN nodes n ON n.id = i.node_id \
                 GROUP BY 1 ORDER BY 1",
            )?,
            nodes_by_state: states
                .into_iter()
                .map(|(s, n)| (SyncState::from_i64(s.parse().unwrap_or(0)), n))
                .collect(),
            items_by_profile: pairs(
                "SELECT n.profile, count(*) FROM items i JOIN nodes n ON n.id = i.node_id \
                 GROUP BY 1 ORDER BY 1",
            )?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn glob_conversion() {
        assert_eq!(like_to_glob("a%b_c"), "a*b?c");
        assert_eq!(like_to_glob("100\\%*?["), "100%[*][?][[]");
    }
}
