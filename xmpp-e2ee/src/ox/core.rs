//! Sealing content elements into `<openpgp/>` and opening them with the receipt checks of XEP-0373
//! §3.2. No I/O: keys come from the caller (see [`super::store`]).

use chrono::{DateTime, TimeDelta, Utc};
use jid::BareJid;

use super::error::OxError;
use super::pgp::{self, Decryption, PublicKey, SecretKey};
use super::xml::{Content, ContentKind, OpenPgp};

/// Receipt checks beyond the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// How far in the future `<time/>` may be (clock skew). Default 5 minutes.
    pub max_future: TimeDelta,
    /// How old `<time/>` may be; `None` (the default) accepts any age, so archives stay readable.
    pub max_age: Option<TimeDelta>,
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            max_future: TimeDelta::minutes(5),
            max_age: None,
        }
    }
}

impl Checks {
    /// Fails with [`OxError::BadTime`] when `time` is implausible at `now`.
    pub fn check_time(&self, time: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), OxError> {
        // Checked arithmetic: a huge configured skew or age saturates instead of panicking.
        let latest = now
            .checked_add_signed(self.max_future)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if time > latest {
            return Err(OxError::BadTime(format!("{time} is in the future")));
        }
        if let Some(age) = self.max_age {
            let earliest = now
                .checked_sub_signed(age)
                .unwrap_or(DateTime::<Utc>::MIN_UTC);
            if time < earliest {
                return Err(OxError::BadTime(format!("{time} is too old")));
            }
        }
        Ok(())
    }
}

/// Signs and/or encrypts a content element as its kind requires: `<signcrypt/>` is signed by
/// `signer` and encrypted to `recipients` and to the signer itself, `<sign/>` is only signed,
/// `<crypt/>` only encrypted (to `recipients` and the signer).
pub fn seal(
    content: &Content,
    signer: &SecretKey,
    recipients: &[&PublicKey],
) -> Result<OpenPgp, OxError> {
    let own = signer.public();
    let mut to: Vec<&PublicKey> = recipients.to_vec();
    if !to.iter().any(|k| k.fingerprint() == own.fingerprint()) {
        to.push(&own);
    }
    let bytes = content.to_bytes()?;
    let message = match content.kind {
        ContentKind::Signcrypt => pgp::protect(&bytes, Some(signer), &to, &[])?,
        ContentKind::Sign => pgp::protect(&bytes, Some(signer), &[], &[])?,
        ContentKind::Crypt => pgp::protect(&bytes, None, &to, &[])?,
    };
    Ok(OpenPgp { message })
}

/// A verified content element.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The content element.
    pub content: Content,
    /// The fingerprint of the sender's key that signed it (`None` for `<crypt/>`).
    pub signer: Option<String>,
}

fn describe(encrypted: bool, signed: bool) -> &'static str {
    match (encrypted, signed) {
        (true, true) => "signed and encrypted",
        (true, false) => "encrypted, not signed",
        (false, true) => "signed, not encrypted",
        (false, false) => "neither signed nor encrypted",
    }
}

/// Opens an `<openpgp/>` element received from `sender` in a stanza addressed to `recipient`:
/// decrypts with `own`, checks that the OpenPGP protection matches the content element, that a
/// signature verifies with one of `sender_keys` that carries the user id `xmpp:<sender>`, that a
/// `<to/>` names `recipient`, and that `<time/>` is plausible at `now`.
pub fn open_element(
    element: &OpenPgp,
    own: &SecretKey,
    sender: &BareJid,
    sender_keys: &[&PublicKey],
    recipient: &BareJid,
    checks: &Checks,
    now: DateTime<Utc>,
) -> Result<Verified, OxError> {
    let sender_s = sender.to_string();
    let verifiers: Vec<&PublicKey> = sender_keys
        .iter()
        .copied()
        .filter(|k| k.has_jid(&sender_s))
        .collect();
    let owns = [own];
    let opened = pgp::open(
        &element.message,
        Decryption::Keys(&owns),
        &verifiers,
        &sender_s,
    )?;
    let content = Content::from_bytes(&opened.plaintext)?;
    let kind = content.kind;
    if kind.encrypted() != opened.encrypted || kind.signed() != opened.signed {
        let expected = describe(kind.encrypted(), kind.signed());
        return Err(OxError::WrongProtection {
            element: kind.name(),
            expected,
            found: describe(opened.encrypted, opened.signed),
        });
    }
    let signer = if kind.signed() {
        Some(
            opened
                .good_signers
                .first()
                .cloned()
                .ok_or(OxError::UnknownSigner { jid: sender_s })?,
        )
    } else {
        None
    };
    if (kind.signed() || !content.to.is_empty()) && !content.to.contains(recipient) {
        return Err(OxError::NotForUs {
            recipient: recipient.to_string(),
        });
    }
    checks.check_time(content.time.with_timezone(&Utc), now)?;
    Ok(Verified { content, signer })
}
