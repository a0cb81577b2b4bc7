//! XEP-0465's examples (0.1.1, every one) and XEP-0376's (0.2, every one), round-tripped; the typos the
//! examples carry (`xmln=`, `xml=`, a misplaced quote, an unclosed element) are typed errors as
//! printed and parse once corrected. A scripted connection checks the requests and the
//! unsupported-server path without a server.

use crate::test_util::{stanza, strip};
use std::sync::{Arc, Mutex};

use jid::{BareJid, Jid};
use minidom::Element;
use tokio::sync::broadcast;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use super::*;
use crate::connection::{Connection, Incoming, IqRequest, IqType};
use crate::error::{ParseError, Result};
use crate::pubsub::{parse, request, Item, ItemsQuery, SubscriptionState, NS_PUBSUB};
use crate::xml::parse_bounded;

fn jid(s: &str) -> Jid {
    Jid::new(s).expect("JID")
}

fn first_child(el: &Element) -> &Element {
    el.children().next().expect("a child")
}

/// A PAM request example: as printed (`xmln=`), `<pam/>` is in jabber:client, a typed error; with the
/// namespace it round-trips.
fn check_pam_example(xml: &str, expected: &PamRequest) {
    let verbatim = stanza(xml).expect("well-formed");
    assert!(matches!(
        PamRequest::try_from(first_child(&verbatim)),
        Err(ParseError::WrongElement { .. })
    ));
    let iq = stanza(&xml.replace("xmln=", "xmlns=")).expect("well-formed");
    let pam = first_child(&iq);
    let parsed = PamRequest::try_from(pam).expect("valid pam");
    assert_eq!(&parsed, expected);
    let back = Element::from(&parsed);
    assert_eq!(strip(&back), strip(pam));
    assert_eq!(PamRequest::try_from(&back).expect("re-parse"), parsed);
}

#[test]
fn xep0465_example_1_public_subscription() {
    let xml = r#"<iq type='set' id='sub1'>
  <pam xmln='urn:xmpp:pam:0' jid='benvolio@montague.lit'>
    <subscribe xmlns='http://jabber.org/protocol/pubsub'
        node='urn:xmpp:microblog:0'
        jid='romeo@montague.lit'>
        <public xmlns='urn:xmpp:pps:0'/>
    </subscribe>
  </pam>
</iq>"#;
    check_pam_example(
        xml,
        &PamRequest {
            namespace: NS_PAM,
            service: jid("benvolio@montague.lit"),
            action: PamAction::Subscribe,
            node: "urn:xmpp:microblog:0".into(),
            jid: jid("romeo@montague.lit"),
            public: true,
        },
    );
}

#[test]
fn xep0465_example_2_non_public_subscription() {
    let xml = r#"<iq type='set' id='sub2'>
  <pam xmln='urn:xmpp:pam:0' jid='juliet@capulet.lit'>
    <subscribe xmlns='http://jabber.org/protocol/pubsub'
        node='urn:xmpp:microblog:0'
        jid='romeo@montague.lit'/>
  </pam>
</iq>"#;
    check_pam_example(
        xml,
        &PamRequest {
            namespace: NS_PAM,
            service: jid("juliet@capulet.lit"),
            action: PamAction::Subscribe,
            node: "urn:xmpp:microblog:0".into(),
            jid: jid("romeo@montague.lit"),
            public: false,
        },
    );
}

fn check_items_request(xml: &str, node: &str) {
    let iq = stanza(xml).expect("well-formed");
    let pubsub = iq.get_child("pubsub", NS_PUBSUB).expect("pubsub");
    assert_eq!(
        strip(&request::get_items(node, &ItemsQuery::default())),
        strip(pubsub)
    );
}

#[test]
fn xep0465_examples_3_4_public_subscriptions() {
    check_items_request(
        r#"<iq type='get'
    from='mercutio@escalus.lit/play.456'
    to='romeo@montague.lit'
    id='get_pub_sub1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <items node='urn:xmpp:pps:subscriptions:0'/>
  </pubsub>
</iq>"#,
        NODE_PUBLIC_SUBSCRIPTIONS,
    );
    let xml = r#"<iq type='result'
    from='romeo@montague.lit'
    to='mercutio@escalus.lit/play.456'
    id='get_pub_sub1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <items node='urn:xmpp:pps:subscriptions:0'>
      <item id='abcd'>
          <subscription xmlns='urn:xmpp:pps:0' node='urn:xmpp:microblog:0' jid='benvolio@montague.lit' />
      </item>
    </items>
  </pubsub>
</iq>"#;
    let iq = stanza(xml).expect("well-formed");
    let page = parse::parse_items_result(iq.get_child("pubsub", NS_PUBSUB).expect("pubsub"))
        .expect("items");
    assert_eq!(page.node, NODE_PUBLIC_SUBSCRIPTIONS);
    let payload = page.items[0].payload.clone().expect("payload");
    let list = PublicSubscriptions::from_items(
        BareJid::new("romeo@montague.lit").expect("JID"),
        page.items,
    );
    assert!(list.rejected.is_empty());
    assert_eq!(
        list.subscriptions,
        [ListEntry {
            item_id: "abcd".into(),
            entry: PublicSubscription::new(jid("benvolio@montague.lit"), "urn:xmpp:microblog:0"),
        }]
    );
    let back = Element::from(&list.subscriptions[0].entry);
    assert_eq!(strip(&back), strip(&payload));
    let json = serde_json::to_value(&list).expect("json");
    assert_eq!(json["subscriptions"][0]["service"], "benvolio@montague.lit");
    assert_eq!(json["subscriptions"][0]["node"], "urn:xmpp:microblog:0");
    assert_eq!(json["subscriptions"][0]["item_id"], "abcd");
}

#[test]
fn xep0465_examples_5_6_public_subscribers() {
    check_items_request(
        r#"<iq type='get'
    from='mercutio@escalus.lit/play.456'
    to='romeo@montague.lit'
    id='get_pub_sub2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
      <items node='urn:xmpp:pps:subscribers:0/urn:xmpp:microblog:0'/>
  </pubsub>
</iq>"#,
        &subscribers_node_name("urn:xmpp:microblog:0"),
    );
    let xml = r#"<iq type='result'
    from='romeo@montague.lit'
    to='mercutio@escalus.lit/play.456'
    id='get_pub_sub2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <items node=''urn:xmpp:pps:subscribers:0/urn:xmpp:microblog:0>
      <item id='defg'>
          <subscriber xmlns='urn:xmpp:pps:0' jid='benvolio@montague.lit' />
      </item>
    </items>
  </pubsub>
</iq>"#;
    // The quote is misplaced in the XEP: not well-formed, a typed error.
    assert!(matches!(stanza(xml), Err(ParseError::Xml(_))));
    let xml = xml.replace(
        "node=''urn:xmpp:pps:subscribers:0/urn:xmpp:microblog:0>",
        "node='urn:xmpp:pps:subscribers:0/urn:xmpp:microblog:0'>",
    );
    let iq = stanza(&xml).expect("well-formed");
    let page = parse::parse_items_result(iq.get_child("pubsub", NS_PUBSUB).expect("pubsub"))
        .expect("items");
    assert_eq!(page.node, subscribers_node_name("urn:xmpp:microblog:0"));
    let payload = page.items[0].payload.clone().expect("payload");
    let list = PublicSubscribers::from_items(
        jid("romeo@montague.lit"),
        "urn:xmpp:microblog:0".into(),
        page.items,
    );
    assert_eq!(
        list.subscribers,
        [ListEntry {
            item_id: "defg".into(),
            entry: PublicSubscriber::new(jid("benvolio@montague.lit")),
        }]
    );
    assert_eq!(
        strip(&Element::from(&list.subscribers[0].entry)),
        strip(&payload)
    );
}

#[test]
fn xep0465_examples_7_8_disco() {
    let iq = stanza(
        r#"<iq from='example.org'
    id='disco1'
    to='example.com'
    type='get'>
  <query xmlns='http://jabber.org/protocol/disco#info'/>
</iq>"#,
    )
    .expect("well-formed");
    assert!(first_child(&iq).is("query", "http://jabber.org/protocol/disco#info"));
    let iq = stanza(
        r#"<iq from='example.com'
    id='disco1'
    to='example.org'
    type='result'>
  <query xmlns='http://jabber.org/protocol/disco#info'>
    …
    <feature var='urn:xmpp:pps:0'/>
    …
  </query>
</iq>"#,
    )
    .expect("well-formed");
    let features: Vec<&str> = first_child(&iq)
        .children()
        .filter_map(|f| f.attr("var"))
        .collect();
    assert_eq!(features, [NS_PPS]);
}

#[test]
fn xep0376_example_1_subscribe() {
    let xml = r#"<iq type='set' id='sub1'>
        <pam xmln='urn:xmpp:pam:0' jid='pubsub.shakespeare.lit'>
          <subscribe xmlns='http://jabber.org/protocol/pubsub'
              node='princely_musings'
              jid='francisco@denmark.lit'/>
        </pam>
      </iq>"#;
    check_pam_example(
        xml,
        &PamRequest {
            namespace: NS_PAM,
            service: jid("pubsub.shakespeare.lit"),
            action: PamAction::Subscribe,
            node: "princely_musings".into(),
            jid: jid("francisco@denmark.lit"),
            public: false,
        },
    );
    // Unsubscribing is "as above".
    let unsub = PamRequest {
        action: PamAction::Unsubscribe,
        public: true,
        ..PamRequest::try_from(&Element::from(&PamRequest {
            namespace: NS_PAM,
            service: jid("pubsub.shakespeare.lit"),
            action: PamAction::Subscribe,
            node: "princely_musings".into(),
            jid: jid("francisco@denmark.lit"),
            public: false,
        }))
        .expect("valid")
    };
    let el = Element::from(&unsub);
    let op = first_child(&el);
    assert!(op.is("unsubscribe", NS_PUBSUB));
    assert!(
        op.get_child("public", NS_PPS).is_none(),
        "no <public/> on an unsubscribe"
    );
}

#[test]
fn xep0376_example_2_notify() {
    let xml = r#"<message>
        <notify ver='aocolb' service='pubsub.shakespeare.lit' xmlns='urn:xmpp:pam:0'>
          <subscription xmlns='http://jabber.org/protocol/pubsub'
              node='princely_musings'
              jid='francisco@denmark.lit'
              subscription='subscribed'/>
       </notify>
     </message>"#;
    let el = stanza(xml).expect("well-formed");
    let message = xmpp_parsers::message::Message::try_from(el.clone()).expect("message");
    let notify = PamNotify::from_message(&message)
        .expect("has a notify")
        .expect("valid notify");
    assert_eq!(notify.ver.as_deref(), Some("aocolb"));
    assert_eq!(notify.service, jid("pubsub.shakespeare.lit"));
    assert_eq!(
        notify.subscription.node.as_deref(),
        Some("princely_musings")
    );
    assert_eq!(notify.subscription.jid, jid("francisco@denmark.lit"));
    assert_eq!(notify.subscription.state, SubscriptionState::Subscribed);
    assert_eq!(strip(&Element::from(&notify)), strip(first_child(&el)));
}

#[test]
fn xep0376_examples_3_4_errors() {
    let cases = [
        (
            r#"<iq type='error' id='sub1'>
        <error type='modify' by='francisco@denmark.lit'>
          <bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
          <invalid-jid xmlns='http://jabber.org/protocol/pubsub#errors'/>
        </error>
      </iq>"#,
            DefinedCondition::BadRequest,
            "invalid-jid",
            "francisco@denmark.lit",
        ),
        (
            r#"<iq type='error' id='sub1'>
    <error type='auth' by='pubsub.shakespeare.lit'>
      <not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
      <presence-subscription-required xmlns='http://jabber.org/protocol/pubsub#errors'/>
    </error>
  </iq>"#,
            DefinedCondition::NotAuthorized,
            "presence-subscription-required",
            "pubsub.shakespeare.lit",
        ),
    ];
    for (xml, condition, pubsub_condition, by) in cases {
        let iq = stanza(xml).expect("well-formed");
        let error = StanzaError::try_from(first_child(&iq).clone()).expect("stanza error");
        assert_eq!(error.by, Some(jid(by)));
        let err = crate::Error::from(error);
        assert!(err.is_condition(condition));
        let other = err
            .stanza_error()
            .and_then(|e| e.other.as_ref())
            .expect("pubsub condition");
        assert!(other.is(pubsub_condition, "http://jabber.org/protocol/pubsub#errors"));
    }
}

#[test]
fn xep0376_examples_5_6_subscription_lists() {
    // Example 5 as printed: `xml=` for `xmlns=`, and <subscriptions> never closed.
    let xml = r#"<iq type='get' id='subscriptions1'>
        <subscriptions xml='urn:xmpp:pam:0' ver='asdvcjkasdjb'>
      </iq>"#;
    assert!(matches!(stanza(xml), Err(ParseError::Xml(_))));
    let fixed = xml
        .replace("xml=", "xmlns=")
        .replace("'asdvcjkasdjb'>", "'asdvcjkasdjb'/>");
    let iq = stanza(&fixed).expect("well-formed");
    let req = PamSubscriptions::try_from(first_child(&iq)).expect("valid");
    assert_eq!(req.ver.as_deref(), Some("asdvcjkasdjb"));
    assert!(req.subscriptions.is_empty());
    assert_eq!(strip(&Element::from(&req)), strip(first_child(&iq)));

    let xml = r#"<iq type='result' id='subscription1'>
        <subscriptions xml='urn:xmpp:pam:0' ver='kjlsadhfsd'>
          <subscription service='pubsub.shakespeare.lit' node='node1' jid='francisco@denmark.lit' subscription='subscribed'/>
          <subscription service='pubsub.marlowe.lit' node='node2' jid='francisco@denmark.lit' subscription='subscribed'/>
          <subscription service='pubsub.marlowe.lit' node='node5' jid='francisco@denmark.lit' subscription='unconfigured'/>
          <subscription service='pubsub.shakespeare.lit' node='node6' jid='francisco@denmark.lit' subscription='subscribed' subid='123-abc'/>
          <subscription service='pubsub.shakespeare.lit' node='node6' jid='francisco@denmark.lit' subscription='subscribed' subid='004-yyy'/>
        </subscriptions>
      </iq>"#;
    let verbatim = stanza(xml).expect("well-formed");
    assert!(matches!(
        PamSubscriptions::try_from(first_child(&verbatim)),
        Err(ParseError::WrongElement { .. })
    ));
    let iq = stanza(&xml.replace("xml=", "xmlns=")).expect("well-formed");
    let list = PamSubscriptions::try_from(first_child(&iq)).expect("valid");
    assert_eq!(list.ver.as_deref(), Some("kjlsadhfsd"));
    assert_eq!(list.subscriptions.len(), 5);
    assert_eq!(list.subscriptions[2].state, SubscriptionState::Unconfigured);
    assert_eq!(list.subscriptions[4].subid.as_deref(), Some("004-yyy"));
    assert_eq!(list.subscriptions[1].service, jid("pubsub.marlowe.lit"));
    assert_eq!(strip(&Element::from(&list)), strip(first_child(&iq)));
    assert_eq!(
        PamSubscriptions::try_from(&Element::from(&list)).expect("re-parse"),
        list
    );
}

#[test]
fn lists_set_forgeries_and_withdrawn_entries_aside() {
    let p = |xml: &str| Some(parse_bounded(xml, 4096).expect("xml"));
    let items = vec![
        Item {
            id: "a".into(),
            publisher: Some(jid("romeo@montague.lit/phone")),
            payload: p("<subscription xmlns='urn:xmpp:pps:0' node='blog' jid='pubsub.example.org'/>"),
        },
        // Libervia 0.9 writes `service` instead of `jid`.
        Item {
            id: "b".into(),
            publisher: Some(jid("montague.lit")),
            payload: p("<subscription xmlns='urn:xmpp:pps:0' node='n2' service='benvolio@montague.lit'/>"),
        },
        Item {
            id: "c".into(),
            publisher: Some(jid("tybalt@capulet.lit")),
            payload: p("<subscription xmlns='urn:xmpp:pps:0' node='n3' jid='juliet@capulet.lit'/>"),
        },
        Item {
            id: "d".into(),
            publisher: None,
            payload: p("<subscription xmlns='urn:xmpp:pps:0' node='n4' jid='juliet@capulet.lit' subscription='none'/>"),
        },
        Item {
            id: "e".into(),
            publisher: None,
            payload: p("<subscription xmlns='urn:xmpp:pps:0' jid='juliet@capulet.lit'/>"),
        },
    ];
    let list =
        PublicSubscriptions::from_items(BareJid::new("romeo@montague.lit").expect("JID"), items);
    let ids: Vec<&str> = list
        .subscriptions
        .iter()
        .map(|e| e.item_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    let rejected: Vec<&str> = list.rejected.iter().map(|e| e.item_id.as_str()).collect();
    assert_eq!(rejected, ["c", "e"]);

    let items = vec![
        Item {
            id: "romeo@montague.lit".into(),
            publisher: Some(jid("romeo@montague.lit/phone")),
            payload: p("<subscriber xmlns='urn:xmpp:pps:0' jid='romeo@montague.lit'/>"),
        },
        Item {
            id: "x".into(),
            publisher: Some(jid("pubsub.example.org")),
            payload: p("<subscriber xmlns='urn:xmpp:pps:0' jid='benvolio@montague.lit'/>"),
        },
        Item {
            id: "mercutio@escalus.lit".into(),
            publisher: Some(jid("tybalt@capulet.lit")),
            payload: p("<subscriber xmlns='urn:xmpp:pps:0' jid='mercutio@escalus.lit'/>"),
        },
        Item {
            id: "paris@verona.lit".into(),
            publisher: Some(jid("paris@verona.lit")),
            payload: p(
                "<subscriber xmlns='urn:xmpp:pps:0' jid='paris@verona.lit' subscription='none'/>",
            ),
        },
    ];
    let list = PublicSubscribers::from_items(jid("pubsub.example.org"), "blog".into(), items);
    let who: Vec<&str> = list
        .subscribers
        .iter()
        .map(|e| e.entry.jid.as_str())
        .collect();
    assert_eq!(who, ["romeo@montague.lit", "benvolio@montague.lit"]);
    assert_eq!(list.rejected.len(), 1);
}

#[test]
fn malformed_payloads_are_typed_errors() {
    let subs = [
        "<subscription xmlns='urn:xmpp:pps:1' node='n' jid='a@b'/>",
        "<subscription xmlns='urn:xmpp:pps:0' jid='a@b'/>",
        "<subscription xmlns='urn:xmpp:pps:0' node='' jid='a@b'/>",
        "<subscription xmlns='urn:xmpp:pps:0' node='n'/>",
        "<subscription xmlns='urn:xmpp:pps:0' node='n' jid='a@@b'/>",
        "<subscription xmlns='urn:xmpp:pps:0' node='n' jid='a@b' subscription='maybe'/>",
    ];
    for xml in subs {
        let el = parse_bounded(xml, 4096).expect("xml");
        assert!(PublicSubscription::try_from(&el).is_err(), "{xml}");
    }
    let long = format!(
        "<subscription xmlns='urn:xmpp:pps:0' node='{}' jid='a@b'/>",
        "n".repeat(MAX_NODE_BYTES_FOR_TEST + 1)
    );
    assert!(matches!(
        PublicSubscription::try_from(&parse_bounded(&long, 1 << 16).expect("xml")),
        Err(ParseError::TooLarge { .. })
    ));
    for xml in [
        "<subscriber xmlns='urn:xmpp:pps:0'/>",
        "<subscriber xmlns='urn:xmpp:pps:0' jid=''/>",
        "<subscribers xmlns='urn:xmpp:pps:0' jid='a@b'/>",
    ] {
        let el = parse_bounded(xml, 4096).expect("xml");
        assert!(PublicSubscriber::try_from(&el).is_err(), "{xml}");
    }
    for xml in [
        "<pam xmlns='urn:xmpp:pam:0'><subscribe xmlns='http://jabber.org/protocol/pubsub' node='n' jid='a@b'/></pam>",
        "<pam xmlns='urn:xmpp:pam:0' jid='s'/>",
        "<pam xmlns='urn:xmpp:pam:0' jid='s'><subscribe xmlns='http://jabber.org/protocol/pubsub' jid='a@b'/></pam>",
        "<pam xmlns='urn:xmpp:pam:0' jid='s'><subscribe xmlns='http://jabber.org/protocol/pubsub' node='n' jid='a@b'/><unsubscribe xmlns='http://jabber.org/protocol/pubsub' node='n' jid='a@b'/></pam>",
        "<pam xmlns='urn:xmpp:pam:1' jid='s'><subscribe xmlns='http://jabber.org/protocol/pubsub' node='n' jid='a@b'/></pam>",
    ] {
        let el = parse_bounded(xml, 4096).expect("xml");
        assert!(PamRequest::try_from(&el).is_err(), "{xml}");
    }
    for xml in [
        "<notify xmlns='urn:xmpp:pam:0' service='s'/>",
        "<notify xmlns='urn:xmpp:pam:0'><subscription xmlns='http://jabber.org/protocol/pubsub' node='n' jid='a@b'/></notify>",
        "<notify xmlns='urn:xmpp:pam:0' service='s'><subscription xmlns='http://jabber.org/protocol/pubsub' node='n' jid='a@b' subscription='bogus'/></notify>",
    ] {
        let el = parse_bounded(xml, 4096).expect("xml");
        assert!(PamNotify::try_from(&el).is_err(), "{xml}");
    }
    for xml in [
        "<subscriptions xmlns='urn:xmpp:pam:0'><subscription node='n' jid='a@b'/></subscriptions>",
        "<subscriptions xmlns='urn:xmpp:pam:0'><subscription service='s' jid='a@b'/></subscriptions>",
        "<subscriptions xmlns='urn:xmpp:pam:0'><subscription service='s' node='n' jid='a@b' subscription='x'/></subscriptions>",
    ] {
        let el = parse_bounded(xml, 4096).expect("xml");
        assert!(PamSubscriptions::try_from(&el).is_err(), "{xml}");
    }
}

const MAX_NODE_BYTES_FOR_TEST: usize = model::MAX_NODE_BYTES;

// ---------------------------------------------------------------------------------------------
// A scripted connection: disco answers and a log of what was sent
// ---------------------------------------------------------------------------------------------

struct Scripted {
    me: Jid,
    /// Features announced by the account and by its domain.
    account_features: Vec<&'static str>,
    domain_features: Vec<&'static str>,
    sent: Mutex<Vec<IqRequest>>,
    tx: broadcast::Sender<Arc<Stanza>>,
}

impl Scripted {
    fn new(account: &[&'static str], domain: &[&'static str]) -> Self {
        Scripted {
            me: jid("romeo@montague.lit/phone"),
            account_features: account.to_vec(),
            domain_features: domain.to_vec(),
            sent: Mutex::new(Vec::new()),
            tx: broadcast::channel(4).0,
        }
    }

    fn sent(&self) -> Vec<IqRequest> {
        self.sent.lock().expect("lock").clone()
    }
}

const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

impl Connection for Scripted {
    fn jid(&self) -> Jid {
        self.me.clone()
    }

    async fn send_stanza(&self, _stanza: Stanza) -> Result<()> {
        Ok(())
    }

    async fn send_iq(&self, request: IqRequest) -> Result<Option<Element>> {
        self.sent.lock().expect("lock").push(request.clone());
        if request.payload.is("query", NS_DISCO_INFO) {
            let features = match request.to.as_ref().map(Jid::as_str) {
                Some("romeo@montague.lit") => &self.account_features,
                Some("montague.lit") => &self.domain_features,
                _ => {
                    return Err(StanzaError::new(
                        xmpp_parsers::stanza_error::ErrorType::Cancel,
                        DefinedCondition::ServiceUnavailable,
                        "en",
                        "",
                    )
                    .into())
                }
            };
            let mut q = Element::builder("query", NS_DISCO_INFO);
            for f in features {
                q = q.append(
                    Element::builder("feature", NS_DISCO_INFO)
                        .attr(crate::xml::nc("var"), *f)
                        .build(),
                );
            }
            return Ok(Some(q.build()));
        }
        // Any other request (a PAM request) gets an empty result.
        Ok(None)
    }

    fn incoming(&self) -> Incoming {
        Incoming::new(self.tx.subscribe())
    }
}

#[tokio::test]
async fn without_pam_the_call_is_a_typed_unsupported_error_and_nothing_is_sent() {
    let c = Scripted::new(&["http://jabber.org/protocol/pubsub"], &["urn:xmpp:ping"]);
    let service = jid("benvolio@montague.lit");
    for result in [
        c.subscribe_public(&service, "urn:xmpp:microblog:0").await,
        c.subscribe_private(&service, "urn:xmpp:microblog:0").await,
        c.unsubscribe_public(&service, "urn:xmpp:microblog:0").await,
    ] {
        assert!(
            matches!(result, Err(crate::Error::Unsupported(_))),
            "{result:?}"
        );
    }
    assert!(matches!(
        c.pam_subscriptions().await,
        Err(crate::Error::Unsupported(_))
    ));
    // Only disco requests went out.
    assert!(c
        .sent()
        .iter()
        .all(|r| r.payload.is("query", NS_DISCO_INFO)));

    // PAM without XEP-0465: a public subscription is refused (the flag would be ignored); a private
    // one goes through.
    let c = Scripted::new(&[], &[NS_PAM]);
    assert!(matches!(
        c.subscribe_public(&service, "urn:xmpp:microblog:0").await,
        Err(crate::Error::Unsupported(_))
    ));
    assert!(c
        .subscribe_private(&service, "urn:xmpp:microblog:0")
        .await
        .is_ok());
    let support = c.pps_support().await.expect("support");
    assert_eq!(support.pam.as_deref(), Some(NS_PAM));
    assert!(!support.public_subscriptions());
}

#[tokio::test]
async fn with_pam_and_pps_the_request_is_the_xeps() {
    let c = Scripted::new(&[NS_PPS, NS_PAM], &[]);
    let service = jid("benvolio@montague.lit");
    c.subscribe_public(&service, "urn:xmpp:microblog:0")
        .await
        .expect("subscribed");
    let sent = c.sent();
    let pam = sent.last().expect("the PAM request");
    assert_eq!(pam.kind, IqType::Set);
    assert_eq!(pam.to, None, "sent to the account itself");
    let expected = stanza(
        r#"<pam xmlns='urn:xmpp:pam:0' jid='benvolio@montague.lit'>
    <subscribe xmlns='http://jabber.org/protocol/pubsub'
        node='urn:xmpp:microblog:0'
        jid='romeo@montague.lit'>
        <public xmlns='urn:xmpp:pps:0'/>
    </subscribe>
  </pam>"#,
    )
    .expect("xml");
    assert_eq!(strip(&pam.payload), strip(&expected));

    // A server announcing the later namespace gets requests in it.
    let c = Scripted::new(&[NS_PPS, NS_PAM_2], &[]);
    c.unsubscribe_public(&service, "urn:xmpp:microblog:0")
        .await
        .expect("unsubscribed");
    let sent = c.sent();
    let pam = sent.last().expect("the PAM request");
    assert!(pam.payload.is("pam", NS_PAM_2));
    assert!(first_child(&pam.payload).is("unsubscribe", NS_PUBSUB));
}

#[test]
fn node_names() {
    assert_eq!(
        subscribers_node_name("urn:xmpp:microblog:0"),
        "urn:xmpp:pps:subscribers:0/urn:xmpp:microblog:0"
    );
    assert_eq!(
        fallback_item_id(&jid("juliet@capulet.lit/balcony"), "urn:xmpp:microblog:0"),
        "xmpp:juliet@capulet.lit?;node=urn%3Axmpp%3Amicroblog%3A0"
    );
}
