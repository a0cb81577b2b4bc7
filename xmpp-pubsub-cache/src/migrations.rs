//! Numbered, append-only schema migrations of the SQLite store. Never edit a released entry: add one.
//! `PRAGMA user_version` holds the number of migrations applied.

/// The migrations, in order; entry `n` brings the schema from version `n` to `n + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: nodes, items, tags, tombstones, full-text index.
    r#"
CREATE TABLE nodes (
    id INTEGER PRIMARY KEY,
    profile TEXT NOT NULL,
    service TEXT NOT NULL,
    node TEXT NOT NULL,
    pep INTEGER NOT NULL DEFAULT 0,
    access_model TEXT,
    publish_model TEXT,
    type TEXT,
    subtype TEXT,
    analyser TEXT,
    subscribed INTEGER NOT NULL DEFAULT 0,
    config TEXT,
    max_items INTEGER,
    sync_state INTEGER NOT NULL DEFAULT 0,
    sync_state_at INTEGER,
    sync_error TEXT,
    purged_at INTEGER,
    UNIQUE (profile, service, node)
);
CREATE INDEX nodes_type ON nodes (type, subtype);
CREATE INDEX nodes_sync ON nodes (sync_state, sync_state_at);

CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    node_id INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    item_id TEXT NOT NULL,
    publisher TEXT,
    published INTEGER,
    updated INTEGER,
    author TEXT,
    created INTEGER NOT NULL,
    modified INTEGER NOT NULL,
    as_of INTEGER NOT NULL,
    encrypted INTEGER NOT NULL DEFAULT 0,
    decrypted INTEGER NOT NULL DEFAULT 0,
    signature_verified INTEGER NOT NULL DEFAULT 0,
    UNIQUE (node_id, item_id)
);
-- The bulky part of an item apart, so that filters and sorts on `items` read small rows.
CREATE TABLE item_data (
    id INTEGER PRIMARY KEY REFERENCES items (id) ON DELETE CASCADE,
    xml TEXT NOT NULL,
    plain_xml TEXT,
    parsed TEXT,
    text TEXT NOT NULL
);
CREATE INDEX items_node_created ON items (node_id, created);
CREATE INDEX items_created ON items (created);
CREATE INDEX items_published ON items (published);
CREATE INDEX items_author ON items (author);

CREATE TABLE item_tags (
    item INTEGER NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    tag_folded TEXT NOT NULL,
    published INTEGER,
    PRIMARY KEY (item, tag)
) WITHOUT ROWID;
CREATE INDEX item_tags_folded ON item_tags (tag_folded, published);

CREATE TABLE tombstones (
    node_id INTEGER NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    item_id TEXT NOT NULL,
    retracted_at INTEGER NOT NULL,
    PRIMARY KEY (node_id, item_id)
) WITHOUT ROWID;

CREATE VIRTUAL TABLE items_fts USING fts5 (
    text,
    content = 'item_data',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER items_fts_insert AFTER INSERT ON item_data BEGIN
    INSERT INTO items_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER items_fts_delete AFTER DELETE ON item_data BEGIN
    INSERT INTO items_fts (items_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER items_fts_update AFTER UPDATE OF text ON item_data BEGIN
    INSERT INTO items_fts (items_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO items_fts (rowid, text) VALUES (new.id, new.text);
END;
"#,
];
