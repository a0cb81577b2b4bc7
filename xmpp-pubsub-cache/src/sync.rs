//! The sync engine: keeps cached nodes equal to the service's over any
//! [`xmpp_social::Connection`].
//!
//! - [`SyncEngine::sync_node`] subscribes (optionally), fetches the whole node (RSM pages when the
//!   service offers them, one request otherwise) and replaces the cached copy. The node is
//!   [`SyncState::InProgress`] meanwhile, [`SyncState::Completed`] after, [`SyncState::Error`] on failure.
//! - [`SyncEngine::run`] applies live notifications (publish, retract, purge, node delete,
//!   configuration) to nodes that are in progress or completed, and resyncs every such node when the
//!   connection's queue lagged (notifications were lost).
//! - Ordering: writes carry the time their data was observed (see [`crate::store`]), so a fetch that
//!   raced with notifications, an update seen before the item's first version, or a retraction of an
//!   item not cached yet (remembered as a tombstone) all end with the service's state, whatever order
//!   they are applied in. A publish with an id retracted earlier is accepted again when it is observed
//!   after the retraction.
//! - [`SyncEngine::get_items`] is the read-through API: from the cache when the node is in sync, else
//!   from the service (and the node gets synchronised).

use std::sync::Arc;
use std::time::Duration;

use jid::Jid;
use xmpp_social::connection::RecvError;
use xmpp_social::pubsub::event::EventError;
use xmpp_social::pubsub::{MaxItems, NodeConfig, PubSubEvent, PubSubExt};
use xmpp_social::Connection;

use crate::cache::AsyncCache;
use crate::error::Result;
use crate::model::{now_micros, CachedItem, NodeKey, NodeSettings, PutReport, SyncState};

/// Options of a [`SyncEngine`].
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// RSM page size.
    pub page_size: usize,
    /// Fetch at most this many items per node (`None`: all; the store's item limit still applies).
    pub fetch_limit: Option<usize>,
    /// Subscribe to nodes before fetching them.
    pub subscribe: bool,
    /// An in-progress sync older than this is considered dead and reset to error.
    pub stale_after: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            page_size: 100,
            fetch_limit: None,
            subscribe: true,
            stale_after: Duration::from_secs(6 * 3600),
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Items the service returned.
    pub fetched: u64,
    /// Writes.
    pub put: PutReport,
    /// Cached items that the service no longer has.
    pub removed: u64,
}

fn config_json(c: &NodeConfig) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in c.iter() {
        m.insert(k.to_owned(), serde_json::json!(v));
    }
    serde_json::Value::Object(m)
}

/// Keeps the cache of one profile (one connection) in sync.
pub struct SyncEngine<C> {
    conn: Arc<C>,
    cache: AsyncCache,
    profile: String,
    own: Jid,
    options: SyncOptions,
}

impl<C> std::fmt::Debug for SyncEngine<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine")
            .field("profile", &self.profile)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<C: Connection + 'static> SyncEngine<C> {
    /// An engine for the connection's account (the profile is its bare JID).
    pub fn new(conn: Arc<C>, cache: AsyncCache, options: SyncOptions) -> Self {
        let own: Jid = conn.jid().to_bare().into();
        SyncEngine {
            profile: own.to_string(),
            own,
            conn,
            cache,
            options,
        }
    }

    /// The profile.
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// The cache.
    pub fn cache(&self) -> &AsyncCache {
        &self.cache
    }

    /// The cache key of a node (`service: None` is the account's PEP service).
    pub fn key(&self, service: Option<&Jid>, node: &str) -> NodeKey {
        let service = service.map_or_else(|| self.own.clone(), |s| s.clone());
        NodeKey::new(self.profile.clone(), service.to_string(), node)
    }

    fn service_jid(&self, key: &NodeKey) -> Option<Jid> {
        if key.service == self.own.as_str() {
            None
        } else {
            Jid::new(&key.service).ok()
        }
    }

    /// Resets this profile's syncs left in progress for longer than [`SyncOptions::stale_after`]
    /// (e.g. by a process that died). Returns how many.
    pub async fn reset_stale(&self) -> Result<u64> {
        let age = i64::try_from(self.options.stale_after.as_micros()).unwrap_or(i64::MAX);
        self.cache
            .reset_stale_syncs(now_micros().saturating_sub(age))
            .await
    }

    /// Subscribes to (optionally) and fetches a node, replacing its cached copy.
    pub async fn sync_node(&self, service: Option<&Jid>, node: &str) -> Result<SyncReport> {
        let key = self.key(service, node);
        let settings = NodeSettings {
            pep: service.is_none() || service.is_some_and(|s| s.node().is_some()),
            ..NodeSettings::default()
        };
        self.cache.ensure_node(key.clone(), settings, None).await?;
        self.cache
            .set_sync_state(key.clone(), SyncState::InProgress, None)
            .await?;
        match self.fetch_into(&key).await {
            Ok(r) => {
                self.cache
                    .set_sync_state(key, SyncState::Completed, None)
                    .await?;
                Ok(r)
            }
            Err(e) => {
                let msg = e.to_string();
                self.cache
                    .set_sync_state(key, SyncState::Error, Some(msg))
                    .await?;
                Err(e)
            }
        }
    }

    async fn fetch_into(&self, key: &NodeKey) -> Result<SyncReport> {
        let service = self.service_jid(key);
        if self.options.subscribe {
            // Owners of PEP nodes get notifications without subscribing; a refusal is not fatal
            // (the node can still be fetched, only live updates will be missing).
            if let Err(e) = self.conn.subscribe(service.as_ref(), &key.node).await {
                tracing::warn!(node = %key.node, service = %key.service, "subscribe failed: {e}");
            }
        }
        if let Ok(config) = self.conn.node_config(service.as_ref(), &key.node).await {
            self.apply_config(key, &config).await?;
        }
        let as_of = now_micros();
        let items = self
            .conn
            .get_all_items(
                service.as_ref(),
                &key.node,
                self.options.page_size,
                self.options.fetch_limit,
            )
            .await?;
        let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
        let fetched = items.len() as u64;
        let put = self.cache.put_items(key.clone(), items, as_of).await?;
        let removed = self.cache.finish_snapshot(key.clone(), ids, as_of).await?;
        Ok(SyncReport {
            fetched,
            put,
            removed,
        })
    }

    async fn apply_config(&self, key: &NodeKey, config: &NodeConfig) -> Result<()> {
        let Some(node) = self.cache.node(key.clone()).await? else {
            return Ok(());
        };
        let mut s = node.settings;
        s.config = Some(config_json(config));
        if let Some(a) = config.get_access_model() {
            s.access_model = Some(a.as_str().to_owned());
        }
        if let Some(p) = config.get_publish_model() {
            s.publish_model = Some(p.as_str().to_owned());
        }
        if let Some(MaxItems::Count(n)) = config.get_max_items() {
            s.max_items = Some(n);
        }
        self.cache.ensure_node(key.clone(), s, None).await?;
        Ok(())
    }

    /// Applies one notification (ignored unless its node is in progress or completed).
    pub async fn apply_event(&self, event: PubSubEvent) -> Result<()> {
        let as_of = now_micros();
        let Some(node) = event.node() else {
            return Ok(());
        };
        let service: Jid = event.service().to_bare().into();
        let key = NodeKey::new(self.profile.clone(), service.to_string(), node);
        let Some(record) = self.cache.node(key.clone()).await? else {
            return Ok(());
        };
        if !record.sync_state.accepts_events() {
            return Ok(());
        }
        match event {
            PubSubEvent::Items { items, .. } => {
                let (with, without): (Vec<_>, Vec<_>) =
                    items.into_iter().partition(|i| i.payload.is_some());
                let mut all = with;
                if !without.is_empty() {
                    // Notifications without payloads (deliver_payloads=false): fetch the items.
                    let ids: Vec<&str> = without.iter().map(|i| i.id.as_str()).collect();
                    let svc = self.service_jid(&key);
                    match self
                        .conn
                        .get_items_by_id(svc.as_ref(), &key.node, &ids)
                        .await
                    {
                        Ok(found) => all.extend(found),
                        Err(e) => {
                            tracing::warn!("could not fetch notified items: {e}; resyncing");
                            return self.sync_node(svc.as_ref(), &key.node).await.map(|_| ());
                        }
                    }
                }
                self.cache.put_items(key, all, as_of).await?;
            }
            PubSubEvent::Retract { ids, .. } => {
                self.cache.retract_items(key, ids, as_of).await?;
            }
            PubSubEvent::Purge { .. } => {
                self.cache.purge_node(key, as_of).await?;
            }
            PubSubEvent::Delete { .. } => {
                self.cache.delete_node(key).await?;
            }
            PubSubEvent::Configuration { config, .. } => match config {
                Some(c) => self.apply_config(&key, &c).await?,
                None => {
                    let svc = self.service_jid(&key);
                    if let Ok(c) = self.conn.node_config(svc.as_ref(), &key.node).await {
                        self.apply_config(&key, &c).await?;
                    }
                }
            },
            _ => {}
        }
        Ok(())
    }

    /// Resyncs every node of this profile that is in progress or completed (after lost events).
    /// Returns how many nodes failed.
    pub async fn resync_all(&self) -> Result<usize> {
        let mut failed = 0;
        for n in self.cache.nodes(Some(self.profile.clone())).await? {
            if n.sync_state.accepts_events() {
                let svc = self.service_jid(&n.key);
                if self.sync_node(svc.as_ref(), &n.key.node).await.is_err() {
                    failed += 1;
                }
            }
        }
        Ok(failed)
    }

    /// Applies notifications until the connection closes. Lost notifications (a lagging queue)
    /// trigger [`SyncEngine::resync_all`]; malformed ones are skipped.
    pub async fn run(&self) -> Result<()> {
        let mut events = self.conn.pubsub_events();
        loop {
            match events.next().await {
                Ok(e) => {
                    if let Err(err) = self.apply_event(e).await {
                        tracing::warn!("could not apply a pubsub event: {err}");
                    }
                }
                Err(EventError::Malformed(e)) => tracing::debug!("malformed notification: {e}"),
                Err(EventError::Recv(RecvError::Lagged(n))) => {
                    tracing::warn!("{n} stanzas lost: resyncing");
                    self.resync_all().await?;
                }
                Err(_) => return Ok(()),
            }
        }
    }

    /// Read-through: the node's items from the cache when it is in sync, else synchronises it first.
    pub async fn get_items(&self, service: Option<&Jid>, node: &str) -> Result<Vec<CachedItem>> {
        let key = self.key(service, node);
        let in_sync = self
            .cache
            .node(key.clone())
            .await?
            .is_some_and(|n| n.sync_state == SyncState::Completed);
        if !in_sync {
            self.sync_node(service, node).await?;
        }
        self.cache.items(key).await
    }
}
