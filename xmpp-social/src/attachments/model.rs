//! The XEP-0470 payloads (sans-IO): `<attachments/>` items and `<summary/>` items, in the current
//! namespaces and, for reading, in the 0.1.0 ones.

use chrono::{DateTime, FixedOffset, SecondsFormat, SubsecRound, Utc};
use minidom::Element;
use serde::{Serialize, Serializer};

use super::emoji::{split_emojis, MAX_REACTION_READ_BYTES};
use super::{NS_ATTACHMENTS, NS_ATTACHMENTS_0, NS_SUMMARY, NS_SUMMARY_0};
use crate::error::ParseError;
use crate::xml::{qname, set_attr, BuilderExt};

/// Most reactions one `<reactions/>` element may carry before it is refused as hostile.
pub const MAX_REACTIONS: usize = 256;

/// Most attachments one `<attachments/>` element may carry (known and unknown children together).
pub const MAX_ATTACHMENT_CHILDREN: usize = 64;

/// Most distinct reactions a `<summary/>` may list.
pub const MAX_SUMMARY_REACTIONS: usize = 10_000;

fn invalid(element: &'static str, reason: impl Into<String>) -> ParseError {
    ParseError::InvalidValue {
        element,
        reason: reason.into(),
    }
}

/// The current time as XEP-0470 timestamps carry it (UTC, whole seconds).
pub fn now_timestamp() -> DateTime<FixedOffset> {
    Utc::now().trunc_subsecs(0).fixed_offset()
}

fn parse_timestamp(
    el: &Element,
    element: &'static str,
) -> Result<Option<DateTime<FixedOffset>>, ParseError> {
    let Some(text) = el.attr("timestamp") else {
        return Ok(None);
    };
    let text = text.trim();
    if text.len() > 64 {
        return Err(invalid(element, "timestamp is not a XEP-0082 DateTime"));
    }
    DateTime::parse_from_rfc3339(text).map(Some).map_err(|e| {
        invalid(
            element,
            format!("timestamp {text:?} is not a XEP-0082 DateTime: {e}"),
        )
    })
}

fn format_timestamp(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn serialize_timestamp<S: Serializer>(
    t: &Option<DateTime<FixedOffset>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_some(&format_timestamp(t)),
        None => s.serialize_none(),
    }
}

/// Serialises elements (with serde) as their XML text.
pub(crate) fn serialize_elements<S: Serializer>(
    elements: &[Element],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(elements.iter().map(XmlText))
}

struct XmlText<'a>(&'a Element);

impl Serialize for XmlText<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = crate::xml::to_xml_string(self.0).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

/// The text of a `<reaction/>`: trimmed, not empty, bounded.
fn reaction_text(el: &Element) -> Result<String, ParseError> {
    let text = el.text();
    if text.len() > MAX_REACTION_READ_BYTES {
        return Err(ParseError::TooLarge {
            element: "reaction",
            size: text.len(),
            limit: MAX_REACTION_READ_BYTES,
        });
    }
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid("reaction", "empty reaction"));
    }
    Ok(text.to_owned())
}

fn too_many(element: &'static str, size: usize, limit: usize) -> ParseError {
    ParseError::TooLarge {
        element,
        size,
        limit,
    }
}

// ---------------------------------------------------------------------------------------------
// Attachments
// ---------------------------------------------------------------------------------------------

/// `<noticed/>`: the publisher has seen or taken into account the target item (what other networks
/// call a "like" or "favourite").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Noticed {
    /// When it was attached (XEP-0082 DateTime), if said.
    #[serde(serialize_with = "serialize_timestamp")]
    pub timestamp: Option<DateTime<FixedOffset>>,
}

/// `<reactions/>`: emojis attached to the target item, each at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reactions {
    /// When the reactions were last published (XEP-0082 DateTime), if said.
    #[serde(serialize_with = "serialize_timestamp")]
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// The emojis, in document order, without duplicates.
    pub emojis: Vec<String>,
}

impl Reactions {
    fn push_unique(&mut self, emoji: String) -> Result<(), ParseError> {
        if !self.emojis.contains(&emoji) {
            if self.emojis.len() >= MAX_REACTIONS {
                return Err(too_many("reactions", self.emojis.len() + 1, MAX_REACTIONS));
            }
            self.emojis.push(emoji);
        }
        Ok(())
    }
}

/// The `<attachments/>` payload of one attachment item: everything one JID attached to a target item.
///
/// Children this crate does not understand are kept in [`Attachments::extra`] and written back
/// unchanged, as XEP-0470 requires of clients that update attachments. Parsing reads the current
/// namespace (`urn:xmpp:pubsub-attachments:1`) and the 0.1.0 one (`urn:xmpp:pubsub-attachments:0`,
/// where reactions were one `<reaction/>` holding every emoji); serialising always writes the current
/// one.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Attachments {
    /// `<noticed/>`, if attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noticed: Option<Noticed>,
    /// `<reactions/>`, if attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reactions: Option<Reactions>,
    /// Attachments this crate does not know (other XEPs' children), kept verbatim, in document order.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "serialize_elements"
    )]
    pub extra: Vec<Element>,
}

impl Attachments {
    /// Whether there is nothing attached at all (no known and no unknown attachment).
    pub fn is_empty(&self) -> bool {
        self.noticed.is_none() && self.reactions.is_none() && self.extra.is_empty()
    }

    /// Whether `<noticed/>` is attached.
    pub fn is_noticed(&self) -> bool {
        self.noticed.is_some()
    }

    /// The attached emojis (empty when none).
    pub fn emojis(&self) -> &[String] {
        self.reactions.as_ref().map_or(&[], |r| r.emojis.as_slice())
    }
}

impl TryFrom<&Element> for Attachments {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        let ns = if el.is("attachments", NS_ATTACHMENTS) {
            NS_ATTACHMENTS
        } else if el.is("attachments", NS_ATTACHMENTS_0) {
            NS_ATTACHMENTS_0
        } else {
            return Err(ParseError::WrongElement {
                expected: format!("{{{NS_ATTACHMENTS}}}attachments"),
                found: qname(el),
            });
        };
        let mut out = Attachments::default();
        for (i, child) in el.children().enumerate() {
            if i >= MAX_ATTACHMENT_CHILDREN {
                return Err(too_many(
                    "attachments",
                    el.children().count(),
                    MAX_ATTACHMENT_CHILDREN,
                ));
            }
            if child.is("noticed", ns) {
                if out.noticed.is_some() {
                    return Err(invalid("attachments", "more than one <noticed/>"));
                }
                out.noticed = Some(Noticed {
                    timestamp: parse_timestamp(child, "noticed@timestamp")?,
                });
            } else if ns == NS_ATTACHMENTS && child.is("reactions", ns) {
                if out.reactions.is_some() {
                    return Err(invalid("attachments", "more than one <reactions/>"));
                }
                let mut r = Reactions {
                    timestamp: parse_timestamp(child, "reactions@timestamp")?,
                    emojis: Vec::new(),
                };
                for reaction in child.children().filter(|c| c.is("reaction", ns)) {
                    r.push_unique(reaction_text(reaction)?)?;
                }
                out.reactions = Some(r);
            } else if ns == NS_ATTACHMENTS_0 && child.is("reaction", ns) {
                // 0.1.0: `<reaction timestamp='...'>👷🔨</reaction>`, emojis run together.
                let text = reaction_text(child)?;
                let timestamp = parse_timestamp(child, "reaction@timestamp")?;
                let r = out.reactions.get_or_insert_with(Reactions::default);
                // The latest of the elements' timestamps (None sorts first).
                r.timestamp = r.timestamp.max(timestamp);
                for emoji in split_emojis(&text) {
                    r.push_unique(emoji)?;
                }
            } else {
                out.extra.push(child.clone());
            }
        }
        Ok(out)
    }
}

impl From<&Noticed> for Element {
    fn from(n: &Noticed) -> Element {
        Element::builder("noticed", NS_ATTACHMENTS)
            .a_opt("timestamp", n.timestamp.as_ref().map(format_timestamp))
            .build()
    }
}

impl From<&Reactions> for Element {
    fn from(r: &Reactions) -> Element {
        let mut b = Element::builder("reactions", NS_ATTACHMENTS)
            .a_opt("timestamp", r.timestamp.as_ref().map(format_timestamp));
        for emoji in &r.emojis {
            b = b.append(
                Element::builder("reaction", NS_ATTACHMENTS)
                    .append(emoji.as_str())
                    .build(),
            );
        }
        b.build()
    }
}

impl From<&Attachments> for Element {
    fn from(a: &Attachments) -> Element {
        let mut b = Element::builder("attachments", NS_ATTACHMENTS);
        if let Some(n) = &a.noticed {
            b = b.append(Element::from(n));
        }
        if let Some(r) = &a.reactions {
            b = b.append(Element::from(r));
        }
        for e in &a.extra {
            b = b.append(e.clone());
        }
        b.build()
    }
}

// ---------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------

/// One emoji of a summary and how many distinct JIDs attached it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReactionCount {
    /// The emoji.
    pub emoji: String,
    /// How many distinct bare JIDs attached it (at least 1).
    pub count: u64,
}

/// The `<summary/>` of a target item (XEP-0470 §"Summary Node"): how many JIDs noticed it and how many
/// attached each emoji.
///
/// Counting rules: `noticed` counts `<noticed/>` elements, one per JID; each emoji counts the distinct
/// bare JIDs that attached it; a `count` attribute is written on a `<reaction/>` only when it is above 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// How many JIDs attached `<noticed/>`, when the summary has a `<noticed/>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noticed: Option<u64>,
    /// The emojis and their counts, in document order (computed summaries: most used first).
    pub reactions: Vec<ReactionCount>,
    /// Summaries of attachments this crate does not know, verbatim.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "serialize_elements"
    )]
    pub extra: Vec<Element>,
}

impl Summary {
    /// Whether the summary says nothing (the XEP allows an empty `<summary/>` once every attachment is
    /// gone).
    pub fn is_empty(&self) -> bool {
        self.noticed.is_none() && self.reactions.is_empty() && self.extra.is_empty()
    }

    /// The count of one emoji (0 when absent).
    pub fn count_of(&self, emoji: &str) -> u64 {
        self.reactions
            .iter()
            .find(|r| r.emoji == emoji)
            .map_or(0, |r| r.count)
    }

    /// Computes a summary as a fully-compliant service would, from each JID's attachments. A JID
    /// appearing more than once counts once; so does an emoji repeated by one JID. Reactions are sorted
    /// by count (highest first), then by emoji, so the result does not depend on the input order.
    pub fn compute<'a, I>(attachments: I) -> Summary
    where
        I: IntoIterator<Item = (&'a jid::BareJid, &'a Attachments)>,
    {
        use std::collections::{HashMap, HashSet};
        let mut noticed: HashSet<&jid::BareJid> = HashSet::new();
        let mut by_emoji: HashMap<&str, HashSet<&jid::BareJid>> = HashMap::new();
        for (who, a) in attachments {
            if a.noticed.is_some() {
                noticed.insert(who);
            }
            for emoji in a.emojis() {
                by_emoji.entry(emoji.as_str()).or_default().insert(who);
            }
        }
        let mut reactions: Vec<ReactionCount> = by_emoji
            .into_iter()
            .map(|(emoji, jids)| ReactionCount {
                emoji: emoji.to_owned(),
                count: jids.len() as u64,
            })
            .collect();
        reactions.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.emoji.cmp(&b.emoji)));
        Summary {
            noticed: (!noticed.is_empty()).then_some(noticed.len() as u64),
            reactions,
            extra: Vec::new(),
        }
    }
}

fn parse_count(el: &Element, element: &'static str) -> Result<Option<u64>, ParseError> {
    match el.attr("count") {
        None => Ok(None),
        Some(c) => c
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| invalid(element, format!("count {c:?} is not a number"))),
    }
}

impl Summary {
    fn push_reaction(&mut self, emoji: String, count: u64) -> Result<(), ParseError> {
        if count == 0 {
            return Err(invalid("reaction@count", "a reaction counted 0 times"));
        }
        if let Some(existing) = self.reactions.iter_mut().find(|r| r.emoji == emoji) {
            // The same emoji listed twice: the larger count wins rather than a sum, which would
            // count some JIDs twice.
            existing.count = existing.count.max(count);
            return Ok(());
        }
        if self.reactions.len() >= MAX_SUMMARY_REACTIONS {
            return Err(too_many(
                "summary",
                self.reactions.len() + 1,
                MAX_SUMMARY_REACTIONS,
            ));
        }
        self.reactions.push(ReactionCount { emoji, count });
        Ok(())
    }
}

impl TryFrom<&Element> for Summary {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        let ns = if el.is("summary", NS_SUMMARY) {
            NS_SUMMARY
        } else if el.is("summary", NS_SUMMARY_0) {
            NS_SUMMARY_0
        } else {
            return Err(ParseError::WrongElement {
                expected: format!("{{{NS_SUMMARY}}}summary"),
                found: qname(el),
            });
        };
        let mut out = Summary::default();
        for (i, child) in el.children().enumerate() {
            if i >= MAX_ATTACHMENT_CHILDREN {
                return Err(too_many(
                    "summary",
                    el.children().count(),
                    MAX_ATTACHMENT_CHILDREN,
                ));
            }
            if child.is("noticed", ns) {
                if out.noticed.is_some() {
                    return Err(invalid("summary", "more than one <noticed/>"));
                }
                // A `<noticed/>` without count: one JID noticed it (the rule of `<reaction/>`).
                out.noticed = Some(parse_count(child, "noticed@count")?.unwrap_or(1));
            } else if ns == NS_SUMMARY && child.is("reactions", ns) {
                for r in child.children().filter(|c| c.is("reaction", ns)) {
                    let count = parse_count(r, "reaction@count")?.unwrap_or(1);
                    out.push_reaction(reaction_text(r)?, count)?;
                }
            } else if ns == NS_SUMMARY_0 && child.is("reaction", ns) {
                // 0.1.0: `<reaction><multiple count='2'>👷</multiple>🔨🔧</reaction>`.
                for m in child.children().filter(|c| c.is("multiple", ns)) {
                    let count =
                        parse_count(m, "multiple@count")?.ok_or(ParseError::MissingAttribute {
                            element: "multiple",
                            attribute: "count",
                        })?;
                    out.push_reaction(reaction_text(m)?, count)?;
                }
                let singles: String = child.texts().collect();
                if singles.len() > MAX_REACTION_READ_BYTES * MAX_REACTIONS {
                    return Err(too_many(
                        "reaction",
                        singles.len(),
                        MAX_REACTION_READ_BYTES * MAX_REACTIONS,
                    ));
                }
                for emoji in split_emojis(&singles) {
                    out.push_reaction(emoji, 1)?;
                }
            } else {
                out.extra.push(child.clone());
            }
        }
        Ok(out)
    }
}

impl From<&Summary> for Element {
    fn from(s: &Summary) -> Element {
        let mut b = Element::builder("summary", NS_SUMMARY);
        if let Some(n) = s.noticed {
            b = b.append(
                Element::builder("noticed", NS_SUMMARY)
                    .a("count", n.to_string())
                    .build(),
            );
        }
        if !s.reactions.is_empty() {
            let mut r = Element::builder("reactions", NS_SUMMARY).build();
            for rc in &s.reactions {
                let mut e = Element::builder("reaction", NS_SUMMARY)
                    .append(rc.emoji.as_str())
                    .build();
                if rc.count > 1 {
                    set_attr(&mut e, "count", rc.count.to_string());
                }
                r.append_child(e);
            }
            b = b.append(r);
        }
        for e in &s.extra {
            b = b.append(e.clone());
        }
        b.build()
    }
}
