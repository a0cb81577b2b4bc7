//! OMEMO over PEP (XEP-0384 version 0.9 for `urn:xmpp:omemo:2`, version 0.3 for the legacy
//! `eu.siacs.conversations.axolotl` profile): publishing this device's list entry and bundle, and
//! fetching a peer's device list and bundles.
//!
//! Nodes: OMEMO:2 device list on `urn:xmpp:omemo:2:devices` (item `current`), bundles on
//! `urn:xmpp:omemo:2:bundles` (one item per device, item id = device id); legacy device list on
//! `eu.siacs.conversations.axolotl.devicelist` (item `current`), each bundle on its own node
//! `eu.siacs.conversations.axolotl.bundles:<device id>` (item `current`).
//!
//! Every node is published with publish-options `pubsub#access_model=open` (non-contacts must be able to
//! read them; Prosody's PEP default is `presence`), and the OMEMO:2 bundles node also with
//! `pubsub#max_items=max` (Prosody's PEP default keeps one item, which would drop the bundles of the
//! other devices). When the service refuses the options (ejabberd accepts only `access_model` and
//! `persist_items` there), the node is reconfigured ([`PreconditionPolicy::ReconfigureNode`]).

use std::future::Future;

use ed25519_dalek::{Signer, SigningKey};
use jid::Jid;
use minidom::Element;
use xmpp_social::error::{Error, ParseError, Result};
use xmpp_social::pubsub::{
    AccessModel, Item, ItemsQuery, MaxItems, NodeConfig, PreconditionPolicy, PubSubExt,
    PublishOptions,
};
use xmpp_social::Connection;

use super::keys::{Bundle, DeviceKeys};
use super::profile::Profile;
use super::xml::{
    legacy_bundle_node, DeviceEntry, DeviceList, MAX_DEVICES, NODE_LEGACY_DEVICES,
    NODE_OMEMO2_BUNDLES, NODE_OMEMO2_DEVICES,
};

/// Item id of a device list (both profiles) and of a legacy bundle.
pub const ITEM_CURRENT: &str = "current";

/// The PEP node of a profile's device list.
pub fn devices_node(profile: Profile) -> &'static str {
    match profile {
        Profile::Omemo2 => NODE_OMEMO2_DEVICES,
        Profile::Legacy => NODE_LEGACY_DEVICES,
    }
}

/// The PEP node and item id of a device's bundle.
pub fn bundle_location(profile: Profile, device_id: u32) -> (String, String) {
    match profile {
        Profile::Omemo2 => (NODE_OMEMO2_BUNDLES.to_owned(), device_id.to_string()),
        Profile::Legacy => (legacy_bundle_node(device_id), ITEM_CURRENT.to_owned()),
    }
}

/// Publish-options of a device list node: open access.
pub fn device_list_options() -> PublishOptions {
    PublishOptions::new(
        NodeConfig::new().access_model(AccessModel::Open),
        PreconditionPolicy::ReconfigureNode,
    )
}

/// Publish-options of a profile's bundle node: open access, and for the shared OMEMO:2 node as many
/// items as the service allows (one per device).
pub fn bundle_options(profile: Profile) -> PublishOptions {
    let mut cfg = NodeConfig::new().access_model(AccessModel::Open);
    if profile == Profile::Omemo2 {
        cfg = cfg.max_items(MaxItems::Max);
    }
    PublishOptions::new(cfg, PreconditionPolicy::ReconfigureNode)
}

/// The OMEMO:2 `labelsig` of a label: the Ed25519 signature of its UTF-8 bytes by the identity key.
pub fn sign_label(keys: &DeviceKeys, label: &str) -> Vec<u8> {
    SigningKey::from_bytes(keys.identity.seed())
        .sign(label.as_bytes())
        .to_bytes()
        .to_vec()
}

/// Adds (or updates the label of) `device_id` in `list`, keeping every other entry. Returns whether the
/// list changed. Labels exist only in OMEMO:2; the legacy list keeps bare ids.
pub fn add_device(
    list: &mut DeviceList,
    keys: &DeviceKeys,
    device_id: u32,
    label: Option<&str>,
) -> bool {
    let (label, label_signature) = match (list.profile, label) {
        (Profile::Omemo2, Some(l)) => (Some(l.to_owned()), Some(sign_label(keys, l))),
        _ => (None, None),
    };
    let wanted = DeviceEntry {
        id: device_id,
        label,
        label_signature,
    };
    match list.devices.iter_mut().find(|d| d.id == device_id) {
        Some(d) if *d == wanted => false,
        Some(d) => {
            *d = wanted;
            true
        }
        None => {
            list.devices.push(wanted);
            true
        }
    }
}

fn wrong_profile(what: &'static str) -> Error {
    Error::Parse(ParseError::InvalidValue {
        element: what,
        reason: "published in the namespace of the other OMEMO profile".to_owned(),
    })
}

fn device_list_of(items: &[Item], profile: Profile) -> Result<DeviceList> {
    let items: Vec<(&str, Option<&Element>)> = items
        .iter()
        .map(|i| (i.id.as_str(), i.payload.as_ref()))
        .collect();
    device_list_in(&items, profile)
}

/// The device list carried by a PEP notification's `<items/>` (XEP-0060 event) for `profile`'s node.
pub(crate) fn device_list_in_event(items: &Element, profile: Profile) -> Result<DeviceList> {
    let items: Vec<(&str, Option<&Element>)> = items
        .children()
        .filter(|c| c.name() == "item")
        .map(|i| (i.attr("id").unwrap_or_default(), i.children().next()))
        .collect();
    device_list_in(&items, profile)
}

fn device_list_in(items: &[(&str, Option<&Element>)], profile: Profile) -> Result<DeviceList> {
    // `current` is the item to read; a list published under another id is accepted when it is the only
    // one (some clients do so).
    let item = items
        .iter()
        .find(|(id, _)| *id == ITEM_CURRENT)
        .or_else(|| items.last());
    let Some(payload) = item.and_then(|(_, payload)| *payload) else {
        return Ok(DeviceList {
            profile,
            devices: Vec::new(),
        });
    };
    let list = DeviceList::try_from(payload)?;
    if list.profile != profile {
        return Err(wrong_profile("devices"));
    }
    if list.devices.len() > MAX_DEVICES {
        return Err(Error::Parse(ParseError::TooLarge {
            element: "devices",
            size: list.devices.len(),
            limit: MAX_DEVICES,
        }));
    }
    Ok(list)
}

fn bundle_of(items: &[Item], item_id: &str, profile: Profile) -> Result<Bundle> {
    let item = items
        .iter()
        .find(|i| i.id == item_id)
        .or_else(|| items.last());
    let payload =
        item.and_then(|i| i.payload.as_ref())
            .ok_or(Error::Parse(ParseError::MissingChild {
                element: "items",
                child: "bundle",
            }))?;
    let bundle = Bundle::try_from(payload)?;
    if bundle.profile != profile {
        return Err(wrong_profile("bundle"));
    }
    bundle.verify().map_err(|e| {
        Error::Parse(ParseError::InvalidValue {
            element: "bundle",
            reason: e.to_string(),
        })
    })?;
    Ok(bundle)
}

/// OMEMO PEP operations on any [`Connection`].
pub trait OmemoPepExt: Connection {
    /// Reads a device list: `peer`'s, or this account's own when `peer` is `None`. A missing node or
    /// item is an empty list. Labels are returned as published (their signatures are not checked here).
    fn device_list(
        &self,
        peer: Option<&Jid>,
        profile: Profile,
    ) -> impl Future<Output = Result<DeviceList>> + Send {
        let service: Jid = peer.cloned().unwrap_or_else(|| self.jid().to_bare().into());
        async move {
            let node = devices_node(profile);
            let ids = [ITEM_CURRENT];
            let items = match self.get_items_by_id(Some(&service), node, &ids).await {
                Ok(items) if !items.is_empty() => items,
                // Some services ignore ids or store the list under another id: read the node.
                Ok(_) => {
                    let q = ItemsQuery {
                        max_items: Some(1),
                        ..Default::default()
                    };
                    match self.get_items(Some(&service), node, &q).await {
                        Ok(page) => page.items,
                        Err(e) if e.is_item_not_found() => Vec::new(),
                        Err(e) => return Err(e),
                    }
                }
                Err(e) if e.is_item_not_found() => Vec::new(),
                Err(e) => return Err(e),
            };
            device_list_of(&items, profile)
        }
    }

    /// Fetches the bundle of `peer`'s device `device_id` and verifies its signed prekey signature. A
    /// bundle that is missing, malformed, in the wrong namespace or badly signed is an error
    /// ([`Error::Parse`]; a missing node is the server's `item-not-found`).
    fn bundle(
        &self,
        peer: &Jid,
        device_id: u32,
        profile: Profile,
    ) -> impl Future<Output = Result<Bundle>> + Send {
        let service = peer.clone();
        let (node, item_id) = bundle_location(profile, device_id);
        async move {
            let ids = [item_id.as_str()];
            let mut items = self.get_items_by_id(Some(&service), &node, &ids).await?;
            if items.is_empty() && profile == Profile::Legacy {
                // Legacy bundles sit alone on their node, whatever their item id.
                let q = ItemsQuery {
                    max_items: Some(1),
                    ..Default::default()
                };
                items = self.get_items(Some(&service), &node, &q).await?.items;
            }
            bundle_of(&items, &item_id, profile)
        }
    }

    /// Publishes this device in `profile`: its bundle (from `keys`), then the device list with this
    /// device added (other devices' entries are kept; the list is republished only when it changed).
    /// `label` is used by OMEMO:2 only (signed with the identity key). Returns the published list.
    fn publish_device(
        &self,
        keys: &DeviceKeys,
        device_id: u32,
        profile: Profile,
        label: Option<&str>,
    ) -> impl Future<Output = Result<DeviceList>> + Send {
        let bundle_el = Element::from(&keys.bundle(profile));
        let (bundle_node, bundle_item) = bundle_location(profile, device_id);
        let mut scratch = DeviceList {
            profile,
            devices: Vec::new(),
        };
        // Computed here so that `keys` need not live across the await points.
        add_device(&mut scratch, keys, device_id, label);
        let ours = scratch.devices.remove(0);
        async move {
            self.publish(
                None,
                &bundle_node,
                Some(&bundle_item),
                bundle_el,
                Some(&bundle_options(profile)),
            )
            .await?;
            let mut list = self.device_list(None, profile).await?;
            let changed = match list.devices.iter_mut().find(|d| d.id == ours.id) {
                Some(d) if *d == ours => false,
                Some(d) => {
                    *d = ours;
                    true
                }
                None => {
                    list.devices.push(ours);
                    true
                }
            };
            if changed {
                self.publish(
                    None,
                    devices_node(profile),
                    Some(ITEM_CURRENT),
                    Element::from(&list),
                    Some(&device_list_options()),
                )
                .await?;
            }
            Ok(list)
        }
    }
}

impl<C: Connection + ?Sized> OmemoPepExt for C {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_device_keeps_others_and_signs_labels() {
        let keys = DeviceKeys::generate(2);
        let mut list = DeviceList {
            profile: Profile::Omemo2,
            devices: vec![DeviceEntry {
                id: 7,
                label: None,
                label_signature: None,
            }],
        };
        assert!(add_device(&mut list, &keys, 9, Some("phone")));
        assert!(!add_device(&mut list, &keys, 9, Some("phone")));
        assert_eq!(list.devices.len(), 2);
        assert_eq!(list.devices[0].id, 7);
        let sig = list.devices[1].label_signature.clone().expect("signed");
        let vk =
            ed25519_dalek::VerifyingKey::from_bytes(&keys.identity.ed25519_public()).expect("key");
        let sig = ed25519_dalek::Signature::from_slice(&sig).expect("sig");
        vk.verify_strict(b"phone", &sig).expect("label signature");

        let mut legacy = DeviceList {
            profile: Profile::Legacy,
            devices: Vec::new(),
        };
        assert!(add_device(&mut legacy, &keys, 9, Some("phone")));
        assert_eq!(legacy.devices[0].label, None);
    }

    #[test]
    fn nodes_and_items() {
        assert_eq!(
            bundle_location(Profile::Omemo2, 31415),
            ("urn:xmpp:omemo:2:bundles".to_owned(), "31415".to_owned())
        );
        assert_eq!(
            bundle_location(Profile::Legacy, 31415),
            (
                "eu.siacs.conversations.axolotl.bundles:31415".to_owned(),
                "current".to_owned()
            )
        );
        assert_eq!(devices_node(Profile::Omemo2), "urn:xmpp:omemo:2:devices");
        assert_eq!(
            devices_node(Profile::Legacy),
            "eu.siacs.conversations.axolotl.devicelist"
        );
    }

    #[test]
    fn bad_bundles_are_refused() {
        let keys = DeviceKeys::generate(2);
        let mut bundle = keys.bundle(Profile::Omemo2);
        let good = Item {
            id: "5".to_owned(),
            publisher: None,
            payload: Some(Element::from(&bundle)),
        };
        assert!(bundle_of(std::slice::from_ref(&good), "5", Profile::Omemo2).is_ok());
        assert!(bundle_of(std::slice::from_ref(&good), "5", Profile::Legacy).is_err());
        bundle.signed_prekey_signature[0] ^= 1;
        let bad = Item {
            payload: Some(Element::from(&bundle)),
            ..good
        };
        assert!(bundle_of(&[bad], "5", Profile::Omemo2).is_err());
        assert!(bundle_of(&[], "5", Profile::Omemo2).is_err());
        assert_eq!(
            device_list_of(&[], Profile::Legacy)
                .expect("empty")
                .devices
                .len(),
            0
        );
    }
}
