//! Round trips on every example of XEP-0413, XEP-0462 and XEP-0460 (copied into `tests/fixtures/` by
//! `tools/extract-xep-examples.py`), XEP-0431's field, and malformed input.

use std::path::Path;

use minidom::Element;
use xmpp_social::forms::DataForm;
use xmpp_social::pubsub::parse::parse_items_result;
use xmpp_social::query::*;
use xmpp_social::rsm::{RsmResult, NS_RSM};
use xmpp_social::ParseError;

fn fixtures(xep: &str) -> Vec<(String, Element)> {
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
            // Stanzas in the XEPs carry no namespace: give them the client one.
            let body = if body.trim_start().starts_with("<iq")
                && !body.contains("xmlns='jabber:client'")
            {
                body.replacen("<iq", "<iq xmlns='jabber:client'", 1)
            } else {
                body.to_owned()
            };
            let el: Element = body
                .parse()
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                el,
            )
        })
        .collect()
}

fn descendants<'a>(el: &'a Element, out: &mut Vec<&'a Element>) {
    out.push(el);
    for c in el.children() {
        descendants(c, out);
    }
}

fn all(el: &Element) -> Vec<&Element> {
    let mut v = Vec::new();
    descendants(el, &mut v);
    v
}

#[test]
fn xep_0413_examples_round_trip() {
    let examples = fixtures("xep-0413");
    assert_eq!(examples.len(), 16, "every XML example of XEP-0413");
    let mut orders = 0;
    let mut pages = 0;
    for (name, el) in &examples {
        for e in all(el) {
            if e.is("order", NS_ORDER_BY) {
                let o = OrderBy::parse(e).unwrap_or_else(|err| panic!("{name}: {err}"));
                assert_eq!(
                    OrderBy::parse(&o.to_element()).expect("reparse"),
                    o,
                    "{name}"
                );
                orders += 1;
            }
            if e.is("pubsub", "http://jabber.org/protocol/pubsub") {
                let order = parse_orders(e).expect("orders");
                if let Some(items) = e.get_child("items", "http://jabber.org/protocol/pubsub") {
                    if items.children().next().is_some() {
                        let page =
                            parse_items_result(e).unwrap_or_else(|err| panic!("{name}: {err}"));
                        assert!(!page.items.is_empty());
                        pages += 1;
                    } else {
                        // A request: rebuild it from its parts and compare.
                        let rsm = e.get_child("set", NS_RSM).map(|s| {
                            let mut r = xmpp_social::rsm::RsmRequest::default();
                            for c in s.children() {
                                match c.name() {
                                    "max" => r.max = c.text().trim().parse().ok(),
                                    "after" => r.after = Some(c.text()),
                                    "before" => r.before = Some(c.text()),
                                    _ => {}
                                }
                            }
                            r
                        });
                        let q = xmpp_social::pubsub::ItemsQuery {
                            max_items: items.attr("max_items").and_then(|m| m.parse().ok()),
                            rsm,
                            ..Default::default()
                        };
                        let node = items.attr("node").expect("node");
                        let rebuilt = ordered_items_request(node, &q, &order);
                        assert_eq!(parse_orders(&rebuilt).expect("orders"), order, "{name}");
                        assert_eq!(
                            rebuilt
                                .get_child("items", "http://jabber.org/protocol/pubsub")
                                .and_then(|i| i.attr("max_items")),
                            items.attr("max_items"),
                            "{name}"
                        );
                    }
                }
            }
            if e.is("set", NS_RSM) && e.get_child("count", NS_RSM).is_some() {
                let r = RsmResult::parse(e).expect("rsm");
                assert_eq!(r.count, Some(4), "{name}");
            }
        }
    }
    assert_eq!(orders, 7, "the seven requests carry an <order/>");
    assert_eq!(pages, 6, "result pages seen");
    // Values from the examples: creation desc (1), modification (7), MAM order (6).
    let first = &examples[0].1;
    let o = all(first)
        .into_iter()
        .find(|e| e.is("order", NS_ORDER_BY))
        .expect("order");
    assert_eq!(
        OrderBy::parse(o).expect("order"),
        OrderBy::desc(OrderField::Creation)
    );
    let mam = all(&examples[5].1)
        .into_iter()
        .find(|e| e.is("query", NS_MAM))
        .expect("mam query");
    assert_eq!(
        parse_orders(mam).expect("orders"),
        vec![OrderBy::asc(OrderField::Creation)]
    );
    let features: Vec<_> = all(&examples[15].1)
        .into_iter()
        .filter_map(|e| e.attr("var"))
        .collect();
    assert!(features.contains(&NS_ORDER_BY));
}

#[test]
fn xep_0462_examples_round_trip() {
    let examples = fixtures("xep-0462");
    assert_eq!(examples.len(), 2);
    let filter_el = all(&examples[0].1)
        .into_iter()
        .find(|e| e.is("filter", NS_PUBSUB_FILTER))
        .expect("filter")
        .clone();
    let f = TypeFilter::parse(&filter_el).expect("filter");
    assert_eq!(
        f,
        TypeFilter::Included(vec!["urn:xmpp:microblog:0".into(), String::new()])
    );
    assert_eq!(TypeFilter::parse(&f.to_element()).expect("reparse"), f);
    let q = filtered_items_request(&f);
    assert_eq!(q.name(), "query");
    // Example 2 is the error for a filter with both fields: such a filter is refused as invalid.
    let err = &examples[1].1;
    assert!(all(err).iter().any(|e| e.name() == "bad-request"));
    let both = filter_el.clone();
    let mut form = DataForm::parse(both.get_child("x", "jabber:x:data").expect("x")).expect("form");
    form.set("excluded-types", vec!["x".into()]);
    let bad = Element::builder("filter", NS_PUBSUB_FILTER)
        .append(form.to_element())
        .build();
    assert!(matches!(
        TypeFilter::parse(&bad),
        Err(ParseError::InvalidValue { .. })
    ));
}

#[test]
fn xep_0460_examples_round_trip() {
    let examples = fixtures("xep-0460");
    assert_eq!(examples.len(), 4);
    let query = all(&examples[1].1)
        .into_iter()
        .find(|e| e.name() == "query")
        .expect("query")
        .clone();
    let hints = CachingHints::from_disco_info(&query).expect("hints");
    assert_eq!(
        hints,
        CachingHints {
            persistence: Some(Persistence::Persistent),
            max_items: Some(IntegerOrMax::Max),
            item_expire: Some(IntegerOrMax::Max),
            consistent_items: Some(true),
            consistent_set: Some(true),
            stable_items: Some(true),
            always_notify: Some(true),
            allowed_for_suggestions: Some(true),
            purge_keep_last_item: Some(false),
        }
    );
    // The form round-trips, and so do the hints read from it.
    let form = DataForm::parse(query.get_child("x", "jabber:x:data").expect("x")).expect("form");
    let again = DataForm::parse(&form.to_element()).expect("reparse");
    assert_eq!(form, again);
    assert_eq!(CachingHints::from_form(&again).expect("hints"), hints);
    let features: Vec<_> = all(&examples[3].1)
        .into_iter()
        .filter_map(|e| e.attr("var"))
        .collect();
    assert_eq!(features, vec![NS_PUBSUB_CACHING]);
    // Malformed values are typed errors.
    let mut bad = form.clone();
    bad.set(
        "{urn:xmpp:pubsub-caching:0}stable-items",
        vec!["perhaps".into()],
    );
    assert!(CachingHints::from_form(&bad).is_err());
    let mut bad = form;
    bad.set("pubsub#max_items", vec!["-3".into()]);
    assert!(CachingHints::from_form(&bad).is_err());
}

#[test]
fn xep_0431_fulltext_field() {
    // XEP-0431 has no example; its text defines the `{urn:xmpp:fulltext:0}fulltext` field of the MAM form.
    let q = MamQuery {
        query_id: "f1".into(),
        fulltext: Some("hamlet skull".into()),
        rsm: Some(xmpp_social::rsm::RsmRequest::first(10)),
        ..Default::default()
    };
    let el = q.to_element();
    let form = DataForm::parse(el.get_child("x", "jabber:x:data").expect("form")).expect("form");
    assert_eq!(form.form_type(), Some(NS_MAM));
    assert_eq!(
        form.value("{urn:xmpp:fulltext:0}fulltext"),
        Some("hamlet skull")
    );
    assert_eq!(el.attr("queryid"), Some("f1"));
}

#[test]
fn malformed_query_elements_are_typed_errors() {
    let p = |s: &str| s.parse::<Element>().expect("xml");
    assert!(OrderBy::parse(&p("<order xmlns='urn:xmpp:order-by:1'/>")).is_err());
    assert!(OrderBy::parse(&p(
        "<order xmlns='urn:xmpp:order-by:1' by='creation' desc='maybe'/>"
    ))
    .is_err());
    assert!(OrderBy::parse(&p("<order xmlns='urn:wrong' by='creation'/>")).is_err());
    let many = format!(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'>{}</pubsub>",
        "<order xmlns='urn:xmpp:order-by:1' by='creation'/>".repeat(MAX_ORDER_LEVELS + 1)
    );
    assert!(matches!(
        parse_orders(&p(&many)),
        Err(ParseError::TooLarge { .. })
    ));
    assert!(TypeFilter::parse(&p("<filter xmlns='urn:xmpp:pubsub-filter:0'/>")).is_err());
    assert!(parse_mam_result(&p("<result xmlns='urn:xmpp:mam:2' queryid='q'/>"), "q").is_err());
    assert!(matches!(
        parse_mam_result(
            &p("<result xmlns='urn:xmpp:mam:2' queryid='other' id='1'/>"),
            "q"
        ),
        Ok(None)
    ));
    assert!(parse_mam_fin(&p("<fin xmlns='urn:xmpp:mam:2' complete='yes'/>")).is_err());
}
