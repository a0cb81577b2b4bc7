//! Where OX state lives: the own secret key, the known public keys of other accounts and the
//! XEP-0473 node secrets. [`MemoryOxStore`] keeps them in memory; a persistent backend stores
//! [`SecretKey::to_bytes`], [`PublicKey::to_bytes`] and [`NodeSecrets::to_bytes`].

use std::collections::BTreeMap;
use std::convert::Infallible;

use super::pgp::{PublicKey, SecretKey};
use super::pubsub::NodeSecrets;

/// Storage of OX keys and node secrets. Keys are bare JIDs as strings.
pub trait OxStore {
    /// The backend's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The own secret key, if one was stored.
    fn load_own_key(&self) -> Result<Option<SecretKey>, Self::Error>;
    /// Replaces the own secret key.
    fn store_own_key(&mut self, key: &SecretKey) -> Result<(), Self::Error>;
    /// The known public keys of `jid`.
    fn load_public_keys(&self, jid: &str) -> Result<Vec<PublicKey>, Self::Error>;
    /// Replaces the known public keys of `jid`.
    fn store_public_keys(&mut self, jid: &str, keys: &[PublicKey]) -> Result<(), Self::Error>;
    /// The secrets of a node.
    fn load_node_secrets(
        &self,
        service: &str,
        node: &str,
    ) -> Result<Option<NodeSecrets>, Self::Error>;
    /// Replaces the secrets of a node.
    fn store_node_secrets(&mut self, secrets: &NodeSecrets) -> Result<(), Self::Error>;
}

/// An in-memory [`OxStore`].
#[derive(Debug, Default, Clone)]
pub struct MemoryOxStore {
    own: Option<SecretKey>,
    public: BTreeMap<String, Vec<PublicKey>>,
    nodes: BTreeMap<(String, String), NodeSecrets>,
}

impl MemoryOxStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl OxStore for MemoryOxStore {
    type Error = Infallible;

    fn load_own_key(&self) -> Result<Option<SecretKey>, Infallible> {
        Ok(self.own.clone())
    }

    fn store_own_key(&mut self, key: &SecretKey) -> Result<(), Infallible> {
        self.own = Some(key.clone());
        Ok(())
    }

    fn load_public_keys(&self, jid: &str) -> Result<Vec<PublicKey>, Infallible> {
        Ok(self.public.get(jid).cloned().unwrap_or_default())
    }

    fn store_public_keys(&mut self, jid: &str, keys: &[PublicKey]) -> Result<(), Infallible> {
        self.public.insert(jid.to_owned(), keys.to_vec());
        Ok(())
    }

    fn load_node_secrets(
        &self,
        service: &str,
        node: &str,
    ) -> Result<Option<NodeSecrets>, Infallible> {
        Ok(self
            .nodes
            .get(&(service.to_owned(), node.to_owned()))
            .cloned())
    }

    fn store_node_secrets(&mut self, secrets: &NodeSecrets) -> Result<(), Infallible> {
        self.nodes.insert(
            (secrets.service.to_string(), secrets.node.clone()),
            secrets.clone(),
        );
        Ok(())
    }
}
