//! OX keys on PEP (XEP-0373 §4, §5): public keys (one data node per key plus the metadata node, open
//! access) and the encrypted secret key backup (whitelist access: only the owner reads it).

use std::future::Future;

use chrono::{SecondsFormat, Utc};
use jid::Jid;
use minidom::Element;
use xmpp_social::pubsub::{
    AccessModel, Item, ItemsQuery, NodeConfig, PreconditionPolicy, PubSubExt, PublishOptions,
};
use xmpp_social::Connection;

use super::error::OxError;
use super::pgp::PublicKey;
use super::xml::{Pubkey, PubkeyMetadata, PublicKeysList, SecretKeyBackup};

/// The public key metadata node.
pub const NODE_PUBLIC_KEYS: &str = "urn:xmpp:openpgp:0:public-keys";
/// The secret key backup node.
pub const NODE_SECRET_KEY: &str = "urn:xmpp:openpgp:0:secret-key";

/// The data node of a key: `urn:xmpp:openpgp:0:public-keys:<FPR>`.
pub fn public_key_node(fingerprint: &str) -> String {
    format!("{NODE_PUBLIC_KEYS}:{fingerprint}")
}

/// Publish-options of the public key nodes: open access.
pub fn public_options() -> PublishOptions {
    PublishOptions::new(
        NodeConfig::new().access_model(AccessModel::Open),
        PreconditionPolicy::ReconfigureNode,
    )
}

/// Publish-options of the secret key node: whitelist access (only the owner).
pub fn secret_options() -> PublishOptions {
    PublishOptions::new(
        NodeConfig::new().access_model(AccessModel::Whitelist),
        PreconditionPolicy::ReconfigureNode,
    )
}

fn latest_payload(items: &[Item]) -> Option<&Element> {
    items.last().and_then(|i| i.payload.as_ref())
}

/// OX PEP operations on any [`Connection`]. `jid` `None` means this account.
pub trait OxPepExt: Connection {
    /// Reads the metadata node: the announced keys. A missing node or item is an empty list.
    fn public_keys_list(
        &self,
        jid: Option<&Jid>,
    ) -> impl Future<Output = Result<PublicKeysList, OxError>> + Send {
        let service = jid.cloned();
        async move {
            let q = ItemsQuery {
                max_items: Some(1),
                ..Default::default()
            };
            let items = match self.get_items(service.as_ref(), NODE_PUBLIC_KEYS, &q).await {
                Ok(page) => page.items,
                Err(e) if e.is_item_not_found() => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            match latest_payload(&items) {
                Some(p) => PublicKeysList::from_element(p),
                None => Ok(PublicKeysList::default()),
            }
        }
    }

    /// Fetches the key `fingerprint` of `jid` (this account when `None`) from its data node and checks
    /// that it is that key and carries the user id `xmpp:<bare jid>`.
    fn public_key(
        &self,
        jid: Option<&Jid>,
        fingerprint: &str,
    ) -> impl Future<Output = Result<PublicKey, OxError>> + Send {
        let service = jid.cloned();
        let owner = jid
            .map(|j| j.to_bare().to_string())
            .unwrap_or_else(|| self.jid().to_bare().to_string());
        let node = public_key_node(fingerprint);
        let fingerprint = fingerprint.to_owned();
        async move {
            let q = ItemsQuery {
                max_items: Some(1),
                ..Default::default()
            };
            let page = self.get_items(service.as_ref(), &node, &q).await?;
            let payload = latest_payload(&page.items)
                .ok_or_else(|| OxError::NoKey(format!("{owner} (no item on {node})")))?;
            let key = PublicKey::from_bytes(&Pubkey::from_element(payload)?.data)?;
            if key.fingerprint() != fingerprint {
                return Err(OxError::BadKey(format!(
                    "node {node} holds key {}",
                    key.fingerprint()
                )));
            }
            key.check_jid(&owner)?;
            Ok(key)
        }
    }

    /// Fetches every announced key of `jid`. Keys that cannot be fetched or are invalid are skipped
    /// (and logged); an account with no valid key gives [`OxError::NoKey`].
    fn public_keys(
        &self,
        jid: Option<&Jid>,
    ) -> impl Future<Output = Result<Vec<PublicKey>, OxError>> + Send {
        let service = jid.cloned();
        async move {
            let list = self.public_keys_list(service.as_ref()).await?;
            let mut keys = Vec::new();
            for meta in &list.keys {
                match self.public_key(service.as_ref(), &meta.fingerprint).await {
                    Ok(k) => keys.push(k),
                    Err(e) => tracing::warn!(fingerprint = %meta.fingerprint, error = %e,
                        "announced OpenPGP key skipped"),
                }
            }
            if keys.is_empty() {
                let who = service
                    .map(|j| j.to_bare().to_string())
                    .unwrap_or_else(|| self.jid().to_bare().to_string());
                return Err(OxError::NoKey(who));
            }
            Ok(keys)
        }
    }

    /// Publishes `key` on its data node, then announces it in the metadata node (other announced keys
    /// are kept; the date of this key is updated). Both nodes get open access.
    fn publish_public_key(
        &self,
        key: &PublicKey,
    ) -> impl Future<Output = Result<PublicKeysList, OxError>> + Send {
        let fingerprint = key.fingerprint();
        let data = key.to_bytes();
        async move {
            let now = Utc::now();
            let item_id = now.to_rfc3339_opts(SecondsFormat::Secs, true);
            let payload = Pubkey { data: data? }.to_element();
            self.publish(
                None,
                &public_key_node(&fingerprint),
                Some(&item_id),
                payload,
                Some(&public_options()),
            )
            .await?;
            let mut list = self.public_keys_list(None).await?;
            list.keys.retain(|k| k.fingerprint != fingerprint);
            list.keys.push(PubkeyMetadata {
                fingerprint,
                date: now.fixed_offset(),
            });
            self.publish(
                None,
                NODE_PUBLIC_KEYS,
                None,
                list.to_element(),
                Some(&public_options()),
            )
            .await?;
            Ok(list)
        }
    }

    /// Stores the encrypted secret key backup on the whitelist node (created or reconfigured when
    /// needed).
    fn publish_secret_key_backup(
        &self,
        backup: &SecretKeyBackup,
    ) -> impl Future<Output = Result<(), OxError>> + Send {
        let payload = backup.to_element();
        async move {
            self.publish(
                None,
                NODE_SECRET_KEY,
                None,
                payload,
                Some(&secret_options()),
            )
            .await?;
            Ok(())
        }
    }

    /// Reads the encrypted secret key backup (`None` when there is none).
    fn secret_key_backup(
        &self,
    ) -> impl Future<Output = Result<Option<SecretKeyBackup>, OxError>> + Send {
        async move {
            let q = ItemsQuery {
                max_items: Some(1),
                ..Default::default()
            };
            let items = match self.get_items(None, NODE_SECRET_KEY, &q).await {
                Ok(page) => page.items,
                Err(e) if e.is_item_not_found() => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            latest_payload(&items)
                .map(SecretKeyBackup::from_element)
                .transpose()
        }
    }
}

impl<C: Connection + ?Sized> OxPepExt for C {}
