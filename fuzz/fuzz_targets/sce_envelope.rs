//! Feeds arbitrary bytes (the plaintext of a decrypted OMEMO:2 payload) to the XEP-0420 envelope parser.
//! Typed errors only; an envelope that parses holds no server-processed or unqualified content, serialises
//! (strictly and leniently to the same bytes) and parses back the same; the receipt checks and an OMEMO
//! re-wrap of its content never panic.
#![no_main]

use jid::BareJid;
use libfuzzer_sys::fuzz_target;
use xmpp_e2ee::sce::{is_server_processed, Envelope, NS_SCE};

fuzz_target!(|data: &[u8]| {
    let Ok((env, _dropped)) = Envelope::from_bytes_detailed(data) else {
        return;
    };
    for c in &env.content {
        assert!(!is_server_processed(c), "server-processed content kept");
        let ns = c.ns();
        assert!(!ns.is_empty() && ns != NS_SCE, "unqualified content kept");
    }
    let bytes = env.to_bytes();
    assert_eq!(env.try_to_bytes().as_ref(), Ok(&bytes), "strict writer differs");
    let (back, dropped) = Envelope::from_bytes_detailed(&bytes).expect("re-parse");
    assert!(dropped.is_empty());
    assert_eq!(back, env, "round trip");
    assert_eq!(back.to_bytes(), bytes, "serialisation is stable");
    assert_eq!(
        Envelope::from_element(&env.to_element()).expect("element"),
        env
    );

    // Receipt checks against the envelope's own claims and against someone else.
    let other = BareJid::new("mallory@example.org").expect("jid");
    if let Some(from) = &env.from {
        let sender = from.to_bare();
        let recipient = env
            .to
            .clone()
            .unwrap_or_else(|| jid::Jid::from(other.clone()));
        let _ = env.check(&sender, &recipient);
        let _ = env.check_groupchat(&sender, &recipient.to_bare());
        if env.from.as_ref().map(|f| f.to_bare()) != Some(other.clone()) {
            assert!(env.check(&other, &recipient).is_err(), "wrong sender accepted");
        }
        let wrapped = Envelope::for_omemo(env.content.clone(), &sender, &recipient);
        let back = Envelope::from_bytes(&wrapped.to_bytes()).expect("omemo re-parse");
        assert_eq!(back, wrapped);
        back.check(&sender, &recipient).expect("own envelope passes");
    } else {
        assert!(env.check(&other, &jid::Jid::from(other.clone())).is_err());
    }
    if let Some(t) = env.time {
        let _ = env.check_stanza_time(t, xmpp_e2ee::sce::MAX_FUTURE_SKEW);
    }
});
