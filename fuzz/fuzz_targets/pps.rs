//! Feeds arbitrary text to the XEP-0465 and XEP-0376 parsers: `<subscription/>`, `<subscriber/>`,
//! `<pam/>` requests, `<notify/>` (bare and inside a message), PAM `<subscriptions/>` lists, and the
//! public lists built from items results. Every one must return `Ok` or a typed `Err`, never panic;
//! whatever parses must serialise and parse back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_parsers::minidom::Element;
use xmpp_social::pps::{
    PamNotify, PamRequest, PamSubscriptions, PublicSubscriber, PublicSubscribers,
    PublicSubscription, PublicSubscriptions,
};
use xmpp_social::pubsub::parse;
use xmpp_social::xml::parse_bounded;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(el) = parse_bounded(text, 64 * 1024) else {
        return;
    };
    if let Ok(v) = PublicSubscription::try_from(&el) {
        assert_eq!(
            PublicSubscription::try_from(&Element::from(&v)).expect("re-parse"),
            v
        );
    }
    if let Ok(v) = PublicSubscriber::try_from(&el) {
        assert_eq!(
            PublicSubscriber::try_from(&Element::from(&v)).expect("re-parse"),
            v
        );
    }
    if let Ok(v) = PamRequest::try_from(&el) {
        let again = PamRequest::try_from(&Element::from(&v)).expect("re-parse");
        // `public` is only written on a subscribe.
        assert_eq!(
            again.public,
            v.public && v.action == xmpp_social::pps::PamAction::Subscribe
        );
        assert_eq!(
            (&again.service, &again.node, &again.jid),
            (&v.service, &v.node, &v.jid)
        );
    }
    if let Ok(v) = PamNotify::try_from(&el) {
        assert_eq!(
            PamNotify::try_from(&Element::from(&v)).expect("re-parse"),
            v
        );
    }
    if let Ok(v) = PamSubscriptions::try_from(&el) {
        assert_eq!(
            PamSubscriptions::try_from(&Element::from(&v)).expect("re-parse"),
            v
        );
    }
    if let Ok(message) = xmpp_parsers::message::Message::try_from(el.clone()) {
        let _ = PamNotify::from_message(&message);
    }
    if let Ok(page) = parse::parse_items_result(&el) {
        let of = jid::BareJid::new("romeo@montague.lit").expect("constant JID");
        let service = jid::Jid::new("pubsub.example.org").expect("constant JID");
        let n = page.items.len();
        let subs = PublicSubscriptions::from_items(of, page.items.clone());
        assert!(subs.subscriptions.len() + subs.rejected.len() <= n);
        let subs = PublicSubscribers::from_items(service, page.node, page.items);
        assert!(subs.subscribers.len() + subs.rejected.len() <= n);
    }
});
