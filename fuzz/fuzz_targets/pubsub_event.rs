//! Feeds arbitrary text to the pubsub parsers: notifications (as a whole `<message/>` and as a bare
//! `<event/>`), items results with RSM, subscriptions/affiliations/configuration results, RSM sets and
//! data forms. Every one must return `Ok` or a typed `Err`, never panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_social::forms::DataForm;
use xmpp_social::pubsub::{event, parse};
use xmpp_social::rsm::RsmResult;
use xmpp_social::xml::parse_bounded;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(el) = parse_bounded(text, 64 * 1024) else {
        return;
    };
    let service = jid::Jid::new("pubsub.example.org").expect("constant JID");
    let _ = event::parse_event(&service, &el);
    if let Ok(message) = xmpp_parsers::message::Message::try_from(el.clone()) {
        let _ = event::parse_message(&message);
    }
    let _ = parse::parse_items_result(&el);
    let _ = parse::parse_subscriptions_result(Some(&el));
    let _ = parse::parse_affiliations_result(Some(&el));
    let _ = parse::parse_config_result(Some(&el));
    let _ = parse::parse_publish_result(Some(&el));
    let _ = RsmResult::parse(&el);
    if let Ok(form) = DataForm::parse(&el) {
        // A parsed form must serialise and parse back to the same form.
        let again = DataForm::parse(&form.to_element()).expect("re-parse of a serialised form");
        assert_eq!(form, again);
    }
});
