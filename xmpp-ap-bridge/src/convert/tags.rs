//! Tags and mentions: Atom `<category/>` <-> `Hashtag`, XEP-0372 mention references <-> `Mention`.
//!
//! xmpp-social has no XEP-0372 type yet, so a minimal [`Reference`] lives here: the
//! `<reference xmlns='urn:xmpp:reference:0' type='mention' uri='xmpp:juliet@capulet.lit'/>`
//! elements a post carries (in [`Entry::extra`]) name the accounts it mentions.

use jid::BareJid;
use minidom::Element;
use xmpp_social::microblog::{Category, Entry, XmppUri};
use xmpp_social::xml::BuilderExt;

use super::{ConvertError, UrlScheme};
use crate::vocab::{Tag, TagKind};

/// The XEP-0372 namespace.
pub const NS_REFERENCE: &str = "urn:xmpp:reference:0";
/// Most hashtags or mentions converted from one object (the rest is dropped).
pub const MAX_TAGS: usize = 64;
/// The longest hashtag kept (bytes).
pub const MAX_TAG_BYTES: usize = 256;

/// The `type` of a XEP-0372 reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReferenceType {
    /// A mention of an entity (`mention`).
    Mention,
    /// A reference to data (`data`).
    Data,
    /// Another value, kept as written.
    Other(String),
}

impl ReferenceType {
    fn as_str(&self) -> &str {
        match self {
            ReferenceType::Mention => "mention",
            ReferenceType::Data => "data",
            ReferenceType::Other(s) => s,
        }
    }
}

/// A XEP-0372 `<reference/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `type`.
    pub kind: ReferenceType,
    /// `uri`: an `xmpp:` URI for XMPP entities, any URI otherwise.
    pub uri: String,
    /// `begin`: first character of the reference in the body.
    pub begin: Option<u32>,
    /// `end`: the character after the reference.
    pub end: Option<u32>,
    /// `anchor`: the stanza or item the position refers to.
    pub anchor: Option<String>,
}

impl Reference {
    /// A mention of a JID.
    pub fn mention_of(jid: &BareJid) -> Self {
        Reference {
            kind: ReferenceType::Mention,
            uri: XmppUri::new(jid.clone().into()).to_string(),
            begin: None,
            end: None,
            anchor: None,
        }
    }

    /// Reads a `<reference/>`; `None` if `el` is not one or lacks `type`/`uri`.
    pub fn from_element(el: &Element) -> Option<Self> {
        if !el.is("reference", NS_REFERENCE) {
            return None;
        }
        let kind = match el.attr("type")? {
            "mention" => ReferenceType::Mention,
            "data" => ReferenceType::Data,
            other => ReferenceType::Other(other.to_owned()),
        };
        let num = |a: &str| el.attr(a).and_then(|v| v.trim().parse().ok());
        Some(Reference {
            kind,
            uri: el.attr("uri")?.to_owned(),
            begin: num("begin"),
            end: num("end"),
            anchor: el.attr("anchor").map(str::to_owned),
        })
    }

    /// Writes the `<reference/>`.
    pub fn to_element(&self) -> Element {
        Element::builder("reference", NS_REFERENCE)
            .a("type", self.kind.as_str())
            .a("uri", self.uri.as_str())
            .a_opt("begin", self.begin.map(|b| b.to_string()))
            .a_opt("end", self.end.map(|e| e.to_string()))
            .a_opt("anchor", self.anchor.as_deref())
            .build()
    }

    /// The mentioned JID, if this is a mention with an `xmpp:` URI.
    pub fn mentioned_jid(&self) -> Option<BareJid> {
        if self.kind != ReferenceType::Mention {
            return None;
        }
        XmppUri::parse(&self.uri).ok().map(|u| u.jid.to_bare())
    }
}

/// The XEP-0372 references of an entry (kept in [`Entry::extra`]).
pub fn entry_references(entry: &Entry) -> Vec<Reference> {
    entry
        .extra
        .iter()
        .filter_map(Reference::from_element)
        .collect()
}

/// Hashtags from an entry's categories (`#term`, with the scheme's link when it is an http(s) URL).
pub fn categories_to_hashtags(categories: &[Category]) -> Vec<Tag> {
    categories
        .iter()
        .filter(|c| !c.term.trim().is_empty())
        .take(MAX_TAGS)
        .map(|c| {
            let term = c
                .term
                .trim()
                .trim_start_matches('#')
                .replace(char::is_whitespace, "_");
            Tag::hashtag(&term, None)
        })
        .collect()
}

/// Categories from an object's hashtags (the `#` removed, duplicates dropped).
pub fn hashtags_to_categories(tags: &[Tag]) -> Vec<Category> {
    let mut out: Vec<Category> = Vec::new();
    for tag in tags.iter().filter(|t| t.kind == TagKind::Hashtag) {
        let Some(name) = tag.name.as_deref() else {
            continue;
        };
        let term = name.trim().trim_start_matches('#');
        if term.is_empty() || term.len() > MAX_TAG_BYTES || out.len() >= MAX_TAGS {
            continue;
        }
        if !out.iter().any(|c| c.term.eq_ignore_ascii_case(term)) {
            out.push(Category::new(term));
        }
    }
    out
}

/// `Mention` tags for an entry's mention references, and the actor ids to add to `cc`.
pub fn references_to_mentions<S: UrlScheme + ?Sized>(refs: &[Reference], scheme: &S) -> Vec<Tag> {
    let mut out: Vec<Tag> = Vec::new();
    for r in refs.iter().take(MAX_TAGS) {
        if r.kind != ReferenceType::Mention {
            continue;
        }
        let tag = match r.mentioned_jid() {
            Some(jid) => Tag::mention(scheme.actor_for_jid(&jid), Some(format!("@{jid}"))),
            // A mention of a non-XMPP URI (an ActivityPub actor mentioned as such).
            None if r.uri.starts_with("https://") || r.uri.starts_with("http://") => {
                Tag::mention(r.uri.clone(), None)
            }
            None => continue,
        };
        if !out.iter().any(|t| t.href == tag.href) {
            out.push(tag);
        }
    }
    out
}

/// XEP-0372 mention references for an object's `Mention` tags: an `xmpp:` URI when the scheme maps
/// the actor to a JID, else the actor's id.
pub fn mentions_to_references<S: UrlScheme + ?Sized>(
    tags: &[Tag],
    scheme: &S,
) -> Result<Vec<Reference>, ConvertError> {
    let mut out: Vec<Reference> = Vec::new();
    for tag in tags
        .iter()
        .filter(|t| t.kind == TagKind::Mention)
        .take(MAX_TAGS)
    {
        let Some(href) = tag.href.as_deref() else {
            continue;
        };
        let reference = match scheme.jid_for_actor(href) {
            Some(jid) => Reference::mention_of(&jid),
            None => Reference {
                kind: ReferenceType::Mention,
                uri: href.to_owned(),
                begin: None,
                end: None,
                anchor: None,
            },
        };
        if !out.iter().any(|r| r.uri == reference.uri) {
            out.push(reference);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::convert::test_scheme::{jid, TestScheme};

    #[test]
    fn categories_and_hashtags() {
        let cats = vec![
            Category::new("xmpp"),
            Category::new("#fediverse"),
            Category::new("two words"),
            Category::new("  "),
        ];
        let tags = categories_to_hashtags(&cats);
        let names: Vec<_> = tags.iter().map(|t| t.name.clone().unwrap()).collect();
        assert_eq!(names, ["#xmpp", "#fediverse", "#two_words"]);
        let back = hashtags_to_categories(&tags);
        let terms: Vec<_> = back.iter().map(|c| c.term.as_str()).collect();
        assert_eq!(terms, ["xmpp", "fediverse", "two_words"]);
        // Duplicates (case-insensitive), mentions, empty and oversized names are dropped.
        let mut noisy = tags.clone();
        noisy.push(Tag::hashtag("XMPP", None));
        noisy.push(Tag::mention("https://x.example/u", Some("@u".into())));
        noisy.push(Tag::hashtag("", None));
        noisy.push(Tag::hashtag(&"a".repeat(MAX_TAG_BYTES + 1), None));
        assert_eq!(hashtags_to_categories(&noisy).len(), 3);
        let many: Vec<Tag> = (0..1000)
            .map(|i| Tag::hashtag(&format!("t{i}"), None))
            .collect();
        assert_eq!(hashtags_to_categories(&many).len(), MAX_TAGS);
    }

    #[test]
    fn references_and_mentions() {
        let r = Reference::mention_of(&jid("bob\\40mastodon.example@ap.example.org"));
        let el = r.to_element();
        assert_eq!(Reference::from_element(&el), Some(r.clone()));
        let tags = references_to_mentions(
            &[r.clone(), Reference::mention_of(&jid("carol@example.org"))],
            &TestScheme,
        );
        assert_eq!(
            tags[0].href.as_deref(),
            Some("https://mastodon.example/users/bob")
        );
        assert_eq!(
            tags[1].href.as_deref(),
            Some("https://ap.example.org/_ap/actor/carol@example.org")
        );
        assert_eq!(tags[1].name.as_deref(), Some("@carol@example.org"));
        let back = mentions_to_references(&tags, &TestScheme).unwrap();
        assert_eq!(back[0].mentioned_jid(), r.mentioned_jid());
        assert_eq!(back[1].mentioned_jid(), Some(jid("carol@example.org")));
        // An actor the scheme cannot map stays a mention by URL.
        let odd = mentions_to_references(
            &[Tag::mention("https://odd.example/x/y", None)],
            &TestScheme,
        )
        .unwrap();
        assert_eq!(odd[0].uri, "https://odd.example/x/y");
        assert_eq!(odd[0].mentioned_jid(), None);
        // Not a reference, or incomplete.
        assert_eq!(
            Reference::from_element(&Element::bare("reference", "urn:x")),
            None
        );
        assert_eq!(
            Reference::from_element(
                &Element::builder("reference", NS_REFERENCE)
                    .a("type", "mention")
                    .build()
            ),
            None
        );
    }
}
