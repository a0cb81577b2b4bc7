//! XEP-0234 (Jingle File Transfer, 0.19.1): the `<description/>` with its `<file/>`, ranges, and the
//! `<checksum/>` and `<received/>` session-info payloads.
//!
//! Unknown children of `<file/>` are kept raw in [`File::extra`] and written back.

use minidom::Element;
use xmpp_social::xml::BuilderExt;
use xmpp_social::ParseError;

use crate::hashes::{Hash, HashUsed, NS_HASHES};
use crate::jingle::Creator;

/// `urn:xmpp:jingle:apps:file-transfer:5`.
pub const NS_FT: &str = "urn:xmpp:jingle:apps:file-transfer:5";
/// `urn:xmpp:jingle:apps:file-transfer:errors:0`.
pub const NS_FT_ERRORS: &str = "urn:xmpp:jingle:apps:file-transfer:errors:0";

/// Most hashes kept per file or range.
const MAX_HASHES: usize = 16;
/// Most unknown children kept per file.
const MAX_EXTRA: usize = 32;
/// Longest text field (name, description, media type, date), in characters.
const MAX_TEXT_CHARS: usize = 8192;

/// A `<range/>`: where a transfer starts and how much of the file it carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Range {
    /// First byte (0 when absent).
    pub offset: u64,
    /// Number of bytes; `None` means up to the end.
    pub length: Option<u64>,
    /// Hashes of the bytes of the range (in a `<checksum/>`).
    pub hashes: Vec<Hash>,
}

/// A `<file/>`: the metadata of one file. Every field is optional in the XEP.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct File {
    /// `<date/>`, as written (XEP-0082 date-time).
    pub date: Option<String>,
    /// `<desc/>`.
    pub desc: Option<String>,
    /// `<media-type/>`.
    pub media_type: Option<String>,
    /// `<name/>`.
    pub name: Option<String>,
    /// `<size/>` in bytes.
    pub size: Option<u64>,
    /// `<range/>`: its presence announces support of ranged transfers.
    pub range: Option<Range>,
    /// `<hash/>` elements (XEP-0300).
    pub hashes: Vec<Hash>,
    /// `<hash-used/>` elements: algorithms whose digest will come in a `<checksum/>`.
    pub hashes_used: Vec<HashUsed>,
    /// Unknown children, kept as they came.
    pub extra: Vec<Element>,
}

fn text_child(el: &Element, element: &'static str) -> Result<String, ParseError> {
    let t = el.text();
    if t.chars().count() > MAX_TEXT_CHARS {
        return Err(ParseError::TooLarge {
            element,
            size: t.len(),
            limit: MAX_TEXT_CHARS,
        });
    }
    Ok(t)
}

fn parse_u64(v: &str, element: &'static str) -> Result<u64, ParseError> {
    v.trim()
        .parse::<u64>()
        .map_err(|e| ParseError::InvalidValue {
            element,
            reason: format!("{v:?}: {e}"),
        })
}

fn push_bounded<T>(
    v: &mut Vec<T>,
    item: T,
    element: &'static str,
    limit: usize,
) -> Result<(), ParseError> {
    if v.len() >= limit {
        return Err(ParseError::TooLarge {
            element,
            size: v.len() + 1,
            limit,
        });
    }
    v.push(item);
    Ok(())
}

impl Range {
    /// Parses a `<range/>`.
    pub fn from_element(el: &Element) -> Result<Range, ParseError> {
        let offset = match el.attr("offset") {
            Some(v) => parse_u64(v, "range")?,
            None => 0,
        };
        let length = el
            .attr("length")
            .map(|v| parse_u64(v, "range"))
            .transpose()?;
        let mut hashes = Vec::new();
        for c in el.children() {
            if c.is("hash", NS_HASHES) {
                push_bounded(&mut hashes, Hash::from_element(c)?, "range", MAX_HASHES)?;
            }
        }
        Ok(Range {
            offset,
            length,
            hashes,
        })
    }

    /// The `<range/>` element (attributes only when they differ from their defaults).
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("range", NS_FT);
        if self.offset != 0 {
            b = b.a("offset", self.offset.to_string());
        }
        b = b.a_opt("length", self.length.map(|l| l.to_string()));
        for h in &self.hashes {
            b = b.append(h.to_element());
        }
        b.build()
    }
}

impl File {
    /// Parses a `<file xmlns='urn:xmpp:jingle:apps:file-transfer:5'/>`.
    pub fn from_element(el: &Element) -> Result<File, ParseError> {
        if !el.is("file", NS_FT) {
            return Err(ParseError::WrongElement {
                expected: format!("{{{NS_FT}}}file"),
                found: xmpp_social::xml::qname(el),
            });
        }
        let mut f = File::default();
        for c in el.children() {
            match (c.ns().as_str(), c.name()) {
                (NS_FT, "date") => f.date = Some(text_child(c, "date")?),
                (NS_FT, "desc") => f.desc = Some(text_child(c, "desc")?),
                (NS_FT, "media-type") => f.media_type = Some(text_child(c, "media-type")?),
                (NS_FT, "name") => f.name = Some(text_child(c, "name")?),
                (NS_FT, "size") => f.size = Some(parse_u64(&c.text(), "size")?),
                (NS_FT, "range") => f.range = Some(Range::from_element(c)?),
                (NS_HASHES, "hash") => {
                    push_bounded(&mut f.hashes, Hash::from_element(c)?, "file", MAX_HASHES)?
                }
                (NS_HASHES, "hash-used") => push_bounded(
                    &mut f.hashes_used,
                    HashUsed::from_element(c)?,
                    "file",
                    MAX_HASHES,
                )?,
                _ => push_bounded(&mut f.extra, c.clone(), "file", MAX_EXTRA)?,
            }
        }
        Ok(f)
    }

    /// The `<file/>` element.
    pub fn to_element(&self) -> Element {
        let text = |name: &str, v: &Option<String>| {
            v.as_ref()
                .map(|v| Element::builder(name, NS_FT).append(v.clone()).build())
        };
        let mut b = Element::builder("file", NS_FT);
        for e in [
            text("date", &self.date),
            text("desc", &self.desc),
            text("media-type", &self.media_type),
            text("name", &self.name),
        ]
        .into_iter()
        .flatten()
        {
            b = b.append(e);
        }
        if let Some(r) = &self.range {
            b = b.append(r.to_element());
        }
        if let Some(s) = self.size {
            b = b.append(
                Element::builder("size", NS_FT)
                    .append(s.to_string())
                    .build(),
            );
        }
        for h in &self.hashes {
            b = b.append(h.to_element());
        }
        for h in &self.hashes_used {
            b = b.append(h.to_element());
        }
        for e in &self.extra {
            b = b.append(e.clone());
        }
        b.build()
    }

    /// A file offer without a range (the name and size are what receivers show).
    pub fn named(name: impl Into<String>, size: u64) -> File {
        File {
            name: Some(name.into()),
            size: Some(size),
            ..File::default()
        }
    }
}

/// A file-transfer `<description/>`: one `<file/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDescription {
    /// The file.
    pub file: File,
}

impl FileDescription {
    /// Parses a `<description xmlns='urn:xmpp:jingle:apps:file-transfer:5'/>`.
    pub fn from_element(el: &Element) -> Result<FileDescription, ParseError> {
        if !el.is("description", NS_FT) {
            return Err(ParseError::WrongElement {
                expected: format!("{{{NS_FT}}}description"),
                found: xmpp_social::xml::qname(el),
            });
        }
        let file = el
            .get_child("file", NS_FT)
            .ok_or(ParseError::MissingChild {
                element: "description",
                child: "file",
            })?;
        Ok(FileDescription {
            file: File::from_element(file)?,
        })
    }

    /// The `<description/>` element.
    pub fn to_element(&self) -> Element {
        Element::builder("description", NS_FT)
            .append(self.file.to_element())
            .build()
    }
}

/// A `<checksum/>` (session-info after or during a transfer): the hashes of the file or of a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// The content's creator.
    pub creator: Creator,
    /// The content's name.
    pub name: String,
    /// The file with its hashes (and a range with hashes for ranged transfers).
    pub file: File,
}

/// A `<received/>` (session-info): the receiver got the whole file of this content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The content's creator.
    pub creator: Creator,
    /// The content's name.
    pub name: String,
}

/// The session-info payloads of XEP-0234.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FtInfo {
    /// `<checksum/>`.
    Checksum(Box<Checksum>),
    /// `<received/>`.
    Received(Received),
}

fn creator_name(el: &Element, element: &'static str) -> Result<(Creator, String), ParseError> {
    let creator = Creator::parse(el.attr("creator").ok_or(ParseError::MissingAttribute {
        element,
        attribute: "creator",
    })?)
    .ok_or(ParseError::InvalidValue {
        element,
        reason: "bad creator".into(),
    })?;
    let name = el.attr("name").ok_or(ParseError::MissingAttribute {
        element,
        attribute: "name",
    })?;
    Ok((creator, name.to_owned()))
}

impl FtInfo {
    /// Parses a `<checksum/>` or `<received/>`.
    pub fn from_element(el: &Element) -> Result<FtInfo, ParseError> {
        if el.is("checksum", NS_FT) {
            let (creator, name) = creator_name(el, "checksum")?;
            let file = el
                .get_child("file", NS_FT)
                .ok_or(ParseError::MissingChild {
                    element: "checksum",
                    child: "file",
                })?;
            Ok(FtInfo::Checksum(Box::new(Checksum {
                creator,
                name,
                file: File::from_element(file)?,
            })))
        } else if el.is("received", NS_FT) {
            let (creator, name) = creator_name(el, "received")?;
            Ok(FtInfo::Received(Received { creator, name }))
        } else {
            Err(ParseError::WrongElement {
                expected: format!("{{{NS_FT}}}checksum|received"),
                found: xmpp_social::xml::qname(el),
            })
        }
    }

    /// The element.
    pub fn to_element(&self) -> Element {
        match self {
            FtInfo::Checksum(c) => Element::builder("checksum", NS_FT)
                .a("creator", c.creator.as_str())
                .a("name", c.name.clone())
                .append(c.file.to_element())
                .build(),
            FtInfo::Received(r) => Element::builder("received", NS_FT)
                .a("creator", r.creator.as_str())
                .a("name", r.name.clone())
                .build(),
        }
    }
}

/// The file-transfer error conditions that go in a `<reason/>` next to the Jingle condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FtError {
    /// `<file-not-available/>`: a requested file is not there.
    FileNotAvailable,
    /// `<file-too-large/>`: an offered file is too large.
    FileTooLarge,
}

impl FtError {
    /// The element.
    pub fn to_element(self) -> Element {
        let name = match self {
            FtError::FileNotAvailable => "file-not-available",
            FtError::FileTooLarge => "file-too-large",
        };
        Element::bare(name, NS_FT_ERRORS)
    }
}
