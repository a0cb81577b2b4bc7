//! The cache: a store plus the analysers. [`Cache`] is the plain blocking API, [`AsyncCache`] the tokio
//! one over it (every call runs on the blocking pool, never on the async workers).

use std::sync::Arc;

use minidom::Element;
use xmpp_social::pubsub::Item;

use crate::analyser::AnalyserRegistry;
use crate::error::{CacheError, QueryError, Result};
use crate::model::{
    CachedItem, Micros, NodeKey, NodeRecord, NodeSettings, PurgeCriteria, PutReport, Stats,
    SyncState,
};
use crate::query::Query;
use crate::store::{CacheStore, SearchPage};

/// The blocking cache API.
#[derive(Clone)]
pub struct Cache {
    store: Arc<dyn CacheStore>,
    analysers: Arc<AnalyserRegistry>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("analysers", &self.analysers)
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache over `store` with the built-in analysers.
    pub fn new(store: Arc<dyn CacheStore>) -> Self {
        Self::with_analysers(store, AnalyserRegistry::new())
    }

    /// A cache with a custom analyser registry.
    pub fn with_analysers(store: Arc<dyn CacheStore>, analysers: AnalyserRegistry) -> Self {
        Cache {
            store,
            analysers: Arc::new(analysers),
        }
    }

    /// Opens a SQLite file.
    pub fn open_sqlite(path: impl AsRef<std::path::Path>) -> Result<Self> {
        Ok(Self::new(Arc::new(crate::sqlite::SqliteStore::open(path)?)))
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn CacheStore> {
        &self.store
    }

    /// The analysers.
    pub fn analysers(&self) -> &AnalyserRegistry {
        &self.analysers
    }

    /// Creates or updates a node. When `settings` has no type yet, the analyser is chosen by the node
    /// name and `sample` payload.
    pub fn ensure_node(
        &self,
        key: &NodeKey,
        mut settings: NodeSettings,
        sample: Option<&Element>,
    ) -> Result<NodeRecord> {
        let existing = self.store.node(key)?;
        if settings.analyser.is_none() {
            let keep = existing.as_ref().and_then(|n| n.settings.analyser.clone());
            let by_sample = self.analysers.for_node(&key.node, sample);
            // A node first seen empty got the generic analyser: a payload can still refine it.
            let name = match keep {
                Some(k) if k != "generic" || by_sample.name() == "generic" => k,
                _ => by_sample.name().to_owned(),
            };
            if let Some(a) = self.analysers.by_name(&name) {
                settings.node_type = a.node_type().map(str::to_owned);
                settings.subtype = a.subtype(&key.node);
            }
            settings.analyser = Some(name);
        }
        if let Some(old) = &existing {
            settings.max_items = settings.max_items.or(old.settings.max_items);
            settings.config = settings.config.or_else(|| old.settings.config.clone());
            settings.subscribed |= old.settings.subscribed;
        }
        self.store.upsert_node(key, &settings)?;
        self.store
            .node(key)?
            .ok_or_else(|| CacheError::NodeNotFound {
                service: key.service.clone(),
                node: key.node.clone(),
            })
    }

    /// Analyses and writes items observed at `as_of` (service order, oldest first), creating the node
    /// if needed.
    pub fn put_items(&self, key: &NodeKey, items: &[Item], as_of: Micros) -> Result<PutReport> {
        let sample = items.iter().find_map(|i| i.payload.as_ref());
        let node = match self.store.node(key)? {
            Some(n)
                if n.settings
                    .analyser
                    .as_deref()
                    .is_some_and(|a| a != "generic") =>
            {
                n
            }
            Some(n) => self.ensure_node(key, n.settings, sample)?,
            None => self.ensure_node(key, NodeSettings::default(), sample)?,
        };
        let analyser = node
            .settings
            .analyser
            .as_deref()
            .and_then(|n| self.analysers.by_name(n))
            .unwrap_or_else(|| self.analysers.for_node(&key.node, sample));
        let inputs: Vec<_> = items
            .iter()
            .map(|i| self.analysers.to_input(analyser.as_ref(), i))
            .collect();
        self.store.put_items(key, &inputs, as_of)
    }

    /// Stores the decrypted payload of an encrypted item: the plaintext is analysed and indexed, the
    /// ciphertext is kept, and the item is flagged `decrypted` (and `signature_verified` if so).
    pub fn store_decrypted(
        &self,
        key: &NodeKey,
        item_id: &str,
        plaintext: &Element,
        signature_verified: bool,
    ) -> Result<()> {
        let node = self
            .store
            .node(key)?
            .ok_or_else(|| CacheError::NodeNotFound {
                service: key.service.clone(),
                node: key.node.clone(),
            })?;
        let analyser = node
            .settings
            .analyser
            .as_deref()
            .and_then(|n| self.analysers.by_name(n))
            .filter(|a| a.name() != "generic")
            .unwrap_or_else(|| self.analysers.for_node(&key.node, Some(plaintext)));
        let d = self
            .analysers
            .to_decrypted(analyser.as_ref(), plaintext, signature_verified);
        self.store.set_decrypted(key, item_id, &d)
    }

    /// Searches.
    pub fn search(&self, query: &Query) -> Result<SearchPage> {
        let q = query.compile(self.analysers.schema())?;
        self.store.search(&q)
    }

    /// Deletes the items matching `criteria` (refuses empty criteria: use explicit ones).
    pub fn purge(&self, criteria: &PurgeCriteria) -> Result<u64> {
        if criteria.is_empty() {
            return Err(QueryError::TooLarge {
                what: "purge without criteria",
            }
            .into());
        }
        self.store.purge(criteria)
    }

    /// Counts.
    pub fn stats(&self) -> Result<Stats> {
        self.store.stats()
    }

    /// A node.
    pub fn node(&self, key: &NodeKey) -> Result<Option<NodeRecord>> {
        self.store.node(key)
    }

    /// The items of a node, oldest first.
    pub fn items(&self, key: &NodeKey) -> Result<Vec<CachedItem>> {
        self.store.items(key)
    }

    /// One item.
    pub fn item(&self, key: &NodeKey, item_id: &str) -> Result<Option<CachedItem>> {
        self.store.item(key, item_id)
    }

    /// Sets a node's sync state.
    pub fn set_sync_state(
        &self,
        key: &NodeKey,
        state: SyncState,
        error: Option<&str>,
    ) -> Result<()> {
        self.store.set_sync_state(key, state, error)
    }
}

/// The async API: each call runs the blocking [`Cache`] method with `tokio::task::spawn_blocking`.
#[derive(Clone, Debug)]
pub struct AsyncCache {
    inner: Cache,
}

macro_rules! blocking {
    ($self:ident, |$c:ident| $body:expr) => {{
        let $c = $self.inner.clone();
        tokio::task::spawn_blocking(move || $body)
            .await
            .map_err(|e| CacheError::Task(e.to_string()))?
    }};
}

impl AsyncCache {
    /// Wraps a blocking cache.
    pub fn new(inner: Cache) -> Self {
        AsyncCache { inner }
    }

    /// The blocking cache under it.
    pub fn blocking(&self) -> &Cache {
        &self.inner
    }

    /// See [`Cache::ensure_node`].
    pub async fn ensure_node(
        &self,
        key: NodeKey,
        settings: NodeSettings,
        sample: Option<Element>,
    ) -> Result<NodeRecord> {
        blocking!(self, |c| c.ensure_node(&key, settings, sample.as_ref()))
    }

    /// See [`Cache::put_items`].
    pub async fn put_items(
        &self,
        key: NodeKey,
        items: Vec<Item>,
        as_of: Micros,
    ) -> Result<PutReport> {
        blocking!(self, |c| c.put_items(&key, &items, as_of))
    }

    /// See [`CacheStore::retract_items`].
    pub async fn retract_items(
        &self,
        key: NodeKey,
        ids: Vec<String>,
        as_of: Micros,
    ) -> Result<u64> {
        blocking!(self, |c| c.store.retract_items(&key, &ids, as_of))
    }

    /// See [`CacheStore::purge_node`].
    pub async fn purge_node(&self, key: NodeKey, as_of: Micros) -> Result<u64> {
        blocking!(self, |c| c.store.purge_node(&key, as_of))
    }

    /// See [`CacheStore::finish_snapshot`].
    pub async fn finish_snapshot(
        &self,
        key: NodeKey,
        present: Vec<String>,
        as_of: Micros,
    ) -> Result<u64> {
        blocking!(self, |c| c.store.finish_snapshot(&key, &present, as_of))
    }

    /// See [`CacheStore::delete_node`].
    pub async fn delete_node(&self, key: NodeKey) -> Result<bool> {
        blocking!(self, |c| c.store.delete_node(&key))
    }

    /// See [`Cache::set_sync_state`].
    pub async fn set_sync_state(
        &self,
        key: NodeKey,
        state: SyncState,
        error: Option<String>,
    ) -> Result<()> {
        blocking!(self, |c| c.set_sync_state(&key, state, error.as_deref()))
    }

    /// See [`CacheStore::reset_stale_syncs`].
    pub async fn reset_stale_syncs(&self, older_than: Micros) -> Result<u64> {
        blocking!(self, |c| c.store.reset_stale_syncs(older_than))
    }

    /// See [`Cache::node`].
    pub async fn node(&self, key: NodeKey) -> Result<Option<NodeRecord>> {
        blocking!(self, |c| c.node(&key))
    }

    /// See [`CacheStore::nodes`].
    pub async fn nodes(&self, profile: Option<String>) -> Result<Vec<NodeRecord>> {
        blocking!(self, |c| c.store.nodes(profile.as_deref()))
    }

    /// See [`Cache::items`].
    pub async fn items(&self, key: NodeKey) -> Result<Vec<CachedItem>> {
        blocking!(self, |c| c.items(&key))
    }

    /// See [`Cache::item`].
    pub async fn item(&self, key: NodeKey, item_id: String) -> Result<Option<CachedItem>> {
        blocking!(self, |c| c.item(&key, &item_id))
    }

    /// See [`Cache::store_decrypted`].
    pub async fn store_decrypted(
        &self,
        key: NodeKey,
        item_id: String,
        plaintext: Element,
        signature_verified: bool,
    ) -> Result<()> {
        blocking!(self, |c| c.store_decrypted(
            &key,
            &item_id,
            &plaintext,
            signature_verified
        ))
    }

    /// See [`Cache::search`].
    pub async fn search(&self, query: Query) -> Result<SearchPage> {
        blocking!(self, |c| c.search(&query))
    }

    /// See [`Cache::purge`].
    pub async fn purge(&self, criteria: PurgeCriteria) -> Result<u64> {
        blocking!(self, |c| c.purge(&criteria))
    }

    /// See [`Cache::stats`].
    pub async fn stats(&self) -> Result<Stats> {
        blocking!(self, |c| c.stats())
    }
}
