//! xmpp-e2ee's OpenPGP side fed hostile input: the OX (XEP-0373/0374) and XEP-0473 element parsers, the
//! XEP-0475 `<sign-data/>`/`<signature/>` parsers, binary OpenPGP messages opened with a real key (and with
//! a password, as backups are), OX `<openpgp/>` elements through every receipt check, and C14N 2.0.
//! Typed errors only; the canonical form of a canonical form is itself.
#![no_main]

use std::sync::OnceLock;

use chrono::Utc;
use jid::BareJid;
use libfuzzer_sys::fuzz_target;
use xmpp_e2ee::ox::pgp::{self, Decryption};
use xmpp_e2ee::ox::xml::SecretKeyBackup;
use xmpp_e2ee::ox::{
    open_element, Checks, Content, EncryptedItem, OpenPgp, PublicKeysList, Revoke,
    SecretKey, SharedSecret,
};
use xmpp_e2ee::signing::c14n::canonicalize_str;
use xmpp_e2ee::signing::{Signature, SignData};

fn keys() -> &'static (SecretKey, SecretKey) {
    static KEYS: OnceLock<(SecretKey, SecretKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            SecretKey::generate("alice@example.org").expect("key"),
            SecretKey::generate("bob@example.org").expect("key"),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => elements(rest),
        1 => messages(rest),
        2 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                c14n(text);
            }
        }
        _ => {
            let _ = Content::from_bytes(rest);
        }
    }
});

fn elements(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(el) = xmpp_social::xml::parse_bounded(text, 64 * 1024) else {
        return;
    };
    let _ = OpenPgp::from_element(&el);
    let _ = Content::from_element(&el);
    let _ = PublicKeysList::from_element(&el);
    let _ = SecretKeyBackup::from_element(&el);
    let _ = SharedSecret::from_element(&el);
    let _ = Revoke::from_element(&el);
    let _ = EncryptedItem::from_element(&el);
    let _ = SignData::try_from(&el);
    let _ = Signature::try_from(&el);
}

fn messages(data: &[u8]) {
    let (alice, bob) = keys();
    let alice_pub = alice.public();
    let owns = [bob];
    let _ = pgp::open(data, Decryption::Keys(&owns), &[&alice_pub], "alice@example.org");
    let _ = pgp::open(data, Decryption::None, &[&alice_pub], "alice@example.org");
    let _ = pgp::decrypt_with_password(data, "ABCD-EFGH-IJKL-MNOP-QRST-UVWX");
    let element = OpenPgp {
        message: data.to_vec(),
    };
    let alice_jid = BareJid::new("alice@example.org").expect("jid");
    let bob_jid = BareJid::new("bob@example.org").expect("jid");
    let _ = open_element(
        &element,
        bob,
        &alice_jid,
        &[&alice_pub],
        &bob_jid,
        &Checks::default(),
        Utc::now(),
    );
}

fn c14n(text: &str) {
    let Ok(once) = canonicalize_str(text) else {
        return;
    };
    let once_text = String::from_utf8(once.clone()).expect("canonical XML is UTF-8");
    let twice = canonicalize_str(&once_text).expect("canonical XML parses");
    assert_eq!(once, twice, "canonicalisation is not idempotent");
}
