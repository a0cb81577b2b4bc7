//! Feeds arbitrary bytes to the XEP-0346 list parsers: templates, submitted entries, `disco#items`
//! results, and submissions built from a parsed template.
//!
//! Invariants checked: parsing never panics; templates and entries round-trip; a submission built from
//! any template either is refused with an error or is a form that round-trips; a list view renders as a
//! XEP-0004 multi-item form that round-trips.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_social::forms::DataForm;
use xmpp_social::lists::{
    lists_from_disco_items, ItemValues, ListEntry, ListRef, ListTemplate, ListView,
};
use xmpp_social::pubsub::Item;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(el) = xmpp_social::xml::parse_bounded(s, 1 << 20) else {
        return;
    };
    let _ = lists_from_disco_items(&el);

    let item = Item {
        id: "fuzz".into(),
        publisher: None,
        payload: Some(el.clone()),
    };
    if let Ok(entry) = ListEntry::from_item(&item) {
        let again = DataForm::parse(&entry.form.to_element()).expect("entry form must reparse");
        assert_eq!(again, entry.form);
    }

    let Ok(template) = ListTemplate::parse(&el) else {
        return;
    };
    let again = ListTemplate::parse(&template.to_element()).expect("template must reparse");
    assert_eq!(again, template);

    // Defaults only, then every visible field set to its first option (or a word).
    let mut values = ItemValues::new();
    for f in template.columns() {
        let v = f
            .options
            .first()
            .map(|o| o.value.clone())
            .unwrap_or_else(|| "1".to_owned());
        values = values.set(f.var.clone().unwrap_or_default(), v);
    }
    for v in [ItemValues::new(), values] {
        if let Ok(form) = template.submission(&v, None) {
            let again = DataForm::parse(&form.to_element()).expect("submission must reparse");
            assert_eq!(again, form);
            let items = [Item {
                id: "e".into(),
                publisher: None,
                payload: Some(form.to_element()),
            }];
            let view = ListView::from_items(
                ListRef::new(jid::Jid::new("pubsub.example.org").expect("jid"), "x"),
                Some(template.clone()),
                &items,
            );
            assert_eq!(view.entries.len(), 1);
            let rendered = view.to_data_form();
            assert_eq!(
                DataForm::parse(&rendered.to_element()).expect("view must reparse"),
                rendered
            );
        }
    }
});
