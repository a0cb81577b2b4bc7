#![doc = include_str!("../README.md")]

pub mod analyser;
pub mod cache;
pub mod conformance;
pub mod error;
pub mod migrations;
pub mod model;
pub mod query;
pub mod sqlite;
pub mod store;
pub mod sync;

pub use analyser::{Analyser, AnalyserRegistry, Parsed};
pub use cache::{AsyncCache, Cache};
pub use error::{CacheError, QueryError, Result};
pub use model::{
    CachedItem, DecryptedInput, ItemInput, Micros, NodeKey, NodeRecord, NodeSettings,
    PurgeCriteria, PutReport, Stats, SyncState,
};
pub use query::{FieldSchema, FieldType, Filter, Order, Query};
pub use sqlite::SqliteStore;
pub use store::{CacheStore, SearchPage};
pub use sync::{SyncEngine, SyncOptions, SyncReport};
