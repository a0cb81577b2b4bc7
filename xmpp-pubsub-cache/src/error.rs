//! Errors of the cache.

use thiserror::Error;

/// A query the cache refuses: every mistake in a [`crate::Query`] gives one of these, never a raw
/// database error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The field (a built-in column or the first segment of a parsed path) is not known to the cache or
    /// to any registered analyser.
    #[error("unknown field `{field}`")]
    UnknownField {
        /// The field as given.
        field: String,
    },
    /// A parsed path that does not follow the path grammar (`name(.name|[index])*`).
    #[error("invalid path `{path}`: {reason}")]
    InvalidPath {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An operator name that does not exist.
    #[error("unknown operator `{op}`")]
    UnknownOperator {
        /// The operator as given.
        op: String,
    },
    /// The operator does not apply to the field's type (e.g. `overlap` on a date).
    #[error("operator `{op}` does not apply to `{field}` ({field_type})")]
    OperatorNotApplicable {
        /// The field.
        field: String,
        /// The operator.
        op: String,
        /// The field's type.
        field_type: &'static str,
    },
    /// The value has the wrong type for the field and operator.
    #[error("wrong value for `{field}` {op}: expected {expected}")]
    WrongValueType {
        /// The field.
        field: String,
        /// The operator.
        op: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The full-text query is not valid FTS5 query syntax.
    #[error("full-text query syntax error: {message}")]
    FtsSyntax {
        /// What SQLite's FTS5 said (it names the token, never the SQL).
        message: String,
    },
    /// Ordering by rank without a full-text query.
    #[error("ordering by rank needs a full-text query")]
    RankWithoutFts,
    /// A cursor that is malformed or was made for another query.
    #[error("invalid cursor")]
    InvalidCursor,
    /// Too many values, filters or orderings, or a too-long string.
    #[error("query too large: {what}")]
    TooLarge {
        /// What went over the limit.
        what: &'static str,
    },
}

/// Errors of the cache.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The query was refused.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The node is not in the cache.
    #[error("node not in the cache: {service} {node}")]
    NodeNotFound {
        /// The service.
        service: String,
        /// The node.
        node: String,
    },
    /// The item is not in the cache.
    #[error("item not in the cache: {item}")]
    ItemNotFound {
        /// The item id.
        item: String,
    },
    /// The database file was written by a newer version of this crate.
    #[error("database schema version {found} is newer than this crate's {supported}")]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Latest version known here.
        supported: i64,
    },
    /// The storage backend failed (I/O, corruption, locking...).
    #[error("storage error: {0}")]
    Storage(String),
    /// An XMPP operation failed during sync.
    #[error(transparent)]
    Xmpp(#[from] xmpp_social::Error),
    /// A payload could not be parsed.
    #[error(transparent)]
    Parse(#[from] xmpp_social::ParseError),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl From<rusqlite::Error> for CacheError {
    fn from(e: rusqlite::Error) -> Self {
        CacheError::Storage(e.to_string())
    }
}

/// Result with [`CacheError`].
pub type Result<T, E = CacheError> = std::result::Result<T, E>;
