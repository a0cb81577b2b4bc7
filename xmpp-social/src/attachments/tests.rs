//! XEP-0470's own examples (0.2.0, every one of them) and the 0.1.0 formats, round-tripped through the
//! typed model and the request builders; malformed payloads give typed errors.

use crate::test_util::{stanza, strip};
use jid::{BareJid, Jid};
use minidom::Element;

use super::*;
use crate::error::ParseError;
use crate::pubsub::{parse, request, Item, ItemsQuery, NS_PUBSUB};
use crate::xml::parse_bounded;

fn bare(s: &str) -> BareJid {
    BareJid::new(s).expect("valid JID")
}

fn juliet_item() -> ItemRef {
    ItemRef::new(
        Jid::new("juliet@capulet.lit").expect("JID"),
        "urn:xmpp:microblog:0",
        "balcony-restoration-afd1",
    )
}

const NODE: &str = "urn:xmpp:pubsub-attachments:1/xmpp:juliet@capulet.lit?;node=urn%3Axmpp%3Amicroblog%3A0;item=balcony-restoration-afd1";

/// The XEP's examples leave `<attachments/>` without its namespace (it would inherit the pubsub one);
/// the text says it is `urn:xmpp:pubsub-attachments:1`.
fn with_attachments_ns(xml: &str) -> String {
    xml.replace(
        "<attachments>",
        "<attachments xmlns='urn:xmpp:pubsub-attachments:1'>",
    )
}

/// Checks a publish example: node name, item id, payload, and that our builder gives the same request.
fn check_publish_example(xml: &str, expected: &Attachments) {
    // As printed, <attachments/> is in the pubsub namespace: a typed error, not a silent parse.
    let verbatim = stanza(xml).expect("well-formed");
    let item = verbatim
        .get_child("pubsub", NS_PUBSUB)
        .and_then(|p| p.get_child("publish", NS_PUBSUB))
        .and_then(|p| p.get_child("item", NS_PUBSUB))
        .expect("item");
    let payload = item.children().next().expect("payload");
    assert!(matches!(
        Attachments::try_from(payload),
        Err(ParseError::WrongElement { .. })
    ));

    let iq = stanza(&with_attachments_ns(xml)).expect("well-formed");
    let pubsub = iq.get_child("pubsub", NS_PUBSUB).expect("pubsub");
    let publish = pubsub.get_child("publish", NS_PUBSUB).expect("publish");
    assert_eq!(publish.attr("node"), Some(NODE));
    assert_eq!(attachment_node_name(&juliet_item()), NODE);
    assert_eq!(
        target_of_attachment_node(NODE).expect("target"),
        juliet_item()
    );
    let item = publish.get_child("item", NS_PUBSUB).expect("item");
    assert_eq!(item.attr("id"), Some("romeo@montague.lit"));
    let payload = item.children().next().expect("payload");
    let parsed = Attachments::try_from(payload).expect("valid attachments");
    assert_eq!(&parsed, expected);
    // Typed -> XML -> typed is the identity, and the XML is the example's.
    let back = Element::from(&parsed);
    assert_eq!(strip(&back), strip(payload));
    assert_eq!(Attachments::try_from(&back).expect("re-parse"), parsed);
    // Our request builder writes the example's <pubsub/>.
    let built = request::publish(NODE, Some("romeo@montague.lit"), back, None);
    assert_eq!(strip(&built), strip(pubsub));
}

fn ts(s: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    Some(chrono::DateTime::parse_from_rfc3339(s).expect("date"))
}

#[test]
fn example_1_romeo_notices() {
    let xml = r#"<iq from='romeo@montague.lit/123'
    id='attachment_1'
    to='juliet@capulet.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:pubsub-attachments:1/xmpp:juliet@capulet.lit?;node=urn%3Axmpp%3Amicroblog%3A0;item=balcony-restoration-afd1'>
      <item id='romeo@montague.lit'>
        <attachments>
          <noticed timestamp="2022-07-11T12:07:24Z" />
        </attachments>
      </item>
    </publish>
  </pubsub>
</iq>"#;
    let expected = Attachments {
        noticed: Some(Noticed {
            timestamp: ts("2022-07-11T12:07:24Z"),
        }),
        ..Default::default()
    };
    check_publish_example(xml, &expected);
}

#[test]
fn example_2_romeo_reacts() {
    let xml = r#"<iq from='romeo@montague.lit/123'
    id='attachment_2'
    to='juliet@capulet.lit'
    type='set'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='urn:xmpp:pubsub-attachments:1/xmpp:juliet@capulet.lit?;node=urn%3Axmpp%3Amicroblog%3A0;item=balcony-restoration-afd1'>
      <item id='romeo@montague.lit'>
        <attachments>
          <noticed timestamp="2022-07-11T12:07:24Z" />
          <reactions timestamp="2022-07-11T12:07:48Z">
            <reaction>👷</reaction>
            <reaction>🔨</reaction>
          </reactions>
        </attachments>
      </item>
    </publish>
  </pubsub>
</iq>"#;
    let expected = Attachments {
        noticed: Some(Noticed {
            timestamp: ts("2022-07-11T12:07:24Z"),
        }),
        reactions: Some(Reactions {
            timestamp: ts("2022-07-11T12:07:48Z"),
            emojis: vec!["👷".into(), "🔨".into()],
        }),
        extra: Vec::new(),
    };
    check_publish_example(xml, &expected);
}

#[test]
fn example_3_summary_request() {
    let xml = r#"<iq from='romeo@montague.lit/123'
    id='attachment_3'
    to='juliet@capulet.lit'
    type='get'>
    <pubsub xmlns='http://jabber.org/protocol/pubsub'>
      <items node='urn:xmpp:pubsub-attachments:summary:1/urn:xmpp:microblog:0' />
    </pubsub>
  </iq>"#;
    let iq = stanza(xml).expect("well-formed");
    let pubsub = iq.get_child("pubsub", NS_PUBSUB).expect("pubsub");
    let built = request::get_items(
        &summary_node_name("urn:xmpp:microblog:0"),
        &ItemsQuery::default(),
    );
    assert_eq!(strip(&built), strip(pubsub));
}

/// Parses a summary-result example: items page, then each summary; checks the round trip.
fn check_summary_result(xml: &str, node: &str, item_id: &str, expected: &Summary) {
    let iq = stanza(xml).expect("well-formed");
    let pubsub = iq.get_child("pubsub", NS_PUBSUB).expect("pubsub");
    let page = parse::parse_items_result(pubsub).expect("items result");
    assert_eq!(page.node, node);
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, item_id);
    let payload = page.items[0].payload.as_ref().expect("summary");
    let summary = Summary::try_from(payload).expect("valid summary");
    assert_eq!(&summary, expected);
    let back = Element::from(&summary);
    assert_eq!(strip(&back), strip(payload));
    assert_eq!(Summary::try_from(&back).expect("re-parse"), summary);
}

fn rc(emoji: &str, count: u64) -> ReactionCount {
    ReactionCount {
        emoji: emoji.into(),
        count,
    }
}

#[test]
fn example_4_summary_result() {
    let xml = r#"<iq from='juliet@capulet.lit'
    id='attachment_3'
    to='romeo@montague.lit/123'
    type='result'>
    <pubsub xmlns='http://jabber.org/protocol/pubsub'>
      <items node='urn:xmpp:pubsub-attachments:summary:1/urn:xmpp:microblog:0'>
        <item id='balcony-restoration-afd1'>
          <summary xmlns='urn:xmpp:pubsub-attachments:summary:1'>
            <noticed count="5" />
            <reactions>
              <reaction count="2">👷</reaction>
              <reaction>🔨</reaction>
              <reaction>🔧</reaction>
              <reaction>🚧</reaction>
            </reactions>
          </summary>
        </item>
        <!-- ... -->
      </items>
    </pubsub>
  </iq>"#;
    // XMPP forbids comments: the example as printed is refused with a typed XML error.
    assert!(matches!(stanza(xml), Err(ParseError::Xml(_))));
    let xml = xml.replace("<!-- ... -->", "");
    let expected = Summary {
        noticed: Some(5),
        reactions: vec![rc("👷", 2), rc("🔨", 1), rc("🔧", 1), rc("🚧", 1)],
        extra: Vec::new(),
    };
    check_summary_result(
        &xml,
        "urn:xmpp:pubsub-attachments:summary:1/urn:xmpp:microblog:0",
        "balcony-restoration-afd1",
        &expected,
    );
}

#[test]
fn example_5_noticed_summary() {
    let xml = r#"<iq from='pubsub.example.net'
    id='attachment_4'
    to='juliet@capulet.lit/123'
    type='result'>
    <pubsub xmlns='http://jabber.org/protocol/pubsub'>
      <items node='urn:xmpp:pubsub-attachments:summary:1/urn:xmpp:example:0'>
        <item id='ball-event-ab1e'>
          <summary xmlns='urn:xmpp:pubsub-attachments:summary:1'>
            <noticed count="25" />
          </summary>
        </item>
      </items>
    </pubsub>
  </iq>"#;
    let expected = Summary {
        noticed: Some(25),
        ..Default::default()
    };
    check_summary_result(
        xml,
        &summary_node_name("urn:xmpp:example:0"),
        "ball-event-ab1e",
        &expected,
    );
}

#[test]
fn example_6_reactions_summary() {
    let xml = r#"<iq from='pubsub.example.net'
    id='attachment_5'
    to='juliet@capulet.lit/123'
    type='result'>
    <pubsub xmlns='http://jabber.org/protocol/pubsub'>
      <items node='urn:xmpp:pubsub-attachments:summary:1/urn:xmpp:example:0'>
        <item id='ball-event-ab1e'>
          <summary xmlns='urn:xmpp:pubsub-attachments:summary:1'>
            <reactions>
              <reaction count="22">💃</reaction>
              <reaction count="2">🩰</reaction>
              <reaction>🎉</reaction>
              <reaction>🥳</reaction>
              <reaction>🎈</reaction>
            </reactions>
          </summary>
        </item>
      </items>
    </pubsub>
  </iq>"#;
    let expected = Summary {
        noticed: None,
        reactions: vec![
            rc("💃", 22),
            rc("🩰", 2),
            rc("🎉", 1),
            rc("🥳", 1),
            rc("🎈", 1),
        ],
        extra: Vec::new(),
    };
    check_summary_result(
        xml,
        &summary_node_name("urn:xmpp:example:0"),
        "ball-event-ab1e",
        &expected,
    );
}

#[test]
fn examples_7_8_disco() {
    let request = r#"<iq from='example.org'
    id='disco1'
    to='example.com'
    type='get'>
  <query xmlns='http://jabber.org/protocol/disco#info'/>
</iq>"#;
    let iq = stanza(request).expect("well-formed");
    let query = iq
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .expect("query");
    assert_eq!(
        strip(query),
        Element::builder("query", "http://jabber.org/protocol/disco#info").build()
    );
    let response = r#"<iq from='example.com'
    id='disco1'
    to='example.org'
    type='result'>
  <query xmlns='http://jabber.org/protocol/disco#info'>
    …
    <feature var='urn:xmpp:pubsub-attachments:1'/>
    …
  </query>
</iq>"#;
    let iq = stanza(response).expect("well-formed");
    let query = iq
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .expect("query");
    let features: Vec<&str> = query.children().filter_map(|f| f.attr("var")).collect();
    assert_eq!(features, [NS_ATTACHMENTS]);
}

// ---------------------------------------------------------------------------------------------
// XEP-0470 0.1.0 (`:0`) formats, as the 0.1.0 text printed them
// ---------------------------------------------------------------------------------------------

#[test]
fn reads_0_1_0_attachments() {
    let xml = r#"<attachments xmlns='urn:xmpp:pubsub-attachments:0'>
          <noticed timestamp="2022-07-11T12:07:24Z" />
          <reaction timestamp="2022-07-11T12:07:48Z">👷🔨</reaction>
        </attachments>"#;
    let el = parse_bounded(xml, 4096).expect("xml");
    let a = Attachments::try_from(&el).expect("0.1.0 attachments");
    assert_eq!(
        a,
        Attachments {
            noticed: Some(Noticed {
                timestamp: ts("2022-07-11T12:07:24Z"),
            }),
            reactions: Some(Reactions {
                timestamp: ts("2022-07-11T12:07:48Z"),
                emojis: vec!["👷".into(), "🔨".into()],
            }),
            extra: Vec::new(),
        }
    );
    // Written back in the current namespace and format.
    let back = Element::from(&a);
    assert!(back.is("attachments", NS_ATTACHMENTS));
    assert!(back
        .get_child("reactions", NS_ATTACHMENTS)
        .is_some_and(|r| r.children().count() == 2));
    // The 0.1.0 attachment node name.
    assert_eq!(
        legacy_attachment_node_name(&juliet_item()),
        NODE.replace("attachments:1/", "attachments:0/")
    );
    assert_eq!(
        target_of_attachment_node(&legacy_attachment_node_name(&juliet_item())).expect("target"),
        juliet_item()
    );
}

#[test]
fn reads_0_1_0_summaries() {
    let xml = r#"<summary xmlns='urn:xmpp:pubsub-attachments:summary:0'>
            <noticed count="5" />
            <reaction >
              <multiple count="2">👷</multiple>
                🔨🔧🚧
            </reaction>
          </summary>"#;
    let el = parse_bounded(xml, 4096).expect("xml");
    let s = Summary::try_from(&el).expect("0.1.0 summary");
    assert_eq!(
        s,
        Summary {
            noticed: Some(5),
            reactions: vec![rc("👷", 2), rc("🔨", 1), rc("🔧", 1), rc("🚧", 1)],
            extra: Vec::new(),
        }
    );
    let xml = r#"<summary xmlns='urn:xmpp:pubsub-attachments:summary:0'>
            <reaction >
              <multiple count="22">💃</multiple>
              <multiple count="2">🩰</multiple>
                🎉🥳🎈
            </reaction>
          </summary>"#;
    let s = Summary::try_from(&parse_bounded(xml, 4096).expect("xml")).expect("0.1.0 summary");
    assert_eq!(s.count_of("💃"), 22);
    assert_eq!(s.count_of("🩰"), 2);
    assert_eq!(s.count_of("🥳"), 1);
    assert_eq!(s.reactions.len(), 5);
}

// ---------------------------------------------------------------------------------------------
// Unknown attachments, counting rules, checks
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_attachments_survive_a_round_trip() {
    let xml = r#"<attachments xmlns='urn:xmpp:pubsub-attachments:1'>
        <rsvp xmlns='urn:example:rsvp:0' answer='yes'><note>see you</note></rsvp>
        <reactions><reaction>👍</reaction></reactions>
        <future-thing timestamp='2030-01-01T00:00:00Z'/>
      </attachments>"#;
    let el = parse_bounded(xml, 4096).expect("xml");
    let mut a = Attachments::try_from(&el).expect("valid");
    assert_eq!(a.extra.len(), 2);
    assert_eq!(a.emojis(), ["👍"]);
    // A client changes what it knows; the rest goes back untouched.
    a.noticed = Some(Noticed { timestamp: None });
    a.reactions = None;
    let back = Element::from(&a);
    let again = Attachments::try_from(&back).expect("re-parse");
    assert_eq!(again.extra, a.extra);
    assert_eq!(
        strip(&again.extra[0]),
        strip(
            &parse_bounded(
                "<rsvp xmlns='urn:example:rsvp:0' answer='yes'><note>see you</note></rsvp>",
                4096
            )
            .expect("xml")
        )
    );
    assert!(again.reactions.is_none());
    assert!(again.is_noticed());
}

#[test]
fn summary_counting_rules() {
    let a = |noticed: bool, emojis: &[&str]| Attachments {
        noticed: noticed.then(Noticed::default),
        reactions: (!emojis.is_empty()).then(|| Reactions {
            timestamp: None,
            emojis: emojis.iter().map(|e| (*e).to_owned()).collect(),
        }),
        extra: Vec::new(),
    };
    let (romeo, mercutio, benvolio) = (
        bare("romeo@montague.lit"),
        bare("mercutio@escalus.lit"),
        bare("benvolio@montague.lit"),
    );
    let ra = a(true, &["👷", "🔨"]);
    let ma = a(true, &["👷"]);
    let ba = a(false, &["🎉", "🎉"]);
    // Romeo appears twice (e.g. current and 0.1.0 nodes): he counts once.
    let s = Summary::compute([
        (&romeo, &ra),
        (&mercutio, &ma),
        (&benvolio, &ba),
        (&romeo, &ra),
    ]);
    assert_eq!(s.noticed, Some(2));
    assert_eq!(s.reactions, vec![rc("👷", 2), rc("🎉", 1), rc("🔨", 1)]);
    // `count` only above 1.
    let el = Element::from(&s);
    let reactions = el.get_child("reactions", NS_SUMMARY).expect("reactions");
    let counts: Vec<Option<&str>> = reactions.children().map(|r| r.attr("count")).collect();
    assert_eq!(counts, [Some("2"), None, None]);
    assert_eq!(
        el.get_child("noticed", NS_SUMMARY)
            .and_then(|n| n.attr("count")),
        Some("2")
    );
    // Nothing attached: an empty summary.
    assert!(Summary::compute([(&romeo, &Attachments::default())]).is_empty());
    // A parsed duplicate reaction in one JID's item is kept once.
    let dup = parse_bounded(
        "<attachments xmlns='urn:xmpp:pubsub-attachments:1'><reactions><reaction>🎉</reaction><reaction>🎉</reaction></reactions></attachments>",
        4096,
    )
    .expect("xml");
    assert_eq!(Attachments::try_from(&dup).expect("valid").emojis(), ["🎉"]);
}

#[test]
fn view_sets_forgeries_and_junk_aside() {
    let payload = |xml: &str| Some(parse_bounded(xml, 4096).expect("xml"));
    let good = "<attachments xmlns='urn:xmpp:pubsub-attachments:1'><noticed/><reactions><reaction>👍</reaction></reactions></attachments>";
    let items = vec![
        Item {
            id: "romeo@montague.lit".into(),
            publisher: Some(Jid::new("romeo@montague.lit/phone").expect("JID")),
            payload: payload(good),
        },
        // Tybalt publishes under Mercutio's JID: a forgery.
        Item {
            id: "mercutio@escalus.lit".into(),
            publisher: Some(Jid::new("tybalt@capulet.lit").expect("JID")),
            payload: payload(good),
        },
        Item {
            id: "not a jid@@".into(),
            publisher: None,
            payload: payload(good),
        },
        Item {
            id: "nurse@capulet.lit/kitchen".into(),
            publisher: None,
            payload: payload(good),
        },
        Item {
            id: "benvolio@montague.lit".into(),
            publisher: None,
            payload: payload("<entry xmlns='http://www.w3.org/2005/Atom'/>"),
        },
        Item {
            id: "paris@verona.lit".into(),
            publisher: None,
            payload: payload(
                "<attachments xmlns='urn:xmpp:pubsub-attachments:0'><reaction>🎉💐</reaction></attachments>",
            ),
        },
    ];
    let view = AttachmentsView::from_items(juliet_item(), NODE.into(), items);
    let ids: Vec<&str> = view.by_jid.iter().map(|j| j.jid.as_str()).collect();
    assert_eq!(ids, ["romeo@montague.lit", "paris@verona.lit"]);
    assert_eq!(view.rejected.len(), 4);
    assert!(view.by_jid[1].legacy);
    assert_eq!(view.summary.noticed, Some(1));
    assert_eq!(view.summary.count_of("💐"), 1);
    assert_eq!(view.noticed_by(), [&bare("romeo@montague.lit")]);
    assert_eq!(view.reacted_with("🎉"), [&bare("paris@verona.lit")]);
    // The JSON form (for CLIs) is stable.
    let json = serde_json::to_value(&view).expect("json");
    assert_eq!(json["target"], format!("xmpp:juliet@capulet.lit?;node=urn%3Axmpp%3Amicroblog%3A0;item=balcony-restoration-afd1"));
    assert_eq!(json["by_jid"][0]["jid"], "romeo@montague.lit");
    assert_eq!(json["by_jid"][0]["reactions"]["emojis"][0], "👍");
    assert_eq!(json["summary"]["noticed"], 1);
}

#[test]
fn malformed_payloads_are_typed_errors() {
    type Check = fn(&ParseError) -> bool;
    let cases: &[(&str, Check)] = &[
        (
            "<attachment xmlns='urn:xmpp:pubsub-attachments:1'/>",
            |e| matches!(e, ParseError::WrongElement { .. }),
        ),
        (
            "<attachments xmlns='urn:xmpp:pubsub-attachments:2'/>",
            |e| matches!(e, ParseError::WrongElement { .. }),
        ),
        (
            "<attachments xmlns='urn:xmpp:pubsub-attachments:1'><noticed timestamp='yesterday'/></attachments>",
            |e| matches!(e, ParseError::InvalidValue { element: "noticed@timestamp", .. }),
        ),
        (
            "<attachments xmlns='urn:xmpp:pubsub-attachments:1'><noticed/><noticed/></attachments>",
            |e| matches!(e, ParseError::InvalidValue { .. }),
        ),
        (
            "<attachments xmlns='urn:xmpp:pubsub-attachments:1'><reactions><reaction>  </reaction></reactions></attachments>",
            |e| matches!(e, ParseError::InvalidValue { element: "reaction", .. }),
        ),
        (
            "<attachments xmlns='urn:xmpp:pubsub-attachments:1'><reactions/><reactions/></attachments>",
            |e| matches!(e, ParseError::InvalidValue { .. }),
        ),
    ];
    for (xml, check) in cases {
        let el = parse_bounded(xml, 4096).expect("xml");
        let err = Attachments::try_from(&el).expect_err(xml);
        assert!(check(&err), "{xml}: {err:?}");
    }
    let long = format!(
        "<attachments xmlns='urn:xmpp:pubsub-attachments:1'><reactions><reaction>{}</reaction></reactions></attachments>",
        "👍".repeat(100)
    );
    assert!(matches!(
        Attachments::try_from(&parse_bounded(&long, 1 << 16).expect("xml")),
        Err(ParseError::TooLarge { .. })
    ));
    let many: String = (0..300)
        .map(|i| {
            format!(
                "<reaction>{}</reaction>",
                char::from_u32(0x1F600 + i).unwrap_or('x')
            )
        })
        .collect();
    let many = format!("<attachments xmlns='urn:xmpp:pubsub-attachments:1'><reactions>{many}</reactions></attachments>");
    assert!(matches!(
        Attachments::try_from(&parse_bounded(&many, 1 << 16).expect("xml")),
        Err(ParseError::TooLarge { .. })
    ));
    let children = "<x xmlns='urn:example'/>".repeat(65);
    let children =
        format!("<attachments xmlns='urn:xmpp:pubsub-attachments:1'>{children}</attachments>");
    assert!(matches!(
        Attachments::try_from(&parse_bounded(&children, 1 << 16).expect("xml")),
        Err(ParseError::TooLarge { .. })
    ));

    let summaries: &[&str] = &[
        "<summary xmlns='urn:xmpp:pubsub-attachments:summary:1'><noticed count='many'/></summary>",
        "<summary xmlns='urn:xmpp:pubsub-attachments:summary:1'><noticed count='-1'/></summary>",
        "<summary xmlns='urn:xmpp:pubsub-attachments:summary:1'><reactions><reaction count='0'>👍</reaction></reactions></summary>",
        "<summary xmlns='urn:xmpp:pubsub-attachments:summary:1'><reactions><reaction count='2'/></reactions></summary>",
        "<summary xmlns='urn:xmpp:pubsub-attachments:summary:0'><reaction><multiple>👍</multiple></reaction></summary>",
        "<summaries xmlns='urn:xmpp:pubsub-attachments:summary:1'/>",
    ];
    for xml in summaries {
        let el = parse_bounded(xml, 4096).expect("xml");
        assert!(Summary::try_from(&el).is_err(), "{xml}");
    }
    for bad in [
        "urn:xmpp:microblog:0",
        "urn:xmpp:pubsub-attachments:1/",
        "urn:xmpp:pubsub-attachments:1/xmpp:juliet@capulet.lit",
        "urn:xmpp:pubsub-attachments:1/xmpp:juliet@capulet.lit?;node=%ZZ;item=a",
        "urn:xmpp:pubsub-attachments:1/http://example.org/",
    ] {
        assert!(target_of_attachment_node(bad).is_err(), "{bad}");
    }
}

#[test]
fn node_names_percent_encode_the_target() {
    let target = ItemRef::new(
        Jid::new("pubsub.example.org").expect("JID"),
        "blog/with spaces;and=signs?",
        "a b&c",
    );
    let node = attachment_node_name(&target);
    assert_eq!(
        node,
        "urn:xmpp:pubsub-attachments:1/xmpp:pubsub.example.org?;node=blog%2Fwith%20spaces%3Band%3Dsigns%3F;item=a%20b%26c"
    );
    assert_eq!(target_of_attachment_node(&node).expect("target"), target);
    // A full JID as service: the node is named after the bare JID.
    let full = ItemRef::new(
        Jid::new("juliet@capulet.lit/balcony").expect("JID"),
        "urn:xmpp:microblog:0",
        "balcony-restoration-afd1",
    );
    assert_eq!(attachment_node_name(&full), NODE);
    assert_eq!(
        summary_node_name("urn:xmpp:microblog:0"),
        "urn:xmpp:pubsub-attachments:summary:1/urn:xmpp:microblog:0"
    );
}
