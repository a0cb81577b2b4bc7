//! XEP-0420 Stanza Content Encryption: round trips on every example of XEP-0420 and the SCE examples of
//! XEP-0384 (copied into `tests/fixtures/` by `tools/extract-xep-examples.py`, after replacing the spec's
//! `&ns;` entity splices by the namespace), malformed and hostile input, and the receipt checks.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::path::Path;

use base64::Engine;
use chrono::{TimeDelta, TimeZone, Utc};
use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_e2ee::sce::{
    is_server_processed, split_server_processed, DroppedElement, Envelope, SceError,
    MAX_ENVELOPE_BYTES, MAX_FUTURE_SKEW, NS_SCE,
};

/// (file name, text without the caption comment) of every fixture of `xep`, sorted.
fn fixtures(xep: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(xep);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read");
            let body = text.split_once("-->\n").map(|(_, b)| b).unwrap_or(&text);
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                body.to_owned(),
            )
        })
        .collect()
}

/// Parses, checks the content against the example's own `<content/>` children, serialises and parses
/// back to the same value.
fn round_trip(name: &str, text: &str) -> Envelope {
    let env = Envelope::from_bytes(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let el: Element = text.parse().unwrap();
    let expected: Vec<Element> = el
        .get_child("content", NS_SCE)
        .unwrap()
        .children()
        .cloned()
        .collect();
    assert_eq!(env.content, expected, "{name}");
    assert!(!env.content.is_empty(), "{name}");
    let bytes = env.to_bytes();
    assert_eq!(Envelope::from_bytes(&bytes).unwrap(), env, "{name}");
    assert_eq!(env.try_to_bytes().unwrap(), bytes, "{name}");
    assert_eq!(Envelope::from_element(&env.to_element()).unwrap(), env);
    env
}

fn payload_of(stanza: &Element) -> Option<Vec<u8>> {
    let encrypted = stanza.children().find(|c| c.name() == "encrypted")?;
    let payload = encrypted.children().find(|c| c.name() == "payload")?.text();
    let compact: String = payload.split_whitespace().collect();
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .unwrap(),
    )
}

#[test]
fn xep_0420_examples() {
    let examples = fixtures("xep-0420");
    assert_eq!(
        examples.len(),
        9,
        "examples 2 to 10 (1 is a list of affixes)"
    );
    let mut envelopes = 0;
    let mut payloads = 0;
    for (name, text) in &examples {
        // Stanzas in the XEPs carry no namespace: give them the client one.
        let el: Element = text
            .parse()
            .or_else(|_| {
                text.replacen("<message", "<message xmlns='jabber:client'", 1)
                    .replacen("<iq", "<iq xmlns='jabber:client'", 1)
                    .parse()
            })
            .unwrap();
        if el.is("envelope", NS_SCE) {
            let env = round_trip(name, text);
            envelopes += 1;
            match name.as_str() {
                "05.xml" => {
                    assert_eq!(env.content.len(), 2);
                    assert!(env.content[0].is("body", "jabber:client"));
                    assert!(env.content[1].is("x", "jabber:x:oob"));
                    assert_eq!(
                        (&env.from, &env.to, &env.time, &env.rpad),
                        (&None, &None, &None, &None)
                    );
                }
                "07.xml" | "09.xml" => {
                    assert!(env.content[0].is("data", "urn:xmpp:bob"));
                    assert!(env.from.as_ref().unwrap().is_full());
                    assert!(env.to.as_ref().unwrap().is_full());
                }
                other => panic!("unexpected envelope example {other}"),
            }
        } else {
            // Stanzas: the unencrypted ones are no envelope; the "encrypted" payloads of the stub
            // protocol are base64 of XEP-0420 0.3 `<content xmlns='urn:xmpp:sce:0'/>` (examples 6 and 10)
            // or of an English sentence (example 8): all refused with a typed error.
            assert!(matches!(
                Envelope::from_element(&el),
                Err(SceError::NotAnEnvelope { .. })
            ));
            if let Some(plain) = payload_of(&el) {
                payloads += 1;
                let err = Envelope::from_bytes(&plain).unwrap_err();
                match name.as_str() {
                    "06.xml" | "10.xml" => assert_eq!(
                        err,
                        SceError::NotAnEnvelope {
                            found: "{urn:xmpp:sce:0}content".to_owned()
                        },
                        "{name}"
                    ),
                    _ => assert!(matches!(err, SceError::Xml(_)), "{name}: {err:?}"),
                }
            }
        }
    }
    assert_eq!((envelopes, payloads), (3, 4));
}

/// XEP-0420 example 1 lists the affixes; put into an envelope they parse to the typed values.
#[test]
fn xep_0420_affix_example() {
    let text =
        "<envelope xmlns='urn:xmpp:sce:1'><content><body xmlns='jabber:client'>x</body></content>\
        <time stamp='2004-01-25T06:05:00+01:00'/>\
        <to jid='missioncontrol@houston.nasa.gov'/>\
        <from jid='opportunity@mars.planet'/>\
        <rpad>C1DHN9HK-9A25tSmwK4hU!Jji9%GKYK^syIlHJT9TnI4</rpad></envelope>";
    let env = round_trip("example 1", text);
    assert_eq!(
        env.time,
        Some(Utc.with_ymd_and_hms(2004, 1, 25, 5, 5, 0).unwrap())
    );
    assert_eq!(
        env.to,
        Some(Jid::new("missioncontrol@houston.nasa.gov").unwrap())
    );
    assert_eq!(env.from, Some(Jid::new("opportunity@mars.planet").unwrap()));
    assert_eq!(
        env.rpad.as_deref(),
        Some("C1DHN9HK-9A25tSmwK4hU!Jji9%GKYK^syIlHJT9TnI4")
    );
    let sender = BareJid::new("opportunity@mars.planet").unwrap();
    let recipient = Jid::new("missioncontrol@houston.nasa.gov/desk").unwrap();
    let then = Utc.with_ymd_and_hms(2004, 1, 25, 5, 6, 0).unwrap();
    env.check_at(&sender, &recipient, then).unwrap();
    env.check_stanza_time(then, TimeDelta::minutes(2)).unwrap();
}

#[test]
fn xep_0384_sce_examples() {
    let examples = fixtures("xep-0384");
    assert_eq!(examples.len(), 2);
    for (name, text) in &examples {
        let env = round_trip(name, text);
        match name.as_str() {
            "06.xml" => {
                assert_eq!(env.rpad.as_deref(), Some("..."));
                assert_eq!(env.from, Some(Jid::new("romeo@montague.lit").unwrap()));
                assert_eq!(env.content[0].text().trim(), "Hello World!");
                env.check(
                    &BareJid::new("romeo@montague.lit").unwrap(),
                    &Jid::new("juliet@capulet.lit").unwrap(),
                )
                .unwrap();
            }
            "08.xml" => {
                assert!(env.content[0].is("opt-out", "urn:xmpp:omemo:2"));
                // The opt-out example has no <from/>: our policy refuses it in check().
                assert_eq!(
                    env.check(
                        &BareJid::new("romeo@montague.lit").unwrap(),
                        &Jid::new("juliet@capulet.lit").unwrap()
                    ),
                    Err(SceError::MissingFrom)
                );
            }
            other => panic!("unexpected example {other}"),
        }
    }
}

/// XEP-0420 examples 7 and 8: the envelope's `<to/>` says `shakespear.lit` (a typo in the XEP) while the
/// IQ goes to `shakespeare.lit`: exactly what the `<to/>` check exists to catch.
#[test]
fn xep_0420_iq_example_to_mismatch() {
    let (_, text) = fixtures("xep-0420")
        .into_iter()
        .find(|(n, _)| n == "07.xml")
        .unwrap();
    let env = Envelope::from_bytes(text.as_bytes()).unwrap();
    let err = env
        .check(
            &BareJid::new("doctor@shakespeare.lit").unwrap(),
            &Jid::new("ladymacbeth@shakespeare.lit/castle").unwrap(),
        )
        .unwrap_err();
    assert_eq!(
        err,
        SceError::ToMismatch {
            claimed: "ladymacbeth@shakespear.lit".to_owned(),
            actual: "ladymacbeth@shakespeare.lit".to_owned()
        }
    );
}

fn env_with(inner: &str) -> String {
    format!("<envelope xmlns='urn:xmpp:sce:1'>{inner}</envelope>")
}

fn parse(text: &str) -> Result<Envelope, SceError> {
    Envelope::from_bytes(text.as_bytes())
}

#[test]
fn malformed_and_hostile_input() {
    let content = "<content><body xmlns='jabber:client'>hi</body></content>";
    assert_eq!(
        Envelope::from_bytes(&[0xff, 0xfe, b'<']),
        Err(SceError::NotUtf8)
    );
    for text in [
        "",
        "hello",
        "<envelope xmlns='urn:xmpp:sce:1'>",
        "<envelope xmlns='urn:xmpp:sce:1'><content></envelope>",
        "<envelope xmlns='urn:xmpp:sce:1'/><envelope xmlns='urn:xmpp:sce:1'/>",
        "<envelope xmlns='urn:xmpp:sce:1'><content/></envelope>trailing",
        "<!DOCTYPE envelope [<!ENTITY a 'aaaa'>]><envelope xmlns='urn:xmpp:sce:1'><content/><rpad>&a;</rpad></envelope>",
        "<envelope xmlns='urn:xmpp:sce:1'><content/><rpad>&unknown;</rpad></envelope>",
        "<envelope xmlns='urn:xmpp:sce:1'><content><x:body/></content></envelope>",
    ] {
        assert!(
            matches!(parse(text), Err(SceError::Xml(_))),
            "{text}: {:?}",
            parse(text)
        );
    }
    // An XML declaration and a byte-order mark before the envelope are accepted; twice is not.
    for prefix in [
        "<?xml version='1.0'?>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "\u{feff}",
        "\u{feff}<?xml version='1.0'?>",
    ] {
        assert_eq!(
            parse(&format!("{prefix}{}", env_with(content))).unwrap(),
            Envelope::new(vec![body("hi")]),
            "{prefix:?}"
        );
    }
    for text in [
        format!(
            "<?xml version='1.0'?><?xml version='1.0'?>{}",
            env_with(content)
        ),
        format!("{}<?xml version='1.0'?>", env_with(content)),
        format!("{} <a xmlns='urn:x'/>", env_with(content)),
        format!("<!-- c -->{}<!-- c -->x", env_with(content)),
        // Closing the parser's wrapper early does not hide trailing content.
        format!(
            "{}</sce-document><sce-document xmlns='urn:xmpp:sce:1#document'>",
            env_with(content)
        ),
        format!("{}</sce-document>", env_with(content)),
        format!("{}</sce-document >junk", env_with(content)),
        "<?xml version='1.0'?".to_owned(),
    ] {
        assert!(matches!(parse(&text), Err(SceError::Xml(_))), "{text}");
    }
    // Not an envelope.
    for text in [
        "<envelope/>",
        "<envelope xmlns='urn:xmpp:sce:0'><content/></envelope>",
        "<content xmlns='urn:xmpp:sce:1'/>",
        "<message xmlns='jabber:client'><envelope xmlns='urn:xmpp:sce:1'><content/></envelope></message>",
    ] {
        assert!(
            matches!(parse(text), Err(SceError::NotAnEnvelope { .. })),
            "{text}"
        );
    }
    // Structure.
    assert_eq!(
        parse(&env_with("<rpad>x</rpad>")),
        Err(SceError::MissingContent)
    );
    assert_eq!(
        parse(&env_with("<content xmlns='urn:xmpp:sce:0'/>")),
        Err(SceError::MissingContent)
    );
    for (dup, name) in [
        ("<content/>", "content"),
        ("<rpad/>", "rpad"),
        ("<from jid='a@b'/>", "from"),
        ("<to jid='a@b'/>", "to"),
        ("<time stamp='2020-01-01T00:00:00Z'/>", "time"),
    ] {
        let text = if name == "content" {
            env_with(&format!("{content}{dup}"))
        } else {
            env_with(&format!("{content}{dup}{dup}"))
        };
        assert_eq!(parse(&text), Err(SceError::Duplicate(name)), "{text}");
    }
    for (affix, element, attribute) in [
        ("<from/>", "from", "jid"),
        ("<to/>", "to", "jid"),
        ("<time/>", "time", "stamp"),
        ("<from xmlns:j='urn:x' j:jid='a@b'/>", "from", "jid"),
    ] {
        assert_eq!(
            parse(&env_with(&format!("{content}{affix}"))),
            Err(SceError::MissingAttribute { element, attribute }),
            "{affix}"
        );
    }
    // Bad JIDs.
    for jid in [
        "",
        "@example.org",
        "a@",
        "a@b@c",
        "a@example.org/",
        "a b@example.org",
    ] {
        for element in ["from", "to"] {
            let r = parse(&env_with(&format!("{content}<{element} jid='{jid}'/>")));
            assert!(
                matches!(&r, Err(SceError::BadJid { element: e, .. }) if *e == element),
                "{element} {jid:?}: {r:?}"
            );
        }
    }
    // A very long bad JID is quoted truncated in the error.
    let long = format!("{}@@x", "a".repeat(1500));
    let Err(SceError::BadJid { value, .. }) =
        parse(&env_with(&format!("{content}<from jid='{long}'/>")))
    else {
        panic!("expected BadJid");
    };
    assert!(value.len() < 100);
    // Bad timestamps.
    for stamp in [
        "",
        "yesterday",
        "2020-01-01",
        "2020-01-01T00:00:00",
        "2020-01-01 00:00:00Z",
        "2020-01-01t00:00:00Z",
        "2020-01-01T00:00:00z",
        "2020-02-30T00:00:00Z",
        "2020-01-01T25:00:00Z",
        "2020-01-01T00:00:00+25:00",
        "20200101T000000Z",
        "+002020-01-01T00:00:00Z",
        &format!("2020-01-01T00:00:00.{}Z", "1".repeat(100)),
    ] {
        let r = parse(&env_with(&format!("{content}<time stamp='{stamp}'/>")));
        assert!(
            matches!(r, Err(SceError::BadTime { .. })),
            "{stamp:?}: {r:?}"
        );
    }
    // Content children must be namespace-qualified; a nested envelope is refused the same way.
    for inner in [
        "<content><body>hi</body></content>",
        "<content><envelope><content/></envelope></content>",
        "<content><envelope xmlns='urn:xmpp:sce:1'><content/></envelope></content>",
        "<content><body xmlns=''>hi</body></content>",
    ] {
        assert!(
            matches!(
                parse(&env_with(inner)),
                Err(SceError::UnqualifiedContent { .. })
            ),
            "{inner}"
        );
    }
    // Size: over the limit refused before parsing; a long padding within it accepted (XEP-0420: longer
    // paddings MUST NOT be rejected).
    let huge = env_with(&format!(
        "{content}<rpad>{}</rpad>",
        "x".repeat(MAX_ENVELOPE_BYTES)
    ));
    assert_eq!(
        parse(&huge),
        Err(SceError::TooLarge {
            size: huge.len(),
            limit: MAX_ENVELOPE_BYTES
        })
    );
    let long_pad = "y".repeat(MAX_ENVELOPE_BYTES / 2);
    let env = parse(&env_with(&format!("{content}<rpad>{long_pad}</rpad>"))).unwrap();
    assert_eq!(env.rpad.as_deref(), Some(long_pad.as_str()));
    assert!(matches!(
        Envelope::from_bytes_with_limit(content.as_bytes(), 10),
        Err(SceError::TooLarge { .. })
    ));
    // Deep nesting inside the content.
    let deep = env_with(&format!(
        "<content>{}{}</content>",
        "<a xmlns='urn:x'>".repeat(1000),
        "</a>".repeat(1000)
    ));
    assert!(matches!(parse(&deep), Err(SceError::TooDeep { .. })));
    // Many siblings within the size limit are fine.
    let wide = env_with(&format!(
        "<content>{}</content>",
        "<a xmlns='urn:x'/>".repeat(10_000)
    ));
    assert_eq!(parse(&wide).unwrap().content.len(), 10_000);
    // Unknown affixes (ours or another protocol's) are ignored; text around children too.
    let env = parse(&env_with(&format!(
        " text {content}<future/><sig xmlns='urn:x'>s</sig> more "
    )))
    .unwrap();
    assert_eq!(env, Envelope::new(vec![body("hi")]));
}

fn body(text: &str) -> Element {
    Element::builder("body", "jabber:client")
        .append(text)
        .build()
}

#[test]
fn server_processed_content() {
    let inner = "<content>\
        <body xmlns='jabber:client'>hi</body>\
        <store xmlns='urn:xmpp:hints'/>\
        <no-permanent-store xmlns='urn:xmpp:hints'/>\
        <stanza-id xmlns='urn:xmpp:sid:0' id='1' by='a@b'/>\
        <origin-id xmlns='urn:xmpp:sid:0' id='2'/>\
        <addresses xmlns='http://jabber.org/protocol/address'><address type='to' jid='c@d'/></addresses>\
        <encryption xmlns='urn:xmpp:eme:0' namespace='urn:xmpp:omemo:2'/>\
        <private xmlns='urn:xmpp:carbons:2'/>\
        <reactions xmlns='urn:xmpp:reactions:0' id='x'><reaction>👍</reaction></reactions>\
        </content>";
    let (env, dropped) = Envelope::from_bytes_detailed(env_with(inner).as_bytes()).unwrap();
    let names: Vec<&str> = env.content.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["body", "origin-id", "reactions"]);
    let dropped: Vec<(&str, &str)> = dropped
        .iter()
        .map(|DroppedElement { namespace, name }| (namespace.as_str(), name.as_str()))
        .collect();
    assert_eq!(
        dropped,
        [
            ("urn:xmpp:hints", "store"),
            ("urn:xmpp:hints", "no-permanent-store"),
            ("urn:xmpp:sid:0", "stanza-id"),
            ("http://jabber.org/protocol/address", "addresses"),
            ("urn:xmpp:eme:0", "encryption"),
            ("urn:xmpp:carbons:2", "private"),
        ]
    );

    // Sending: never written inside, refused by the strict writer, split off by the helper.
    let hint = Element::builder("store", "urn:xmpp:hints").build();
    let stanza_id = Element::builder("stanza-id", "urn:xmpp:sid:0").build();
    let origin_id = Element::builder("origin-id", "urn:xmpp:sid:0").build();
    assert!(is_server_processed(&hint) && is_server_processed(&stanza_id));
    assert!(!is_server_processed(&origin_id) && !is_server_processed(&body("x")));
    let env = Envelope::new(vec![body("hi"), hint.clone(), origin_id.clone()]);
    assert_eq!(
        env.try_to_bytes(),
        Err(SceError::ForbiddenContent {
            namespace: "urn:xmpp:hints".to_owned(),
            name: "store".to_owned()
        })
    );
    let back = Envelope::from_bytes(&env.to_bytes()).unwrap();
    assert_eq!(back.content, vec![body("hi"), origin_id.clone()]);
    assert_eq!(
        Envelope::from_element(&env.to_element()).unwrap().content,
        back.content
    );
    let (inside, outside) = split_server_processed(vec![
        hint.clone(),
        body("hi"),
        stanza_id.clone(),
        origin_id.clone(),
    ]);
    assert_eq!(inside, vec![body("hi"), origin_id]);
    assert_eq!(outside, vec![hint, stanza_id]);
}

#[test]
fn receipt_checks() {
    let alice = BareJid::new("alice@example.org").unwrap();
    let bob = BareJid::new("bob@example.org").unwrap();
    let bob_phone = Jid::new("bob@example.org/phone").unwrap();
    let room = BareJid::new("room@muc.example.org").unwrap();

    let env = Envelope::for_omemo(vec![body("hi")], &alice, &bob_phone);
    let env = Envelope::from_bytes(&env.to_bytes()).unwrap();
    env.check(&alice, &bob_phone).unwrap();
    env.check(&alice, &Jid::from(bob.clone())).unwrap();
    // Wrong sender, wrong recipient.
    assert_eq!(
        env.check(&bob, &bob_phone),
        Err(SceError::FromMismatch {
            claimed: "alice@example.org".to_owned(),
            actual: "bob@example.org".to_owned()
        })
    );
    assert!(matches!(
        env.check(&alice, &Jid::new("carol@example.org").unwrap()),
        Err(SceError::ToMismatch { .. })
    ));
    // A group message replayed as a private one and the other way round.
    let group = Envelope::for_omemo(vec![body("hi")], &alice, &Jid::from(room.clone()));
    group.check_groupchat(&alice, &room).unwrap();
    assert!(matches!(
        group.check(&alice, &bob_phone),
        Err(SceError::ToMismatch { .. })
    ));
    assert!(matches!(
        env.check_groupchat(&alice, &room),
        Err(SceError::ToMismatch { .. })
    ));
    // Missing affixes.
    let mut bare = env.clone();
    bare.to = None;
    bare.time = None;
    bare.check(&alice, &bob_phone).unwrap();
    assert_eq!(
        bare.check_groupchat(&alice, &room),
        Err(SceError::MissingTo)
    );
    bare.from = None;
    assert_eq!(bare.check(&alice, &bob_phone), Err(SceError::MissingFrom));
    // A full JID in <from/> is compared bare.
    let mut full = env.clone();
    full.from = Some(Jid::new("alice@example.org/laptop").unwrap());
    full.check(&alice, &bob_phone).unwrap();

    // Time: the future beyond the skew is refused, the past is not (offline delivery).
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
    let mut timed = env.clone();
    for (offset, ok) in [
        (TimeDelta::zero(), true),
        (MAX_FUTURE_SKEW, true),
        (MAX_FUTURE_SKEW + TimeDelta::seconds(1), false),
        (TimeDelta::days(3650), false),
        (-TimeDelta::days(30), true),
    ] {
        timed.time = Some(now + offset);
        let r = timed.check_at(&alice, &bob_phone, now);
        assert_eq!(r.is_ok(), ok, "{offset}: {r:?}");
        if !ok {
            assert!(matches!(r, Err(SceError::TimeInFuture { .. })));
        }
    }
    // Against a stanza's delay stamp, either way.
    timed.time = Some(now);
    let tol = TimeDelta::minutes(2);
    timed.check_stanza_time(now + tol, tol).unwrap();
    timed.check_stanza_time(now - tol, tol).unwrap();
    assert!(matches!(
        timed.check_stanza_time(now - TimeDelta::hours(1), tol),
        Err(SceError::TimeMismatch { .. })
    ));
    assert!(matches!(
        timed.check_stanza_time(now + TimeDelta::hours(1), tol),
        Err(SceError::TimeMismatch { .. })
    ));
    timed.time = None;
    timed
        .check_stanza_time(now + TimeDelta::hours(1), tol)
        .unwrap();
}

#[test]
fn omemo_profile_envelope() {
    let alice = BareJid::new("alice@example.org").unwrap();
    let bob = Jid::new("bob@example.org/phone").unwrap();
    let content = vec![
        body("a reaction follows"),
        Element::builder("reactions", "urn:xmpp:reactions:0")
            .append(Element::builder("reaction", "urn:xmpp:reactions:0").append("👍"))
            .build(),
    ];
    let env = Envelope::for_omemo(content.clone(), &alice, &bob);
    assert_eq!(env.content, content);
    assert_eq!(env.from, Some(Jid::from(alice.clone())));
    assert_eq!(env.to, Some(Jid::new("bob@example.org").unwrap()));
    let now = Utc::now();
    let t = env.time.unwrap();
    assert!(t <= now && now - t < TimeDelta::seconds(5));
    let pad = env.rpad.as_deref().unwrap();
    assert!(pad
        .chars()
        .all(|c| c.is_ascii_graphic() && !"<>&'\"".contains(c)));
    // The padding varies from envelope to envelope.
    let lengths: std::collections::BTreeSet<usize> = (0..40)
        .map(|_| {
            Envelope::for_omemo(content.clone(), &alice, &bob)
                .to_bytes()
                .len()
        })
        .collect();
    assert!(lengths.len() > 5, "{lengths:?}");
    let text = String::from_utf8(env.to_bytes()).unwrap();
    assert!(
        text.starts_with("<envelope xmlns=\"urn:xmpp:sce:1\"")
            || text.starts_with("<envelope xmlns='urn:xmpp:sce:1'")
    );
    assert!(!text.starts_with("<?xml"));
    assert_eq!(Envelope::from_bytes(text.as_bytes()).unwrap(), env);
    // An envelope without affixes is just the content.
    let plain = Envelope::new(vec![body("x")]);
    assert_eq!(Envelope::from_bytes(&plain.to_bytes()).unwrap(), plain);
    let empty = Envelope::new(vec![]);
    assert_eq!(Envelope::from_bytes(&empty.to_bytes()).unwrap(), empty);
}
