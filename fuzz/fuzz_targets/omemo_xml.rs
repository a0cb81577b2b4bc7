//! Feeds arbitrary text to the OMEMO XML models of both namespaces (`urn:xmpp:omemo:2` and
//! `eu.siacs.conversations.axolotl`): `<encrypted>`, `<bundle>`, `<devices>`/`<list>`, tried on every
//! element of the parsed document. Typed errors only; what parses must serialise and parse back the same
//! (modulo what the wire form cannot carry, see `normalise_*`), and serialising twice gives the same XML.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minidom::Element;
use xmpp_e2ee::omemo::{Bundle, DeviceList, Encrypted, Profile};
use xmpp_social::xml::parse_bounded;

/// OMEMO:2 groups keys by JID (`<keys jid>`), so keys of one JID spread over several groups come back
/// grouped, in the order of each JID's first appearance. Legacy lists carry no labels.
fn normalise_encrypted(m: &Encrypted) -> Encrypted {
    let mut out = m.clone();
    if m.profile == Profile::Omemo2 {
        let mut jids: Vec<Option<&str>> = Vec::new();
        for k in &m.keys {
            if !jids.contains(&k.jid.as_deref()) {
                jids.push(k.jid.as_deref());
            }
        }
        out.keys = jids
            .iter()
            .flat_map(|j| m.keys.iter().filter(move |k| k.jid.as_deref() == *j))
            .cloned()
            .collect();
    }
    out
}

fn normalise_list(l: &DeviceList) -> DeviceList {
    let mut out = l.clone();
    if l.profile == Profile::Legacy {
        for d in &mut out.devices {
            d.label = None;
            d.label_signature = None;
        }
    }
    out
}

/// Serialises to text and parses that text again: the round trip goes through the writer too.
fn reparse(el: &Element) -> Element {
    let mut out = Vec::new();
    el.write_to(&mut out).expect("serialise");
    let text = String::from_utf8(out).expect("serialised XML is UTF-8");
    parse_bounded(&text, usize::MAX).expect("serialised XML parses")
}

fn check(el: &Element) {
    if let Ok(m) = Encrypted::try_from(el) {
        let xml = Element::from(&m);
        let back = Encrypted::try_from(&reparse(&xml)).expect("encrypted re-parse");
        assert_eq!(back, normalise_encrypted(&m), "encrypted round trip");
        assert_eq!(
            Element::from(&back),
            xml,
            "encrypted serialisation is stable"
        );
    }
    if let Ok(b) = Bundle::try_from(el) {
        let xml = Element::from(&b);
        let back = Bundle::try_from(&reparse(&xml)).expect("bundle re-parse");
        assert_eq!(back, b, "bundle round trip");
        // Whatever the keys, checking them is an error or Ok, never a panic.
        let _ = b.verify();
    }
    if let Ok(l) = DeviceList::try_from(el) {
        let xml = Element::from(&l);
        let back = DeviceList::try_from(&reparse(&xml)).expect("device list re-parse");
        assert_eq!(back, normalise_list(&l), "device list round trip");
    }
}

fn walk(el: &Element, depth: usize) {
    check(el);
    if depth < 8 {
        for c in el.children() {
            walk(c, depth + 1);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(el) = parse_bounded(text, 64 * 1024) else {
        return;
    };
    walk(&el, 0);
});
