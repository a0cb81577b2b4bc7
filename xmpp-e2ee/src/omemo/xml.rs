//! XML of both OMEMO namespaces: `<encrypted>` messages, device lists and bundles.
//!
//! OMEMO:2 (XEP-0384 0.9): `<encrypted xmlns='urn:xmpp:omemo:2'>` with `<keys jid>` groups and
//! `kex`, `<devices>` on node `urn:xmpp:omemo:2:devices`, `<bundle>` items on node
//! `urn:xmpp:omemo:2:bundles` (item id = device id). Legacy (XEP-0384 0.3): `<encrypted
//! xmlns='eu.siacs.conversations.axolotl'>` with `<key rid prekey>` and `<iv>` in the header, `<list>` on
//! node `eu.siacs.conversations.axolotl.devicelist`, `<bundle>` on node
//! `eu.siacs.conversations.axolotl.bundles:<device id>`.
//!
//! Binary values are decoded from base64 (whitespace inside the text is ignored); list lengths are
//! bounded; every malformed input is a typed [`ParseError`].

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use minidom::Element;
use xmpp_social::error::ParseError;
use xmpp_social::xml::BuilderExt;

use super::keys::{Bundle, PreKeyPublic};
use super::profile::{Profile, NS_OMEMO2, NS_OMEMO_LEGACY};

/// PEP node of OMEMO:2 device lists.
pub const NODE_OMEMO2_DEVICES: &str = "urn:xmpp:omemo:2:devices";
/// PEP node of OMEMO:2 bundles (one item per device, item id = device id).
pub const NODE_OMEMO2_BUNDLES: &str = "urn:xmpp:omemo:2:bundles";
/// PEP node of legacy device lists.
pub const NODE_LEGACY_DEVICES: &str = "eu.siacs.conversations.axolotl.devicelist";

/// Most devices accepted in a device list.
pub const MAX_DEVICES: usize = 1000;
/// Most one-time prekeys accepted in a bundle.
pub const MAX_PREKEYS: usize = 1000;
/// Most `<key>` elements accepted in a message.
pub const MAX_KEYS: usize = 10_000;

/// The PEP node of a legacy bundle.
pub fn legacy_bundle_node(device_id: u32) -> String {
    format!("eu.siacs.conversations.axolotl.bundles:{device_id}")
}

fn profile_of(el: &Element, name: &'static str) -> Result<Profile, ParseError> {
    let profile = Profile::from_namespace(&el.ns()).filter(|_| el.name() == name);
    profile.ok_or_else(|| ParseError::WrongElement {
        expected: format!("{{{NS_OMEMO2}|{NS_OMEMO_LEGACY}}}{name}"),
        found: format!("{{{}}}{}", el.ns(), el.name()),
    })
}

fn b64_decode(text: &str, element: &'static str) -> Result<Vec<u8>, ParseError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    B64.decode(compact.as_bytes())
        .map_err(|e| ParseError::InvalidValue {
            element,
            reason: format!("bad base64: {e}"),
        })
}

fn u32_attr(el: &Element, attr: &'static str, element: &'static str) -> Result<u32, ParseError> {
    let v = el.attr(attr).ok_or(ParseError::MissingAttribute {
        element,
        attribute: attr,
    })?;
    v.trim().parse().map_err(|_| ParseError::InvalidValue {
        element,
        reason: format!("{attr}='{v}' is not a 32-bit unsigned integer"),
    })
}

fn bool_attr(el: &Element, attr: &'static str, element: &'static str) -> Result<bool, ParseError> {
    match el.attr(attr).map(str::trim) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(v) => Err(ParseError::InvalidValue {
            element,
            reason: format!("{attr}='{v}' is not a boolean"),
        }),
    }
}

fn child<'a>(
    el: &'a Element,
    name: &'static str,
    parent: &'static str,
) -> Result<&'a Element, ParseError> {
    el.get_child(name, el.ns().as_str())
        .ok_or(ParseError::MissingChild {
            element: parent,
            child: name,
        })
}

fn bounded(count: usize, limit: usize, element: &'static str) -> Result<(), ParseError> {
    if count > limit {
        return Err(ParseError::TooLarge {
            element,
            size: count,
            limit,
        });
    }
    Ok(())
}

fn text_el(name: &str, ns: &str, data: &[u8]) -> Element {
    Element::builder(name, ns).append(B64.encode(data)).build()
}

/// One device of a device list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    /// Device id.
    pub id: u32,
    /// OMEMO:2 only: a human-readable label.
    pub label: Option<String>,
    /// OMEMO:2 only: signature of the label by the identity key.
    pub label_signature: Option<Vec<u8>>,
}

/// A device list (OMEMO:2 `<devices>`, legacy `<list>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceList {
    /// The namespace it is in.
    pub profile: Profile,
    /// The devices.
    pub devices: Vec<DeviceEntry>,
}

impl TryFrom<&Element> for DeviceList {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        let profile = if el.is("devices", NS_OMEMO2) {
            Profile::Omemo2
        } else {
            profile_of(el, "list").map_err(|_| ParseError::WrongElement {
                expected: format!("{{{NS_OMEMO2}}}devices or {{{NS_OMEMO_LEGACY}}}list"),
                found: format!("{{{}}}{}", el.ns(), el.name()),
            })?
        };
        let ns = profile.namespace();
        bounded(el.children().count(), MAX_DEVICES, "devices")?;
        let mut devices = Vec::new();
        for d in el.children().filter(|c| c.is("device", ns)) {
            let label_signature = match d.attr("labelsig") {
                Some(s) => Some(b64_decode(s, "device@labelsig")?),
                None => None,
            };
            devices.push(DeviceEntry {
                id: u32_attr(d, "id", "device")?,
                label: d.attr("label").map(str::to_owned),
                label_signature,
            });
        }
        Ok(DeviceList { profile, devices })
    }
}

impl From<&DeviceList> for Element {
    fn from(list: &DeviceList) -> Element {
        let ns = list.profile.namespace();
        let name = match list.profile {
            Profile::Omemo2 => "devices",
            Profile::Legacy => "list",
        };
        Element::builder(name, ns)
            .append_all(list.devices.iter().map(|d| {
                let legacy = list.profile == Profile::Legacy;
                Element::builder("device", ns)
                    .a("id", d.id.to_string())
                    .a_opt("label", d.label.clone().filter(|_| !legacy))
                    .a_opt(
                        "labelsig",
                        d.label_signature
                            .as_ref()
                            .filter(|_| !legacy)
                            .map(|s| B64.encode(s)),
                    )
                    .build()
            }))
            .build()
    }
}

impl TryFrom<&Element> for Bundle {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        let profile = profile_of(el, "bundle")?;
        let (spk_name, spk_attr, sig_name, ik_name, pk_name, pk_attr) = match profile {
            Profile::Omemo2 => ("spk", "id", "spks", "ik", "pk", "id"),
            Profile::Legacy => (
                "signedPreKeyPublic",
                "signedPreKeyId",
                "signedPreKeySignature",
                "identityKey",
                "preKeyPublic",
                "preKeyId",
            ),
        };
        let ns = profile.namespace();
        let spk = child(el, spk_name, "bundle")?;
        let prekeys_el = child(el, "prekeys", "bundle")?;
        bounded(prekeys_el.children().count(), MAX_PREKEYS, "prekeys")?;
        let mut prekeys = Vec::new();
        for pk in prekeys_el.children().filter(|c| c.is(pk_name, ns)) {
            prekeys.push(PreKeyPublic {
                id: u32_attr(pk, pk_attr, "prekey")?,
                key: b64_decode(&pk.text(), "prekey")?,
            });
        }
        Ok(Bundle {
            profile,
            identity_key: b64_decode(&child(el, ik_name, "bundle")?.text(), "identity key")?,
            signed_prekey_id: u32_attr(spk, spk_attr, "signed prekey")?,
            signed_prekey: b64_decode(&spk.text(), "signed prekey")?,
            signed_prekey_signature: b64_decode(
                &child(el, sig_name, "bundle")?.text(),
                "signed prekey signature",
            )?,
            prekeys,
        })
    }
}

impl From<&Bundle> for Element {
    fn from(b: &Bundle) -> Element {
        let ns = b.profile.namespace();
        let (spk_name, spk_attr, sig_name, ik_name, pk_name, pk_attr) = match b.profile {
            Profile::Omemo2 => ("spk", "id", "spks", "ik", "pk", "id"),
            Profile::Legacy => (
                "signedPreKeyPublic",
                "signedPreKeyId",
                "signedPreKeySignature",
                "identityKey",
                "preKeyPublic",
                "preKeyId",
            ),
        };
        Element::builder("bundle", ns)
            .append(
                Element::builder(spk_name, ns)
                    .a(spk_attr, b.signed_prekey_id.to_string())
                    .append(B64.encode(&b.signed_prekey))
                    .build(),
            )
            .append(text_el(sig_name, ns, &b.signed_prekey_signature))
            .append(text_el(ik_name, ns, &b.identity_key))
            .append(
                Element::builder("prekeys", ns)
                    .append_all(b.prekeys.iter().map(|pk| {
                        Element::builder(pk_name, ns)
                            .a(pk_attr, pk.id.to_string())
                            .append(B64.encode(&pk.key))
                            .build()
                    }))
                    .build(),
            )
            .build()
    }
}

/// One `<key>` of a message: the ratchet output for one recipient device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageKey {
    /// OMEMO:2: the recipient's bare JID (`<keys jid>`); legacy messages carry none.
    pub jid: Option<String>,
    /// Recipient device id.
    pub rid: u32,
    /// Key exchange (OMEMO:2 `kex`, legacy `prekey`).
    pub key_exchange: bool,
    /// The ratchet message.
    pub data: Vec<u8>,
}

/// An `<encrypted>` element of either namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    /// The namespace it is in.
    pub profile: Profile,
    /// Sender device id.
    pub sid: u32,
    /// Keys for the recipient devices.
    pub keys: Vec<MessageKey>,
    /// Legacy only: the payload IV.
    pub iv: Option<Vec<u8>>,
    /// The encrypted content; absent in empty (key-transport, heartbeat) messages.
    pub payload: Option<Vec<u8>>,
}

impl Encrypted {
    /// The keys addressed to one device (OMEMO:2: also matching the JID when given).
    pub fn keys_for<'a>(
        &'a self,
        jid: Option<&'a str>,
        rid: u32,
    ) -> impl Iterator<Item = &'a MessageKey> {
        self.keys.iter().filter(move |k| {
            k.rid == rid && (jid.is_none() || k.jid.is_none() || k.jid.as_deref() == jid)
        })
    }
}

impl TryFrom<&Element> for Encrypted {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        let profile = profile_of(el, "encrypted")?;
        let ns = profile.namespace();
        let header = child(el, "header", "encrypted")?;
        let sid = u32_attr(header, "sid", "header")?;
        let mut keys = Vec::new();
        let parse_key = |k: &Element, jid: Option<String>| -> Result<MessageKey, ParseError> {
            let kex_attr = match profile {
                Profile::Omemo2 => "kex",
                Profile::Legacy => "prekey",
            };
            Ok(MessageKey {
                jid,
                rid: u32_attr(k, "rid", "key")?,
                key_exchange: bool_attr(k, kex_attr, "key")?,
                data: b64_decode(&k.text(), "key")?,
            })
        };
        match profile {
            Profile::Omemo2 => {
                for group in header.children().filter(|c| c.is("keys", ns)) {
                    let jid = group.attr("jid").ok_or(ParseError::MissingAttribute {
                        element: "keys",
                        attribute: "jid",
                    })?;
                    for k in group.children().filter(|c| c.is("key", ns)) {
                        bounded(keys.len() + 1, MAX_KEYS, "header")?;
                        keys.push(parse_key(k, Some(jid.to_owned()))?);
                    }
                }
            }
            Profile::Legacy => {
                for k in header.children().filter(|c| c.is("key", ns)) {
                    bounded(keys.len() + 1, MAX_KEYS, "header")?;
                    keys.push(parse_key(k, None)?);
                }
            }
        }
        let iv = match profile {
            Profile::Omemo2 => None,
            Profile::Legacy => Some(b64_decode(&child(header, "iv", "header")?.text(), "iv")?),
        };
        let payload = match el.get_child("payload", ns) {
            Some(p) => Some(b64_decode(&p.text(), "payload")?),
            None => None,
        };
        Ok(Encrypted {
            profile,
            sid,
            keys,
            iv,
            payload,
        })
    }
}

impl From<&Encrypted> for Element {
    fn from(m: &Encrypted) -> Element {
        let ns = m.profile.namespace();
        let key_el = |k: &MessageKey, kex_attr: &str| {
            Element::builder("key", ns)
                .a("rid", k.rid.to_string())
                .a_opt(kex_attr, k.key_exchange.then_some("true"))
                .append(B64.encode(&k.data))
                .build()
        };
        let mut header = Element::builder("header", ns).a("sid", m.sid.to_string());
        match m.profile {
            Profile::Omemo2 => {
                let mut jids: Vec<&str> = Vec::new();
                for k in &m.keys {
                    let jid = k.jid.as_deref().unwrap_or_default();
                    if !jids.contains(&jid) {
                        jids.push(jid);
                    }
                }
                for jid in jids {
                    let group = Element::builder("keys", ns)
                        .a("jid", jid)
                        .append_all(
                            m.keys
                                .iter()
                                .filter(|k| k.jid.as_deref().unwrap_or_default() == jid)
                                .map(|k| key_el(k, "kex")),
                        )
                        .build();
                    header = header.append(group);
                }
            }
            Profile::Legacy => {
                header = header.append_all(m.keys.iter().map(|k| key_el(k, "prekey")));
                header = header.append(text_el("iv", ns, m.iv.as_deref().unwrap_or_default()));
            }
        }
        let mut el = Element::builder("encrypted", ns).append(header.build());
        if let Some(p) = &m.payload {
            el = el.append(text_el("payload", ns, p));
        }
        el.build()
    }
}
