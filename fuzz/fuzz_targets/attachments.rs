//! Feeds arbitrary text to the XEP-0470 parsers: `<attachments/>` (current and 0.1.0), `<summary/>`
//! (current and 0.1.0), attachment items as the aggregated view checks them, attachment node names,
//! and the emoji splitter. Every one must return `Ok` or a typed `Err`, never panic; whatever parses
//! must serialise and parse back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_parsers::minidom::Element;
use xmpp_social::attachments::{
    check_reaction, split_emojis, target_of_attachment_node, view::check_item, Attachments,
    AttachmentsView, Summary,
};
use xmpp_social::microblog::ItemRef;
use xmpp_social::pubsub::{parse, Item};
use xmpp_social::xml::parse_bounded;

fn target() -> ItemRef {
    ItemRef::new(
        jid::Jid::new("juliet@capulet.lit").expect("constant JID"),
        "urn:xmpp:microblog:0",
        "balcony-restoration-afd1",
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Text-level helpers.
    let pieces = split_emojis(text);
    assert!(pieces.iter().all(|p| !p.is_empty()));
    let _ = check_reaction(text);
    if let Ok(item) = target_of_attachment_node(text) {
        // A parsed node name names the same item once rebuilt (node names use the bare service).
        let again = xmpp_social::attachments::attachment_node_name(&item);
        let reparsed = target_of_attachment_node(&again).expect("re-parse");
        assert_eq!(reparsed.service, jid::Jid::from(item.service.to_bare()));
        assert_eq!((&reparsed.node, &reparsed.item), (&item.node, &item.item));
    }

    let Ok(el) = parse_bounded(text, 64 * 1024) else {
        return;
    };
    if let Ok(a) = Attachments::try_from(&el) {
        let back = Element::from(&a);
        let again = Attachments::try_from(&back).expect("re-parse of serialised attachments");
        assert_eq!(a, again);
    }
    if let Ok(s) = Summary::try_from(&el) {
        let back = Element::from(&s);
        let again = Summary::try_from(&back).expect("re-parse of a serialised summary");
        assert_eq!(s, again);
    }
    // As an attachment item (id and publisher taken from attributes of the root, if any).
    let item = Item {
        id: el.attr("id").unwrap_or("romeo@montague.lit").to_owned(),
        publisher: el.attr("publisher").and_then(|p| jid::Jid::new(p).ok()),
        payload: el.children().next().cloned(),
    };
    let _ = check_item(&item);
    let view = AttachmentsView::from_items(target(), "n".into(), vec![item]);
    assert!(view.by_jid.len() + view.rejected.len() <= 1);
    // As an items result full of attachments.
    if let Ok(page) = parse::parse_items_result(&el) {
        let view = AttachmentsView::from_items(target(), page.node, page.items);
        let _ = summary_agrees(&view);
    }
});

/// The view's summary agrees with its entries.
fn summary_agrees(view: &AttachmentsView) -> bool {
    let noticed = view
        .by_jid
        .iter()
        .filter(|j| j.attachments.noticed.is_some())
        .count() as u64;
    assert_eq!(view.summary.noticed.unwrap_or(0), noticed);
    true
}
