//! Feeds arbitrary bytes to the ActivityStreams reader, then through the AP -> XMPP conversions and
//! back.
//!
//! Invariants checked: nothing panics; what parses is written in canonical form that parses back to
//! the same document; every entry, event or attachment payload made from it serialises as XML and
//! parses back equal; no XHTML made from remote HTML keeps a script, style, frame, event handler or a
//! URL outside the allowed schemes; an entry made from remote input converts back to an object.

#![no_main]

use jid::BareJid;
use libfuzzer_sys::fuzz_target;
use minidom::Element;
use xmpp_ap_bridge::convert::{
    self, apply_reaction, entry_to_note, event, note, Incoming, NoteOptions, UrlScheme,
};
use xmpp_ap_bridge::vocab::{self, AnyObject, ObjectKind};
use xmpp_social::microblog::{Entry, ItemRef, NodeRef, Text, NS_MICROBLOG};

const GATEWAY: &str = "ap.example.org";
const BASE: &str = "https://ap.example.org/_ap";

/// A scheme mapping any `https://host/...` id: actors to `<hash>@ap.example.org`, objects to items
/// of that JID's blog named by a hash of the id; ids under `BASE` are the gateway's own accounts.
struct Scheme;

fn hash(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("h{h:016x}")
}

fn remote_jid(actor: &str) -> Option<BareJid> {
    if !actor.starts_with("https://") {
        return None;
    }
    BareJid::new(&format!("{}@{GATEWAY}", hash(actor))).ok()
}

impl UrlScheme for Scheme {
    fn actor_for_node(&self, node: &NodeRef) -> String {
        self.actor_for_jid(&node.service.to_bare())
    }
    fn actor_for_jid(&self, jid: &BareJid) -> String {
        format!("{BASE}/actor/{jid}")
    }
    fn object_url(&self, item: &ItemRef) -> String {
        format!("{BASE}/item/{}/{}", item.service.to_bare(), item.item)
    }
    fn followers_url(&self, actor: &str) -> String {
        format!("{actor}/followers")
    }
    fn activity_id(&self, kind: &str, object: &str, by: &str, salt: &str) -> String {
        format!("{BASE}/activity/{kind}/{}", hash(&format!("{object} {by} {salt}")))
    }
    fn jid_for_actor(&self, actor: &str) -> Option<BareJid> {
        match actor.strip_prefix(&format!("{BASE}/actor/")) {
            Some(j) => BareJid::new(j).ok(),
            None => remote_jid(actor),
        }
    }
    fn node_for_actor(&self, actor: &str) -> Option<NodeRef> {
        Some(NodeRef::new(self.jid_for_actor(actor)?.into(), NS_MICROBLOG))
    }
    fn item_for_object(&self, object: &str) -> Option<ItemRef> {
        if let Some(rest) = object.strip_prefix(&format!("{BASE}/item/")) {
            let (j, id) = rest.rsplit_once('/')?;
            return Some(ItemRef::new(BareJid::new(j).ok()?.into(), NS_MICROBLOG, id));
        }
        let jid = remote_jid(object)?;
        Some(ItemRef::new(jid.into(), NS_MICROBLOG, hash(object)))
    }
}

/// The sanitiser's promise, checked on the XHTML tree itself.
fn assert_clean_xhtml(el: &Element) {
    let mut stack = vec![el];
    while let Some(e) = stack.pop() {
        let name = e.name().to_ascii_lowercase();
        assert!(
            !matches!(name.as_str(), "script" | "style" | "iframe" | "object" | "embed" | "img" | "svg" | "form"),
            "<{name}> kept"
        );
        for ((_, attr), value) in e.attrs().iter() {
            let attr = attr.as_str().to_ascii_lowercase();
            assert!(!attr.starts_with("on") && attr != "style" && attr != "src", "attribute {attr} kept");
            if attr == "href" {
                // An absolute URL in an allowed scheme (the URL parser may normalise
                // `https:/x` to `https://x`: the scheme is what matters).
                let v = value.trim_start().to_ascii_lowercase();
                let scheme = v.split_once(':').map(|(s, _)| s);
                assert!(
                    matches!(scheme, Some("http" | "https" | "xmpp" | "mailto" | "gemini" | "magnet")),
                    "href {value:?} kept"
                );
            }
        }
        stack.extend(e.children());
    }
}

fn check_entry(entry: &Entry) {
    for c in entry.content.iter().chain(entry.summary.iter()).chain(entry.title.iter()) {
        if let Text::Xhtml(x) = c {
            assert_clean_xhtml(x.element());
        }
    }
    let xml = entry.to_xml_string().expect("a converted entry must serialise");
    let again = Entry::from_xml_str(&xml).expect("a converted entry must parse back");
    assert_eq!(&again, entry, "entry round trip changed it:\n{xml}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = vocab::parse(data) else {
        return;
    };
    // Canonical output parses back to the same document.
    let out = vocab::to_vec(&doc);
    let again = vocab::parse(&out).expect("canonical output must parse");
    assert_eq!(vocab::to_json(&again), vocab::to_json(&doc), "canonical round trip");

    // Objects on their own.
    if let AnyObject::Object(o) = &doc {
        if let Ok(entry) = note::note_to_entry(o, &Scheme) {
            check_entry(&entry);
            let item = ItemRef::new(BareJid::new("alice@example.org").expect("jid").into(), NS_MICROBLOG, "x");
            let mut entry = entry;
            entry.authors.clear();
            let _ = entry_to_note(&entry, &item, &Scheme, &NoteOptions::default());
        }
        if o.kind == ObjectKind::Event {
            if let Ok(ev) = event::object_to_event(o) {
                let el = Element::from(&ev);
                let back = xmpp_social::events::Event::try_from(&el).expect("a converted event must parse back");
                assert_eq!(back.start, ev.start);
            }
        }
    }

    // Activities: what they mean on the XMPP side, and back.
    match convert::incoming(&doc, &Scheme) {
        Ok(Incoming::Publish(post)) | Ok(Incoming::Republish(post)) => {
            check_entry(&post.entry);
            let item = ItemRef::new(post.node.service.clone(), post.node.node.clone(), post.item_id.clone());
            if let Ok(note) = entry_to_note(&post.entry, &item, &Scheme, &NoteOptions::default()) {
                let bytes = vocab::to_vec(&note);
                vocab::parse(&bytes).expect("our own object must parse");
            }
        }
        Ok(Incoming::Repeat { entry: Some(entry), .. }) => check_entry(&entry),
        Ok(Incoming::Attachment { change, .. }) => {
            let a = apply_reaction(None, &change, chrono::DateTime::UNIX_EPOCH.fixed_offset());
            let el = Element::from(&a);
            let back = xmpp_social::attachments::Attachments::try_from(&el).expect("attachments must parse back");
            assert_eq!(back.emojis(), a.emojis());
        }
        _ => {}
    }
});
