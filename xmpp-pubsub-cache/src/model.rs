//! The records the cache stores and returns.

use serde::Serialize;
use serde_json::Value;

/// Microseconds since the Unix epoch (UTC): every time in the cache.
pub type Micros = i64;

/// The current time in [`Micros`].
pub fn now_micros() -> Micros {
    chrono::Utc::now().timestamp_micros()
}

/// Identifies a node of one profile: several profiles (accounts) share a store without seeing each
/// other's data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NodeKey {
    /// The profile (usually the account's bare JID).
    pub profile: String,
    /// The pubsub service JID (the owner's bare JID for PEP).
    pub service: String,
    /// The node name.
    pub node: String,
}

impl NodeKey {
    /// A key.
    pub fn new(
        profile: impl Into<String>,
        service: impl Into<String>,
        node: impl Into<String>,
    ) -> Self {
        NodeKey {
            profile: profile.into(),
            service: service.into(),
            node: node.into(),
        }
    }
}

/// Where a node's synchronisation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Not synchronised: only items put explicitly are cached, events are ignored.
    NoSync,
    /// A fetch is running; live events are applied.
    InProgress,
    /// The cache holds the node's items and live events keep it current.
    Completed,
    /// The last sync failed.
    Error,
}

impl SyncState {
    pub(crate) fn as_i64(self) -> i64 {
        match self {
            SyncState::NoSync => 0,
            SyncState::InProgress => 1,
            SyncState::Completed => 2,
            SyncState::Error => 3,
        }
    }

    pub(crate) fn from_i64(v: i64) -> SyncState {
        match v {
            1 => SyncState::InProgress,
            2 => SyncState::Completed,
            3 => SyncState::Error,
            _ => SyncState::NoSync,
        }
    }

    /// Whether live events for the node are cached.
    pub fn accepts_events(self) -> bool {
        matches!(self, SyncState::InProgress | SyncState::Completed)
    }
}

/// Settings of a node that the caller (or the sync engine) knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeSettings {
    /// A PEP node.
    pub pep: bool,
    /// `pubsub#access_model`.
    pub access_model: Option<String>,
    /// `pubsub#publish_model`.
    pub publish_model: Option<String>,
    /// Feature type given by the analyser (`blog`, `comments`, `generic`...).
    pub node_type: Option<String>,
    /// Sub-type given by the analyser.
    pub subtype: Option<String>,
    /// Name of the analyser that recognised the node.
    pub analyser: Option<String>,
    /// We are subscribed to the node.
    pub subscribed: bool,
    /// The node configuration (field var -> values), as JSON.
    pub config: Option<Value>,
    /// Keep at most this many items (oldest by creation are evicted); `None`: the store's default.
    pub max_items: Option<u32>,
}

/// A node as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeRecord {
    /// The key.
    pub key: NodeKey,
    /// The settings.
    pub settings: NodeSettings,
    /// Sync state.
    pub sync_state: SyncState,
    /// When the sync state last changed.
    pub sync_state_at: Option<Micros>,
    /// Why the last sync failed.
    pub sync_error: Option<String>,
    /// When the node was last purged (items observed before are refused).
    pub purged_at: Option<Micros>,
    /// Number of items cached.
    pub item_count: u64,
}

/// An item to store: what the analyser made of a payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ItemInput {
    /// The item id.
    pub item_id: String,
    /// The publisher, when the service tells.
    pub publisher: Option<String>,
    /// The raw payload XML as received (the ciphertext for encrypted items); empty for none.
    pub xml: String,
    /// Parsed data (JSON object), from the analyser.
    pub parsed: Option<Value>,
    /// Plain text for the full-text index (text content only, no markup).
    pub text: String,
    /// Publication date from the payload.
    pub published: Option<Micros>,
    /// Update date from the payload.
    pub updated: Option<Micros>,
    /// Author JID from the payload (indexed).
    pub author: Option<String>,
    /// Tags / categories (indexed).
    pub tags: Vec<String>,
    /// The payload is encrypted.
    pub encrypted: bool,
}

/// The decrypted form of an encrypted item, stored next to its ciphertext.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DecryptedInput {
    /// The plaintext payload XML.
    pub plain_xml: String,
    /// Parsed data of the plaintext.
    pub parsed: Option<Value>,
    /// Text content of the plaintext, for the full-text index.
    pub text: String,
    /// Publication date.
    pub published: Option<Micros>,
    /// Update date.
    pub updated: Option<Micros>,
    /// Author JID.
    pub author: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// The signature was checked.
    pub signature_verified: bool,
}

/// An item as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CachedItem {
    /// The node.
    pub node: NodeKey,
    /// Node type (from the analyser).
    pub node_type: Option<String>,
    /// Node sub-type.
    pub subtype: Option<String>,
    /// The item id.
    pub item_id: String,
    /// The publisher.
    pub publisher: Option<String>,
    /// Parsed data.
    pub parsed: Option<Value>,
    /// Indexed text.
    pub text: String,
    /// Raw payload XML (the ciphertext of an encrypted item), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xml: Option<String>,
    /// Decrypted payload XML, when asked for and known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plain_xml: Option<String>,
    /// Publication date.
    pub published: Option<Micros>,
    /// Update date.
    pub updated: Option<Micros>,
    /// Author JID.
    pub author: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Creation order: within a node the service's order; across nodes, when the cache first saw it.
    pub created: Micros,
    /// When the cache last saw a change of the item.
    pub modified: Micros,
    /// Encrypted payload.
    pub encrypted: bool,
    /// A plaintext is stored.
    pub decrypted: bool,
    /// The signature was checked.
    pub signature_verified: bool,
    /// Full-text rank (lower is better, bm25), in searches with a full-text query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<f64>,
}

/// What a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PutReport {
    /// New items.
    pub inserted: u64,
    /// Existing items changed.
    pub updated: u64,
    /// Items identical to the cached ones.
    pub unchanged: u64,
    /// Refused: older than what the cache holds, than a retraction or than a purge.
    pub stale: u64,
    /// Evicted by the node's item limit.
    pub evicted: u64,
}

/// Counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Nodes.
    pub nodes: u64,
    /// Items.
    pub items: u64,
    /// Encrypted items.
    pub encrypted_items: u64,
    /// Encrypted items with a stored plaintext.
    pub decrypted_items: u64,
    /// Remembered retractions.
    pub tombstones: u64,
    /// Items per node type (`""` for none).
    pub items_by_type: Vec<(String, u64)>,
    /// Nodes per sync state.
    pub nodes_by_state: Vec<(SyncState, u64)>,
    /// Items per profile.
    pub items_by_profile: Vec<(String, u64)>,
}

/// Which items [`crate::CacheStore::purge`] removes: every given criterion must match; empty lists
/// match anything. Purging with no criterion at all is refused by the caller API.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PurgeCriteria {
    /// Profiles.
    pub profiles: Vec<String>,
    /// Services.
    pub services: Vec<String>,
    /// Node names.
    pub nodes: Vec<String>,
    /// Node types.
    pub types: Vec<String>,
    /// Node sub-types.
    pub subtypes: Vec<String>,
    /// Items first seen before.
    pub created_before: Option<Micros>,
    /// Items last changed before.
    pub updated_before: Option<Micros>,
}

impl PurgeCriteria {
    /// No criterion set.
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
            && self.services.is_empty()
            && self.nodes.is_empty()
            && self.types.is_empty()
            && self.subtypes.is_empty()
            && self.created_before.is_none()
            && self.updated_before.is_none()
    }
}
