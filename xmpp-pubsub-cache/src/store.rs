//! The storage trait: everything the cache needs from a database. [`crate::sqlite::SqliteStore`]
//! implements it; a PostgreSQL backend would implement the same trait and prove itself with
//! [`crate::conformance`].
//!
//! Write ordering: every write carries an `as_of` time, when its data was observed (a live event:
//! when it arrived; a fetch: when the request was sent). Stores keep per item the `as_of` of its
//! current version, per node the time of its last purge, and per retracted id a tombstone with the
//! retraction time, and refuse a write whose data is older than any of them. So a fetch that started
//! before a retraction cannot resurrect the item, an older version cannot overwrite a newer one, and
//! the result does not depend on the order in which writes reach the store.

use crate::error::Result;
use crate::model::{
    CachedItem, DecryptedInput, ItemInput, Micros, NodeKey, NodeRecord, NodeSettings,
    PurgeCriteria, PutReport, Stats, SyncState,
};
use crate::query::CompiledQuery;

/// One page of search results.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SearchPage {
    /// The items.
    pub items: Vec<CachedItem>,
    /// Cursor of the next page, if this one was full.
    pub next_cursor: Option<String>,
}

/// A cache backend. All methods are blocking; [`crate::AsyncCache`] runs them off the async runtime.
pub trait CacheStore: Send + Sync {
    /// Creates the node or updates its settings (keeps its items and sync state).
    fn upsert_node(&self, key: &NodeKey, settings: &NodeSettings) -> Result<()>;
    /// A node.
    fn node(&self, key: &NodeKey) -> Result<Option<NodeRecord>>;
    /// The nodes of a profile (all profiles with `None`).
    fn nodes(&self, profile: Option<&str>) -> Result<Vec<NodeRecord>>;
    /// Removes a node and its items and tombstones. Returns whether it existed.
    fn delete_node(&self, key: &NodeKey) -> Result<bool>;
    /// Sets the sync state (and its time; `error` is kept with [`SyncState::Error`]).
    fn set_sync_state(&self, key: &NodeKey, state: SyncState, error: Option<&str>) -> Result<()>;
    /// Moves nodes stuck in [`SyncState::InProgress`] since before `older_than` to
    /// [`SyncState::Error`]. Returns how many.
    fn reset_stale_syncs(&self, older_than: Micros) -> Result<u64>;

    /// Writes items observed at `as_of`, in the service's order (oldest first). Refuses data older
    /// than the cached version, a tombstone or the last purge; applies the node's item limit.
    fn put_items(&self, key: &NodeKey, items: &[ItemInput], as_of: Micros) -> Result<PutReport>;
    /// Retracts items at `as_of`: deletes those not newer, and remembers tombstones for all `ids`.
    /// Returns how many items were deleted.
    fn retract_items(&self, key: &NodeKey, ids: &[String], as_of: Micros) -> Result<u64>;
    /// Empties the node of items not newer than `as_of` and remembers the purge time.
    fn purge_node(&self, key: &NodeKey, as_of: Micros) -> Result<u64>;
    /// Ends a full fetch that started at `as_of` and returned `present` ids: deletes items not in it
    /// and not newer, and forgets tombstones older than `as_of`. Returns how many items were deleted.
    fn finish_snapshot(&self, key: &NodeKey, present: &[String], as_of: Micros) -> Result<u64>;
    /// Stores the plaintext of an encrypted item next to its ciphertext (and re-indexes the text).
    fn set_decrypted(&self, key: &NodeKey, item_id: &str, plain: &DecryptedInput) -> Result<()>;

    /// One item (with payloads).
    fn item(&self, key: &NodeKey, item_id: &str) -> Result<Option<CachedItem>>;
    /// All items of a node in creation order (oldest first), with payloads.
    fn items(&self, key: &NodeKey) -> Result<Vec<CachedItem>>;
    /// Searches.
    fn search(&self, query: &CompiledQuery) -> Result<SearchPage>;
    /// Deletes the items matching `criteria`. Returns how many.
    fn purge(&self, criteria: &PurgeCriteria) -> Result<u64>;
    /// Counts.
    fn stats(&self) -> Result<Stats>;
}
