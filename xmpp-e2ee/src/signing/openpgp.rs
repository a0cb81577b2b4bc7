//! XEP-0476: the OpenPGP profile of pubsub signing, and [`SigningExt`], signing and verifying items
//! over a [`Connection`].
//!
//! The signature is a binary OpenPGP detached signature (RFC 4880 §11.4) over the canonical
//! `<sign-data/>` bytes, base64 in `<sign xmlns='urn:xmpp:pubsub-signing:openpgp:0'/>`. GnuPG
//! (`gpg --verify sig data`) checks ours and we check its. A verification succeeds only when a key
//! of the given certificates made the signature over exactly the rebuilt wrapper, under Sequoia's
//! standard policy, *and* that certificate carries the user ID `xmpp:<signer>` (XEP-0373's binding
//! of keys to JIDs) for a signer the attachment names. Which certificates a JID owns is the caller's
//! business (OX public keys, XEP-0373); trust in them too.

use std::io::Write;

use chrono::{DateTime, Utc};
use jid::{BareJid, Jid};
use minidom::Element;
use sequoia_openpgp as pgp;

use pgp::cert::Cert;
use pgp::parse::stream::{
    DetachedVerifierBuilder, MessageLayer, MessageStructure, VerificationHelper,
};
use pgp::parse::Parse;
use pgp::policy::StandardPolicy;
use pgp::serialize::stream::{Message, Signer};
use pgp::{Fingerprint, KeyHandle};
use xmpp_social::attachments::AttachmentsExt;
use xmpp_social::microblog::ItemRef;
use xmpp_social::pubsub::PubSubExt;
use xmpp_social::Connection;

use super::{wrap_payload, SignData, Signature, SigningError, NS_SIGNING};

/// Largest detached signature accepted, in bytes (one Ed25519 signature is ~120 bytes, RSA-4096
/// ~600).
pub const MAX_SIGNATURE_BYTES: usize = 16 * 1024;

fn pgp_err(e: impl std::fmt::Display) -> SigningError {
    SigningError::OpenPgp(e.to_string())
}

/// Makes a binary OpenPGP detached signature of `data` with the signing-capable secret key of
/// `cert` (valid under the standard policy now).
pub fn sign_detached(cert: &Cert, data: &[u8]) -> Result<Vec<u8>, SigningError> {
    let policy = StandardPolicy::new();
    let key = cert
        .keys()
        .with_policy(&policy, None)
        .supported()
        .alive()
        .revoked(false)
        .for_signing()
        .secret()
        .next()
        .ok_or_else(|| {
            SigningError::NoKey("no valid secret signing key in the certificate".into())
        })?
        .key()
        .clone();
    let keypair = key
        .into_keypair()
        .map_err(|e| SigningError::NoKey(e.to_string()))?;
    let mut sink = Vec::new();
    {
        let message = Message::new(&mut sink);
        let mut signer = Signer::new(message, keypair)
            .map_err(pgp_err)?
            .detached()
            .build()
            .map_err(pgp_err)?;
        signer.write_all(data).map_err(pgp_err)?;
        signer.finalize().map_err(pgp_err)?;
    }
    Ok(sink)
}

struct Helper<'a> {
    certs: &'a [Cert],
    good: Option<Fingerprint>,
    errors: Vec<String>,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> pgp::Result<Vec<Cert>> {
        Ok(self.certs.to_vec())
    }

    fn check(&mut self, structure: MessageStructure) -> pgp::Result<()> {
        for layer in structure.into_iter() {
            if let MessageLayer::SignatureGroup { results } = layer {
                for r in results {
                    match r {
                        Ok(good) => {
                            if self.good.is_none() {
                                self.good = Some(good.ka.cert().fingerprint());
                            }
                        }
                        Err(e) => self.errors.push(e.to_string()),
                    }
                }
            }
        }
        if self.good.is_some() {
            Ok(())
        } else {
            Err(anyhow_like(self.errors.join("; ")))
        }
    }
}

fn anyhow_like(msg: String) -> pgp::anyhow::Error {
    pgp::Error::BadSignature(if msg.is_empty() {
        "no signature".into()
    } else {
        msg
    })
    .into()
}

/// Checks a binary detached signature of `data` against `certs`; returns the fingerprint of the
/// certificate whose key made it.
pub fn verify_detached(
    data: &[u8],
    signature: &[u8],
    certs: &[Cert],
) -> Result<Fingerprint, SigningError> {
    if signature.len() > MAX_SIGNATURE_BYTES {
        return Err(SigningError::BadSignature(format!(
            "signature of {} bytes is too large",
            signature.len()
        )));
    }
    let policy = StandardPolicy::new();
    let helper = Helper {
        certs,
        good: None,
        errors: Vec::new(),
    };
    let mut verifier = DetachedVerifierBuilder::from_bytes(signature)
        .map_err(|e| SigningError::BadSignature(e.to_string()))?
        .with_policy(&policy, None, helper)
        .map_err(|e| SigningError::BadSignature(e.to_string()))?;
    verifier
        .verify_bytes(data)
        .map_err(|e| SigningError::BadSignature(e.to_string()))?;
    verifier
        .helper_ref()
        .good
        .clone()
        .ok_or_else(|| SigningError::BadSignature("no valid signature".into()))
}

/// Whether `cert` carries the user ID `xmpp:<jid>` (valid under the standard policy).
pub fn cert_binds_jid(cert: &Cert, jid: &BareJid) -> bool {
    let policy = StandardPolicy::new();
    let Ok(valid) = cert.with_policy(&policy, None) else {
        return false;
    };
    let wanted = format!("xmpp:{jid}");
    valid
        .userids()
        .any(|u| u.userid().value() == wanted.as_bytes())
}

/// A signature that verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedSignature {
    /// The signer whose key made the signature (the certificate carries `xmpp:<signer>`).
    pub signer: BareJid,
    /// All signers the wrapper names.
    pub signers: Vec<BareJid>,
    /// The fingerprint of the certificate whose key signed.
    pub fingerprint: Fingerprint,
    /// The signing time the wrapper gives.
    pub time: DateTime<Utc>,
}

/// Signs `item` (an `<item/>`, its `id` and `publisher` are left out) held by `service` as `signer`
/// with `cert`'s signing key, now: the XEP-0475 `<signature/>` attachment with a XEP-0476 `<sign/>`.
pub fn sign_item(
    cert: &Cert,
    signer: &BareJid,
    service: &BareJid,
    item: &Element,
) -> Result<Signature, SigningError> {
    sign_item_at(cert, signer, service, item, Utc::now())
}

/// [`sign_item`] at a given time.
pub fn sign_item_at(
    cert: &Cert,
    signer: &BareJid,
    service: &BareJid,
    item: &Element,
    time: DateTime<Utc>,
) -> Result<Signature, SigningError> {
    if !cert_binds_jid(cert, signer) {
        return Err(SigningError::SignerMismatch {
            claimed: signer.to_string(),
        });
    }
    let data = SignData::new(service.clone(), signer.clone(), time, item);
    let sig = sign_detached(cert, &data.signed_bytes()?)?;
    Ok(Signature {
        stamp: data.stamp,
        signers: data.signers,
        extra: Vec::new(),
        openpgp: Some(sig),
        unknown: Vec::new(),
    })
}

/// Verifies a `<signature/>` attachment of `item` held by `service` against `certs`.
pub fn verify_item(
    service: &BareJid,
    item: &Element,
    signature: &Signature,
    certs: &[Cert],
) -> Result<VerifiedSignature, SigningError> {
    let sig = signature
        .openpgp
        .as_ref()
        .ok_or(SigningError::NoSignature)?;
    let time = signature.time()?.with_timezone(&Utc);
    let data = SignData::for_attachment(service.clone(), signature, item);
    let fingerprint = verify_detached(&data.signed_bytes()?, sig, certs)?;
    let cert = certs
        .iter()
        .find(|c| c.fingerprint() == fingerprint)
        .ok_or_else(|| SigningError::BadSignature("verifying certificate vanished".into()))?;
    let signer = signature
        .signers
        .iter()
        .find(|s| cert_binds_jid(cert, s))
        .cloned()
        .ok_or_else(|| SigningError::SignerMismatch {
            claimed: signature
                .signers
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    Ok(VerifiedSignature {
        signer,
        signers: signature.signers.clone(),
        fingerprint,
        time,
    })
}

/// One JID's signature attachment and what its verification gave.
#[derive(Debug)]
pub struct SignatureCheck {
    /// The JID whose attachment item carried the signature.
    pub jid: BareJid,
    /// The verified signature, or why it failed.
    pub result: Result<VerifiedSignature, SigningError>,
}

fn signature_in(extra: &[Element]) -> Option<&Element> {
    extra.iter().find(|e| e.is("signature", NS_SIGNING))
}

/// Pubsub signing (XEP-0475/0476) over any [`Connection`].
pub trait SigningExt: Connection + Sized {
    /// Signs `payload`, the plaintext payload of item `target`, with `cert` as this account and
    /// publishes the signature as this account's XEP-0470 attachment (other attachments are kept).
    /// For an encrypted item, pass the plaintext: XEP-0475 signs before encryption. When
    /// `create_node` is set (this account published the item), the item's attachment node is
    /// created if needed.
    fn publish_signature(
        &self,
        target: &ItemRef,
        payload: Option<&Element>,
        cert: &Cert,
        create_node: bool,
    ) -> impl std::future::Future<Output = Result<Signature, SigningError>> + Send {
        let target = target.clone();
        let cert = cert.clone();
        let item = wrap_payload(payload);
        async move {
            let service = target.service.to_bare();
            let me = self.jid().to_bare();
            let signature = sign_item(&cert, &me, &service, &item)?;
            if create_node {
                self.create_attachments_node(&target).await?;
            }
            let element = signature.to_element();
            self.update_attachments(&target, move |a| {
                a.extra.retain(|e| !e.is("signature", NS_SIGNING));
                a.extra.push(element);
            })
            .await?;
            Ok(signature)
        }
    }

    /// Signs the published (plaintext) item `target` with `cert` as this account and publishes
    /// the signature as this account's XEP-0470 attachment: the item is read back from the service
    /// first, so what is signed is what readers will get. When this account published the item,
    /// its attachment node is created if needed.
    fn sign_published_item(
        &self,
        target: &ItemRef,
        cert: &Cert,
    ) -> impl std::future::Future<Output = Result<Signature, SigningError>> + Send {
        let target = target.clone();
        let cert = cert.clone();
        async move {
            let me = self.jid().to_bare();
            let item = fetch_item(self, &target).await?;
            let mine = item.publisher.as_ref().is_none_or(|p| p.to_bare() == me);
            self.publish_signature(&target, item.payload.as_ref(), &cert, mine)
                .await
        }
    }

    /// Verifies every signature attached to item `target` against `payload` (its plaintext
    /// payload: for an encrypted item, the decrypted one) and `certs` (the certificates of the
    /// JIDs concerned). A signature attachment is accepted only from a JID it names as a signer
    /// whose certificate made it.
    fn verify_signatures_of(
        &self,
        target: &ItemRef,
        payload: Option<&Element>,
        certs: &[Cert],
    ) -> impl std::future::Future<Output = Result<Vec<SignatureCheck>, SigningError>> + Send {
        let target = target.clone();
        let certs = certs.to_vec();
        let wrapped = wrap_payload(payload);
        async move {
            let service = target.service.to_bare();
            let view = self.attachments(&target).await?;
            let mut out = Vec::new();
            for ja in &view.by_jid {
                let Some(el) = signature_in(&ja.attachments.extra) else {
                    continue;
                };
                let result = Signature::try_from(el).and_then(|sig| {
                    let v = verify_item(&service, &wrapped, &sig, &certs)?;
                    if v.signer != ja.jid {
                        return Err(SigningError::SignerMismatch {
                            claimed: ja.jid.to_string(),
                        });
                    }
                    Ok(v)
                });
                out.push(SignatureCheck {
                    jid: ja.jid.clone(),
                    result,
                });
            }
            Ok(out)
        }
    }

    /// Reads the (plaintext) item `target` and verifies every signature attached to it, as
    /// [`SigningExt::verify_signatures_of`] does.
    fn verify_item_signatures(
        &self,
        target: &ItemRef,
        certs: &[Cert],
    ) -> impl std::future::Future<Output = Result<Vec<SignatureCheck>, SigningError>> + Send {
        let target = target.clone();
        let certs = certs.to_vec();
        async move {
            let item = fetch_item(self, &target).await?;
            self.verify_signatures_of(&target, item.payload.as_ref(), &certs)
                .await
        }
    }
}

async fn fetch_item<C: Connection>(
    conn: &C,
    target: &ItemRef,
) -> Result<xmpp_social::pubsub::Item, SigningError> {
    let service = Jid::from(target.service.to_bare());
    let items = conn
        .get_items_by_id(Some(&service), &target.node, &[&target.item])
        .await?;
    items
        .into_iter()
        .find(|i| i.id == target.item)
        .ok_or_else(|| SigningError::Malformed {
            element: "item",
            reason: format!("item {:?} not found", target.item),
        })
}

impl<C: Connection + Sized> SigningExt for C {}
