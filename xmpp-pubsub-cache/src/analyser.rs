//! Analysers: recognise what a node holds (by node name or payload namespace) and turn its items'
//! payloads into JSON, indexed text and the hot columns (dates, author, tags).
//!
//! Built in: XEP-0277 blog entries (`urn:xmpp:microblog:0` or an Atom `<entry/>`), their comments
//! (`urn:xmpp:microblog:0:comments/...`), and a generic fallback. Register your own with
//! [`AnalyserRegistry::register`]: they are tried before the built-in ones. XEP-0471 events, XEP-0470
//! attachments and summaries, and XEP-0465 public subscriptions are parsed with xmpp-social's models
//! through [`ModelAnalyser`] (their JSON is the model's serde form). Lists (XEP-0004 forms on pubsub,
//! Libervia's `fdp`) fall back to the generic analyser for now: [`ModelAnalyser`] is the extension point.

use std::sync::Arc;

use minidom::{Element, Node};
use serde_json::{json, Map, Value};
use xmpp_social::microblog::Entry;
use xmpp_social::pubsub::Item;
use xmpp_social::ParseError;

use crate::model::{DecryptedInput, ItemInput, Micros};
use crate::query::{FieldSchema, FieldType};

/// Atom namespace.
pub const NS_ATOM: &str = "http://www.w3.org/2005/Atom";
/// XEP-0277 blog node.
pub const NODE_MICROBLOG: &str = "urn:xmpp:microblog:0";
/// XEP-0277 comments node prefix.
pub const NODE_COMMENTS_PREFIX: &str = "urn:xmpp:microblog:0:comments/";
/// Payload namespaces of encrypted items (OpenPGP XEP-0373, OMEMO XEP-0384 both versions, pubsub
/// targeted encryption XEP-0477).
pub const ENCRYPTED_NAMESPACES: &[&str] = &[
    "urn:xmpp:openpgp:0",
    "urn:xmpp:omemo:2",
    "eu.siacs.conversations.axolotl",
    "urn:xmpp:pte:0",
];
/// Longest indexed text per item (bytes); longer text is cut at a character boundary.
pub const MAX_TEXT: usize = 256 * 1024;
/// Most tags kept per item.
pub const MAX_TAGS: usize = 128;

/// Formats a date for parsed JSON: fixed-width UTC with microseconds, so string order is time order.
pub fn json_date_micros(micros: Micros) -> String {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(d) => d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => String::new(),
    }
}

/// [`json_date_micros`] for a chrono date.
pub fn json_date<Tz: chrono::TimeZone>(d: &chrono::DateTime<Tz>) -> String {
    json_date_micros(d.timestamp_micros())
}

/// What an analyser made of a payload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// Parsed data (a JSON object).
    pub json: Value,
    /// Text content for the full-text index (no markup).
    pub text: String,
    /// Publication date.
    pub published: Option<Micros>,
    /// Update date.
    pub updated: Option<Micros>,
    /// Author JID.
    pub author: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
}

/// Recognises and parses one kind of node.
pub trait Analyser: Send + Sync {
    /// A unique name (stored with the node).
    fn name(&self) -> &str;
    /// The node type it gives (`blog`, `comments`...), `None` for untyped.
    fn node_type(&self) -> Option<&str>;
    /// The sub-type of a node it recognised.
    fn subtype(&self, _node: &str) -> Option<String> {
        None
    }
    /// Whether the node name alone says the node is of this kind.
    fn matches_node(&self, node: &str) -> bool;
    /// Whether a payload is of this kind.
    fn matches_payload(&self, payload: &Element) -> bool;
    /// Declares the parsed fields it writes (for search validation).
    fn declare_fields(&self, _schema: &mut FieldSchema) {}
    /// Parses a payload.
    fn parse(&self, payload: &Element) -> Result<Parsed, ParseError>;
}

/// Appends the text content of `el` (not its markup) to `out`, words of sibling elements separated.
pub fn text_content(el: &Element, out: &mut String) {
    fn walk(el: &Element, out: &mut String, depth: usize) {
        if depth > 64 || out.len() >= MAX_TEXT {
            return;
        }
        for n in el.nodes() {
            match n {
                Node::Text(t) => {
                    let t = t.trim();
                    if !t.is_empty() {
                        if !out.is_empty() {
                            out.push(' ');
                        }
                        out.push_str(t);
                    }
                }
                Node::Element(e) => walk(e, out, depth + 1),
            }
        }
    }
    walk(el, out, 0);
    truncate(out);
}

fn truncate(s: &mut String) {
    if s.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

/// XEP-0277 entries, as blog posts or comments.
#[derive(Debug, Clone, Copy)]
pub struct MicroblogAnalyser {
    comments: bool,
}

impl MicroblogAnalyser {
    /// Blog posts (`urn:xmpp:microblog:0`).
    pub const BLOG: MicroblogAnalyser = MicroblogAnalyser { comments: false };
    /// Comments (`urn:xmpp:microblog:0:comments/...`).
    pub const COMMENTS: MicroblogAnalyser = MicroblogAnalyser { comments: true };
}

/// Parses an Atom entry into [`Parsed`] (used by both microblog analysers).
pub fn parse_entry(entry: &Entry) -> Parsed {
    let mut text = String::new();
    let mut push = |s: &str| {
        let s = s.trim();
        if !s.is_empty() {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(s);
        }
    };
    let title = entry.title_text();
    let summary = entry.summary.as_ref().map(|s| s.plain_text());
    let content = entry.body_text();
    for s in [&title, &summary, &content].into_iter().flatten() {
        push(s);
    }
    let tags: Vec<String> = entry.tags().take(MAX_TAGS).map(str::to_owned).collect();
    for t in &tags {
        push(t);
    }
    truncate(&mut text);
    let author = entry.authors.first();
    let author_jid = author.and_then(|a| a.jid()).map(|j| j.to_string());
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        if !v.is_null() {
            m.insert(k.to_owned(), v);
        }
    };
    put("id", json!(entry.id));
    put("title", json!(title));
    put("summary", json!(summary));
    put("content", json!(content));
    put(
        "content_xhtml",
        json!(entry
            .body_xhtml()
            .and_then(|x| xmpp_social::xml::to_xml_string(x.element()).ok())),
    );
    put("tags", json!(tags));
    put("author_jid", json!(author_jid));
    put("author_name", json!(author.and_then(|a| a.name.clone())));
    put("published", json!(entry.published.as_ref().map(json_date)));
    put("updated", json!(entry.updated.as_ref().map(json_date)));
    put("language", json!(entry.language));
    let replies: Vec<Value> = entry
        .in_reply_to
        .iter()
        .map(|r| {
            let item = r.item();
            json!({
                "ref": r.reference,
                "href": r.href,
                "service": item.as_ref().map(|i| i.service.to_string()),
                "node": item.as_ref().map(|i| i.node.clone()),
                "item": item.as_ref().map(|i| i.item.clone()),
            })
        })
        .collect();
    if !replies.is_empty() {
        put("in_reply_to", Value::Array(replies));
    }
    let comments: Vec<Value> = entry
        .comments()
        .iter()
        .map(|c| json!({"service": c.service.to_string(), "node": c.node}))
        .collect();
    if !comments.is_empty() {
        put("comments", Value::Array(comments));
    }
    if let Some(r) = entry.repeated_item() {
        put(
            "repeated",
            json!({"service": r.service.to_string(), "node": r.node, "item": r.item}),
        );
    }
    let enclosures: Vec<Value> = entry
        .enclosures()
        .map(|l| json!({"href": l.href, "type": l.media_type, "length": l.length}))
        .collect();
    if !enclosures.is_empty() {
        put("attachments", Value::Array(enclosures));
    }
    if let Some(g) = &entry.geoloc {
        put(
            "geoloc",
            json!({"lat": g.lat, "lon": g.lon, "locality": g.locality, "country": g.country}),
        );
    }
    Parsed {
        json: Value::Object(m),
        text,
        published: entry.published.as_ref().map(|d| d.timestamp_micros()),
        updated: entry.updated.as_ref().map(|d| d.timestamp_micros()),
        author: author_jid,
        tags,
    }
}

impl Analyser for MicroblogAnalyser {
    fn name(&self) -> &str {
        if self.comments {
            "microblog-comments"
        } else {
            "microblog"
        }
    }
    fn node_type(&self) -> Option<&str> {
        Some(if self.comments { "comments" } else { "blog" })
    }
    fn matches_node(&self, node: &str) -> bool {
        if self.comments {
            node.starts_with(NODE_COMMENTS_PREFIX)
        } else {
            node == NODE_MICROBLOG
        }
    }
    fn matches_payload(&self, payload: &Element) -> bool {
        // A comment is an entry too: only the node name tells them apart, so payload recognition
        // gives "blog".
        !self.comments && payload.is("entry", NS_ATOM)
    }
    fn declare_fields(&self, s: &mut FieldSchema) {
        for f in [
            "id",
            "title",
            "summary",
            "content",
            "content_xhtml",
            "author_name",
            "language",
        ] {
            s.declare(f, FieldType::Text);
        }
        for f in [
            "in_reply_to",
            "comments",
            "repeated",
            "attachments",
            "geoloc",
        ] {
            s.declare(f, FieldType::Any);
        }
    }
    fn parse(&self, payload: &Element) -> Result<Parsed, ParseError> {
        Ok(parse_entry(&Entry::try_from(payload)?))
    }
}

/// Any payload: text content, root name and namespace.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenericAnalyser;

impl Analyser for GenericAnalyser {
    fn name(&self) -> &str {
        "generic"
    }
    fn node_type(&self) -> Option<&str> {
        None
    }
    fn matches_node(&self, _node: &str) -> bool {
        false
    }
    fn matches_payload(&self, _payload: &Element) -> bool {
        true
    }
    fn declare_fields(&self, s: &mut FieldSchema) {
        s.declare("ns", FieldType::Text);
        s.declare("name", FieldType::Text);
    }
    fn parse(&self, payload: &Element) -> Result<Parsed, ParseError> {
        let mut text = String::new();
        text_content(payload, &mut text);
        Ok(Parsed {
            json: json!({"ns": payload.ns(), "name": payload.name()}),
            text,
            ..Parsed::default()
        })
    }
}

/// An analyser over one of xmpp-social's typed models: recognises nodes by a name prefix and payloads
/// by root element, parses with the model's `TryFrom<&Element>` and stores its serde JSON; the text
/// content of the payload is indexed.
pub struct ModelAnalyser {
    name: &'static str,
    node_type: &'static str,
    node_prefixes: &'static [&'static str],
    payload: &'static [(&'static str, &'static str)],
    parse: fn(&Element) -> Result<Value, ParseError>,
}

impl std::fmt::Debug for ModelAnalyser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelAnalyser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn model_json<T>(el: &Element) -> Result<Value, ParseError>
where
    T: for<'a> TryFrom<&'a Element, Error = ParseError> + serde::Serialize,
{
    let model = T::try_from(el)?;
    serde_json::to_value(&model).map_err(|e| ParseError::InvalidValue {
        element: "payload",
        reason: e.to_string(),
    })
}

impl ModelAnalyser {
    /// An analyser: `parse` is usually `|el| model_json::<Model>(el)`-like (see the built-in ones).
    pub const fn new(
        name: &'static str,
        node_type: &'static str,
        node_prefixes: &'static [&'static str],
        payload: &'static [(&'static str, &'static str)],
        parse: fn(&Element) -> Result<Value, ParseError>,
    ) -> Self {
        ModelAnalyser {
            name,
            node_type,
            node_prefixes,
            payload,
            parse,
        }
    }

    /// XEP-0471 events (`urn:xmpp:calendar-events:0` nodes and `<event/>` payloads).
    pub fn events() -> Self {
        use xmpp_social::events::{Event, NS_CALENDAR_EVENTS, NS_EVENTS_LEGACY};
        Self::new(
            "events",
            "events",
            &[NS_CALENDAR_EVENTS, NS_EVENTS_LEGACY],
            &[(NS_CALENDAR_EVENTS, "event"), (NS_EVENTS_LEGACY, "event")],
            model_json::<Event>,
        )
    }

    /// XEP-0470 attachment nodes (`urn:xmpp:pubsub-attachments:1/...`).
    pub fn attachments() -> Self {
        use xmpp_social::attachments::{Attachments, NS_ATTACHMENTS, NS_ATTACHMENTS_0};
        Self::new(
            "attachments",
            "attachments",
            &[
                "urn:xmpp:pubsub-attachments:1/",
                "urn:xmpp:pubsub-attachments:0/",
            ],
            &[
                (NS_ATTACHMENTS, "attachments"),
                (NS_ATTACHMENTS_0, "attachments"),
            ],
            model_json::<Attachments>,
        )
    }

    /// XEP-0470 summary nodes (`urn:xmpp:pubsub-attachments:summary:1/...`).
    pub fn attachments_summary() -> Self {
        use xmpp_social::attachments::{Summary, NS_SUMMARY, NS_SUMMARY_0};
        Self::new(
            "attachments-summary",
            "attachments_summary",
            &[
                "urn:xmpp:pubsub-attachments:summary:1/",
                "urn:xmpp:pubsub-attachments:summary:0/",
            ],
            &[(NS_SUMMARY, "summary"), (NS_SUMMARY_0, "summary")],
            model_json::<Summary>,
        )
    }

    /// XEP-0465 public subscriptions (`urn:xmpp:pps:subscriptions:0`).
    pub fn public_subscriptions() -> Self {
        use xmpp_social::pps::{PublicSubscription, NODE_PUBLIC_SUBSCRIPTIONS, NS_PPS};
        Self::new(
            "public-subscriptions",
            "public_subscriptions",
            &[NODE_PUBLIC_SUBSCRIPTIONS],
            &[(NS_PPS, "subscription")],
            model_json::<PublicSubscription>,
        )
    }
}

impl Analyser for ModelAnalyser {
    fn name(&self) -> &str {
        self.name
    }
    fn node_type(&self) -> Option<&str> {
        Some(self.node_type)
    }
    fn matches_node(&self, node: &str) -> bool {
        self.node_prefixes.iter().any(|p| {
            node.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || p.ends_with('/'))
        })
    }
    fn matches_payload(&self, payload: &Element) -> bool {
        self.payload.iter().any(|(ns, name)| payload.is(*name, *ns))
    }
    fn declare_fields(&self, s: &mut FieldSchema) {
        // The models' JSON is open-ended: every path under their top-level keys is allowed.
        for f in [
            "summary",
            "start",
            "end",
            "name",
            "description",
            "categories",
            "location",
            "rsvp",
            "noticed",
            "reactions",
            "extra",
            "service",
            "node",
            "jid",
            "counts",
            "other",
        ] {
            if s.type_of(f).is_none() {
                s.declare(f, FieldType::Any);
            }
        }
    }
    fn parse(&self, payload: &Element) -> Result<Parsed, ParseError> {
        let json = (self.parse)(payload)?;
        let mut text = String::new();
        text_content(payload, &mut text);
        Ok(Parsed {
            json,
            text,
            ..Parsed::default()
        })
    }
}

/// The analysers, user-registered first, then the built-in ones.
#[derive(Clone)]
pub struct AnalyserRegistry {
    user: Vec<Arc<dyn Analyser>>,
    builtin: Vec<Arc<dyn Analyser>>,
    schema: FieldSchema,
}

impl std::fmt::Debug for AnalyserRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.all().map(|a| a.name()))
            .finish()
    }
}

impl Default for AnalyserRegistry {
    fn default() -> Self {
        let mut r = AnalyserRegistry {
            user: Vec::new(),
            builtin: vec![
                Arc::new(MicroblogAnalyser::COMMENTS),
                Arc::new(MicroblogAnalyser::BLOG),
                Arc::new(ModelAnalyser::attachments_summary()),
                Arc::new(ModelAnalyser::attachments()),
                Arc::new(ModelAnalyser::events()),
                Arc::new(ModelAnalyser::public_subscriptions()),
                Arc::new(GenericAnalyser),
            ],
            schema: FieldSchema::new(),
        };
        r.rebuild_schema();
        r
    }
}

impl AnalyserRegistry {
    /// The built-in analysers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an analyser, tried before the ones already registered by users and the built-in ones.
    pub fn register(&mut self, analyser: Arc<dyn Analyser>) {
        self.user.insert(0, analyser);
        self.rebuild_schema();
    }

    fn rebuild_schema(&mut self) {
        let mut s = FieldSchema::new();
        // Built-in ones first so user declarations can refine them.
        for a in self.builtin.iter().chain(self.user.iter().rev()) {
            a.declare_fields(&mut s);
        }
        self.schema = s;
    }

    fn all(&self) -> impl Iterator<Item = &Arc<dyn Analyser>> {
        self.user.iter().chain(self.builtin.iter())
    }

    /// The parsed fields of all analysers.
    pub fn schema(&self) -> &FieldSchema {
        &self.schema
    }

    /// The analyser with this name.
    pub fn by_name(&self, name: &str) -> Option<&Arc<dyn Analyser>> {
        self.all().find(|a| a.name() == name)
    }

    /// The analyser for a node: by name first, then by a sample payload, else the generic one.
    pub fn for_node(&self, node: &str, sample: Option<&Element>) -> &Arc<dyn Analyser> {
        let generic = &self.builtin[self.builtin.len() - 1];
        self.all()
            .find(|a| a.matches_node(node))
            .or_else(|| sample.and_then(|p| self.all().find(|a| a.matches_payload(p))))
            .unwrap_or(generic)
    }

    /// Turns an item into what the store keeps. Encrypted payloads are stored as they are, flagged;
    /// a payload the analyser refuses falls back to the generic analyser (with the error in
    /// `parsed._error`) so that it stays searchable.
    pub fn to_input(&self, analyser: &dyn Analyser, item: &Item) -> ItemInput {
        let mut input = ItemInput {
            item_id: item.id.clone(),
            publisher: item.publisher.as_ref().map(|j| j.to_string()),
            ..ItemInput::default()
        };
        let Some(payload) = &item.payload else {
            return input;
        };
        // Parsed input holds no character XML forbids, so this only ever rewrites prefixes.
        input.xml = xmpp_social::xml::to_xml_string(payload).unwrap_or_default();
        if ENCRYPTED_NAMESPACES.contains(&payload.ns().as_str()) {
            input.encrypted = true;
            input.parsed = Some(json!({"ns": payload.ns(), "name": payload.name()}));
            return input;
        }
        let parsed = match analyser.parse(payload) {
            Ok(p) => p,
            Err(e) => {
                let mut p = GenericAnalyser.parse(payload).unwrap_or_default();
                if let Value::Object(m) = &mut p.json {
                    m.insert("_error".into(), Value::String(e.to_string()));
                }
                p
            }
        };
        input.parsed = Some(parsed.json);
        input.text = parsed.text;
        input.published = parsed.published;
        input.updated = parsed.updated;
        input.author = parsed.author;
        input.tags = parsed.tags;
        input
    }

    /// Analyses the plaintext of an encrypted item.
    pub fn to_decrypted(
        &self,
        analyser: &dyn Analyser,
        plain: &Element,
        signature_verified: bool,
    ) -> DecryptedInput {
        let p = analyser
            .parse(plain)
            .or_else(|_| GenericAnalyser.parse(plain))
            .unwrap_or_default();
        DecryptedInput {
            plain_xml: xmpp_social::xml::to_xml_string(plain).unwrap_or_default(),
            parsed: Some(p.json),
            text: p.text,
            published: p.published,
            updated: p.updated,
            author: p.author,
            tags: p.tags,
            signature_verified,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blog_entry_to_json() {
        let xml = r#"<entry xmlns="http://www.w3.org/2005/Atom" xml:lang="en">
            <title type="text">Hello &lt;b&gt;world</title>
            <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Some <b>bold</b> text</p></div></content>
            <author><name>Juliet</name><uri>xmpp:juliet@capulet.lit</uri></author>
            <category term="xmpp"/><category term="rust"/>
            <published>2024-03-01T10:00:00+02:00</published>
            <updated>2024-03-02T10:00:00Z</updated>
            <id>tag:capulet.lit,2024:1</id>
        </entry>"#;
        let el: Element = xml.parse().unwrap();
        let r = AnalyserRegistry::new();
        let a = r.for_node("some-node", Some(&el));
        assert_eq!(a.name(), "microblog");
        let item = Item {
            id: "1".into(),
            publisher: None,
            payload: Some(el),
        };
        let input = r.to_input(a.as_ref(), &item);
        let p = input.parsed.unwrap();
        assert_eq!(p["title"], "Hello <b>world");
        assert_eq!(p["author_jid"], "juliet@capulet.lit");
        assert_eq!(p["tags"], json!(["xmpp", "rust"]));
        assert_eq!(p["published"], "2024-03-01T08:00:00.000000Z");
        assert_eq!(input.author.as_deref(), Some("juliet@capulet.lit"));
        // Text, not markup.
        assert!(input.text.contains("Some bold text"), "{}", input.text);
        assert!(!input.text.contains("<p>") && !input.text.contains("xhtml"));
        assert_eq!(
            r.for_node("urn:xmpp:microblog:0:comments/abc", None)
                .node_type(),
            Some("comments")
        );
    }

    #[test]
    fn model_analysers() {
        let r = AnalyserRegistry::new();
        let node = "urn:xmpp:pubsub-attachments:1/xmpp:juliet@capulet.lit?;node=urn%3Axmpp%3Amicroblog%3A0;item=x";
        let el: Element = "<attachments xmlns='urn:xmpp:pubsub-attachments:1'><noticed/>\
            <reactions><reaction>👍</reaction></reactions></attachments>"
            .parse()
            .unwrap();
        let a = r.for_node(node, None);
        assert_eq!(a.node_type(), Some("attachments"));
        let item = Item {
            id: "romeo@montague.lit".into(),
            publisher: None,
            payload: Some(el),
        };
        let input = r.to_input(a.as_ref(), &item);
        let p = input.parsed.unwrap();
        assert!(p.get("_error").is_none(), "{p}");
        assert_eq!(p["reactions"]["emojis"], json!(["👍"]));
        assert_eq!(
            r.for_node("urn:xmpp:pps:subscriptions:0", None).node_type(),
            Some("public_subscriptions")
        );
        assert_eq!(
            r.for_node("urn:xmpp:calendar-events:0", None).node_type(),
            Some("events")
        );
        assert_eq!(
            r.for_node("urn:xmpp:calendar-events:0x", None).name(),
            "generic"
        );
        // A malformed model payload stays searchable, with the error noted.
        let bad = Item {
            id: "b".into(),
            publisher: None,
            payload: Some(
                "<event xmlns='urn:xmpp:calendar-events:0'>words here</event>"
                    .parse()
                    .unwrap(),
            ),
        };
        let input = r.to_input(
            r.for_node("urn:xmpp:calendar-events:0", None).as_ref(),
            &bad,
        );
        assert!(input.parsed.unwrap().get("_error").is_some());
        assert_eq!(input.text, "words here");
    }

    #[test]
    fn generic_and_encrypted() {
        let r = AnalyserRegistry::new();
        let el: Element = "<x xmlns='urn:test'><a>one</a><b k='v'>two</b></x>"
            .parse()
            .unwrap();
        let a = r.for_node("n", Some(&el));
        assert_eq!(a.name(), "generic");
        let item = Item {
            id: "i".into(),
            publisher: None,
            payload: Some(el),
        };
        assert_eq!(r.to_input(a.as_ref(), &item).text, "one two");
        let enc: Element = "<openpgp xmlns='urn:xmpp:openpgp:0'>AAAA</openpgp>"
            .parse()
            .unwrap();
        let item = Item {
            id: "e".into(),
            publisher: None,
            payload: Some(enc),
        };
        let input = r.to_input(a.as_ref(), &item);
        assert!(input.encrypted);
        assert!(input.text.is_empty());
    }
}
