//! Feeds arbitrary text to the query-extension parsers (XEP-0413 order, XEP-0462 filter, XEP-0460 caching
//! hints, MAM results and fin). Typed errors only; what parses must serialise and parse back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_social::forms::DataForm;
use xmpp_social::query::{
    parse_mam_fin, parse_mam_result, parse_orders, CachingHints, OrderBy, TypeFilter,
};
use xmpp_social::xml::parse_bounded;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(el) = parse_bounded(text, 64 * 1024) else {
        return;
    };
    if let Ok(o) = OrderBy::parse(&el) {
        assert_eq!(OrderBy::parse(&o.to_element()).expect("order re-parse"), o);
    }
    let _ = parse_orders(&el);
    if let Ok(f) = TypeFilter::parse(&el) {
        assert_eq!(TypeFilter::parse(&f.to_element()).expect("filter re-parse"), f);
    }
    let _ = CachingHints::from_disco_info(&el);
    if let Ok(form) = DataForm::parse(&el) {
        let _ = CachingHints::from_form(&form);
    }
    let _ = parse_mam_result(&el, "q");
    let _ = parse_mam_fin(&el);
});
