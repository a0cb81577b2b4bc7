//! The `<event/>` payload of XEP-0471 (Calendar Events 0.2.0), typed.
//!
//! Reads `urn:xmpp:calendar-events:0` and Libervia 0.9's `urn:xmpp:events:0` (XEP-0471 0.1.0); the
//! namespace read is kept in [`Event::ns`] so republishing writes what was read, and new events use
//! the current namespace.

use chrono::{DateTime, FixedOffset};
use jid::Jid;
use minidom::Element;
use serde::{Serialize, Serializer};

use crate::error::ParseError;
use crate::forms::{DataForm, Field, FieldOption, FormType, NS_DATA};
use crate::microblog::{Geoloc, ItemRef, NodeRef, Xhtml, NS_GEOLOC, NS_XHTML};
use crate::util::{
    check_limits, detached, format_date, invalid, lang_of, parse_date, parse_jid, push_bounded,
    required_attr, ser_date, ser_elements, ser_opt_item, ser_opt_node, set_lang, text_element,
    XmlText, MAX_TEXT_BYTES,
};
use crate::xml::BuilderExt;

/// The XEP-0471 0.2.0 namespace, also the personal agenda's PEP node and the disco feature.
pub const NS_CALENDAR_EVENTS: &str = "urn:xmpp:calendar-events:0";
/// The XEP-0471 0.1.0 namespace, still written by Libervia 0.9.
pub const NS_EVENTS_LEGACY: &str = "urn:xmpp:events:0";
/// `FORM_TYPE` of the RSVP form (0.2.0).
pub const FORM_RSVP: &str = "urn:xmpp:calendar-events:rsvp:0";
/// `FORM_TYPE` of the RSVP form (0.1.0, Libervia).
pub const FORM_RSVP_LEGACY: &str = "urn:xmpp:events:rsvp:0";
/// `FORM_TYPE` of the extra-data form (0.2.0).
pub const FORM_EXTRA: &str = "urn:xmpp:calendar-events:extra:0";
/// `FORM_TYPE` of the extra-data form (0.1.0, Libervia).
pub const FORM_EXTRA_LEGACY: &str = "urn:xmpp:events:extra:0";
/// Prefix of the invitees nodes of the XEP's examples (`...invitees:0/<event id>`).
pub const INVITEES_NODE_PREFIX: &str = "urn:xmpp:calendar-events:invitees:0/";
/// XEP-0447 Stateless File Sharing.
pub const NS_SFS: &str = "urn:xmpp:sfs:0";
/// XEP-0446 File Metadata Element.
pub const NS_FILE_METADATA: &str = "urn:xmpp:file:metadata:0";
/// XEP-0103 URL Address Information.
pub const NS_URL_DATA: &str = "http://jabber.org/protocol/url-data";
/// XEP-0249 Direct MUC Invitations.
pub const NS_CONFERENCE: &str = "jabber:x:conference";

/// Which XEP-0471 namespace an event (or RSVP) uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventNamespace {
    /// `urn:xmpp:calendar-events:0` (XEP-0471 0.2.0): what this crate writes by default.
    #[default]
    Current,
    /// `urn:xmpp:events:0` (XEP-0471 0.1.0): what Libervia 0.9 writes.
    Legacy,
}

impl EventNamespace {
    /// The namespace of `<event/>`, `<rsvp/>`, `<invitee/>` and `<attendees/>`.
    pub fn ns(self) -> &'static str {
        match self {
            EventNamespace::Current => NS_CALENDAR_EVENTS,
            EventNamespace::Legacy => NS_EVENTS_LEGACY,
        }
    }

    /// `FORM_TYPE` of RSVP forms.
    pub fn rsvp_form_type(self) -> &'static str {
        match self {
            EventNamespace::Current => FORM_RSVP,
            EventNamespace::Legacy => FORM_RSVP_LEGACY,
        }
    }

    /// `FORM_TYPE` of the extra-data form.
    pub fn extra_form_type(self) -> &'static str {
        match self {
            EventNamespace::Current => FORM_EXTRA,
            EventNamespace::Legacy => FORM_EXTRA_LEGACY,
        }
    }

    /// The personal agenda node on PEP (the namespace itself).
    pub fn agenda_node(self) -> &'static str {
        self.ns()
    }

    /// The namespace for a namespace string, if it is one of XEP-0471's.
    pub fn from_ns(ns: &str) -> Option<Self> {
        match ns {
            NS_CALENDAR_EVENTS => Some(EventNamespace::Current),
            NS_EVENTS_LEGACY => Some(EventNamespace::Legacy),
            _ => None,
        }
    }
}

/// An events node name on a pubsub service, as the XEP recommends: `urn:xmpp:calendar-events:0/<suffix>`.
pub fn events_node(suffix: &str) -> String {
    format!("{NS_CALENDAR_EVENTS}/{suffix}")
}

/// A text with an optional `xml:lang` (event names, online location names and instructions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LangText {
    /// `xml:lang`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// The text, as written.
    pub text: String,
}

impl LangText {
    /// A text without language.
    pub fn new(text: impl Into<String>) -> Self {
        LangText {
            lang: None,
            text: text.into(),
        }
    }

    /// A text in a language.
    pub fn with_lang(lang: impl Into<String>, text: impl Into<String>) -> Self {
        LangText {
            lang: Some(lang.into()),
            text: text.into(),
        }
    }

    fn parse(el: &Element, element: &'static str) -> Result<Self, ParseError> {
        let text = el.text();
        if text.len() > MAX_TEXT_BYTES {
            return Err(ParseError::TooLarge {
                element,
                size: text.len(),
                limit: MAX_TEXT_BYTES,
            });
        }
        Ok(LangText {
            lang: lang_of(el),
            text,
        })
    }

    fn to_element(&self, name: &str, ns: &str) -> Element {
        let mut el = text_element(name, ns, &self.text);
        set_lang(&mut el, self.lang.as_deref());
        el
    }
}

/// Picks the text in `lang`, else the one without language, else the first.
fn pick<'a>(texts: &'a [LangText], lang: Option<&str>) -> Option<&'a str> {
    lang.and_then(|l| texts.iter().find(|t| t.lang.as_deref() == Some(l)))
        .or_else(|| texts.iter().find(|t| t.lang.is_none()))
        .or_else(|| texts.first())
        .map(|t| t.text.as_str())
}

/// The body of a `<description/>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum DescriptionBody {
    /// `type='text'`: plain text, kept as written.
    Text(String),
    /// `type='xhtml'`: an XHTML `<div/>` (to be sanitised before display, as the XEP says).
    Xhtml(Xhtml),
}

/// A `<description/>` of the event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Description {
    /// `xml:lang`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// The text or XHTML.
    #[serde(flatten)]
    pub body: DescriptionBody,
}

impl Description {
    /// A plain-text description.
    pub fn text(lang: Option<&str>, text: impl Into<String>) -> Self {
        Description {
            lang: lang.map(str::to_owned),
            body: DescriptionBody::Text(text.into()),
        }
    }

    /// An XHTML description.
    pub fn xhtml(lang: Option<&str>, xhtml: Xhtml) -> Self {
        Description {
            lang: lang.map(str::to_owned),
            body: DescriptionBody::Xhtml(xhtml),
        }
    }

    /// `text` or `xhtml`.
    pub fn type_name(&self) -> &'static str {
        match self.body {
            DescriptionBody::Text(_) => "text",
            DescriptionBody::Xhtml(_) => "xhtml",
        }
    }

    /// A plain-text rendering.
    pub fn plain_text(&self) -> String {
        match &self.body {
            DescriptionBody::Text(t) => t.trim().to_owned(),
            DescriptionBody::Xhtml(x) => x.plain_text(),
        }
    }

    fn parse(el: &Element) -> Result<Self, ParseError> {
        let div = el.children().find(|c| c.is("div", NS_XHTML));
        let body = match (el.attr("type"), div) {
            (Some("xhtml"), Some(div)) => {
                DescriptionBody::Xhtml(Xhtml::from_element(detached(div)))
            }
            (Some("xhtml"), None) => {
                return Err(ParseError::MissingChild {
                    element: "description",
                    child: "div",
                })
            }
            // Libervia 0.9 writes no `type`: an XHTML <div/> child says what it is.
            (None, Some(div)) => DescriptionBody::Xhtml(Xhtml::from_element(detached(div))),
            (Some("text") | None, _) => DescriptionBody::Text(el.text()),
            (Some(other), _) => {
                return Err(invalid(
                    "description@type",
                    format!("unknown description type {other:?}"),
                ))
            }
        };
        Ok(Description {
            lang: lang_of(el),
            body,
        })
    }

    fn to_element(&self, ns: &str) -> Element {
        let mut el = Element::builder("description", ns)
            .a("type", self.type_name())
            .build();
        set_lang(&mut el, self.lang.as_deref());
        match &self.body {
            DescriptionBody::Text(t) => {
                if !t.is_empty() {
                    el.append_text_node(t.as_str());
                }
            }
            DescriptionBody::Xhtml(x) => {
                el.append_child(x.element().clone());
            }
        }
        el
    }
}

/// A `<category/>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Category {
    /// `term`: a human-readable word or short words.
    pub term: String,
    /// `wd`: the Wikidata entity id (`Q...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wd: Option<String>,
    /// `xml:lang`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
}

impl Category {
    /// A category with a term only.
    pub fn new(term: impl Into<String>) -> Self {
        Category {
            term: term.into(),
            wd: None,
            lang: None,
        }
    }

    /// The same category with a Wikidata id.
    pub fn with_wikidata(mut self, wd: impl Into<String>) -> Self {
        self.wd = Some(wd.into());
        self
    }

    /// The same category with a language.
    pub fn with_lang(mut self, lang: impl Into<String>) -> Self {
        self.lang = Some(lang.into());
        self
    }

    fn parse(el: &Element) -> Result<Self, ParseError> {
        Ok(Category {
            term: required_attr(el, "category", "term")?.to_owned(),
            wd: el.attr("wd").map(str::to_owned),
            lang: lang_of(el),
        })
    }

    fn to_element(&self, ns: &str) -> Element {
        let mut el = Element::builder("category", ns)
            .a("term", self.term.as_str())
            .a_opt("wd", self.wd.clone())
            .build();
        set_lang(&mut el, self.lang.as_deref());
        el
    }
}

/// The `<software/>` of an online location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Software {
    /// `name`.
    pub name: String,
    /// `wd`: Wikidata entity id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wd: Option<String>,
    /// `url`: the software's website.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `need_install`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub need_install: Option<bool>,
}

/// An `<online/>` location: how to join a virtual meeting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OnlineLocation {
    /// `<name/>`s.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<LangText>,
    /// `<instructions/>` (at least one in a valid payload).
    pub instructions: Vec<LangText>,
    /// `<software/>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software: Option<Software>,
    /// The XEP-0103 `<url-data target=.../>` to join.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A XEP-0249 `<x xmlns='jabber:x:conference' jid=.../>` MUC room.
    #[serde(
        serialize_with = "crate::util::ser_opt_jid",
        skip_serializing_if = "Option::is_none"
    )]
    pub muc: Option<Jid>,
    /// Other children, kept as they are.
    #[serde(serialize_with = "ser_elements", skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<Element>,
}

impl OnlineLocation {
    /// An online location with instructions.
    pub fn new(instructions: LangText) -> Self {
        OnlineLocation {
            names: Vec::new(),
            instructions: vec![instructions],
            software: None,
            url: None,
            muc: None,
            other: Vec::new(),
        }
    }

    fn parse(el: &Element, ns: &str) -> Result<Self, ParseError> {
        let mut online = OnlineLocation {
            names: Vec::new(),
            instructions: Vec::new(),
            software: None,
            url: None,
            muc: None,
            other: Vec::new(),
        };
        for c in el.children() {
            if c.is("name", ns) {
                push_bounded(
                    &mut online.names,
                    LangText::parse(c, "name")?,
                    "online names",
                )?;
            } else if c.is("instructions", ns) {
                push_bounded(
                    &mut online.instructions,
                    LangText::parse(c, "instructions")?,
                    "online instructions",
                )?;
            } else if c.is("software", ns) && online.software.is_none() {
                let need_install = match c.attr("need_install") {
                    None => None,
                    Some("true" | "1") => Some(true),
                    Some("false" | "0") => Some(false),
                    Some(other) => {
                        return Err(invalid(
                            "software@need_install",
                            format!("not a boolean: {other:?}"),
                        ))
                    }
                };
                online.software = Some(Software {
                    name: required_attr(c, "software", "name")?.to_owned(),
                    wd: c.attr("wd").map(str::to_owned),
                    url: c.attr("url").map(str::to_owned),
                    need_install,
                });
            } else if c.is("url-data", NS_URL_DATA) && online.url.is_none() {
                online.url = Some(required_attr(c, "url-data", "target")?.to_owned());
            } else if c.is("x", NS_CONFERENCE) && online.muc.is_none() {
                online.muc = Some(parse_jid("x@jid", required_attr(c, "x", "jid")?)?);
            } else {
                push_bounded(&mut online.other, detached(c), "online")?;
            }
        }
        if online.instructions.is_empty() {
            return Err(ParseError::MissingChild {
                element: "online",
                child: "instructions",
            });
        }
        Ok(online)
    }

    fn to_element(&self, ns: &str) -> Element {
        let mut el = Element::bare("online", ns);
        for n in &self.names {
            el.append_child(n.to_element("name", ns));
        }
        if let Some(s) = &self.software {
            el.append_child(
                Element::builder("software", ns)
                    .a("name", s.name.as_str())
                    .a_opt("wd", s.wd.clone())
                    .a_opt("url", s.url.clone())
                    .a_opt(
                        "need_install",
                        s.need_install.map(|b| if b { "true" } else { "false" }),
                    )
                    .build(),
            );
        }
        if let Some(u) = &self.url {
            el.append_child(
                Element::builder("url-data", NS_URL_DATA)
                    .a("target", u.as_str())
                    .build(),
            );
        }
        if let Some(m) = &self.muc {
            el.append_child(
                Element::builder("x", NS_CONFERENCE)
                    .a("jid", m.to_string())
                    .build(),
            );
        }
        for i in &self.instructions {
            el.append_child(i.to_element("instructions", ns));
        }
        for o in &self.other {
            el.append_child(o.clone());
        }
        el
    }
}

/// A `<location/>`: zero or one XEP-0080 `<geoloc/>` and any number of online locations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Location {
    /// `id` (required when an event has several locations; `main` for the main one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `xml:lang` of the `<location/>` element.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// The physical place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geoloc: Option<Geoloc>,
    /// `xml:lang` of the `<geoloc/>` element (where the XEP's example and Libervia put it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geoloc_lang: Option<String>,
    /// Online meeting places.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub online: Vec<OnlineLocation>,
    /// Other children, kept as they are.
    #[serde(serialize_with = "ser_elements", skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<Element>,
}

impl Location {
    /// A physical location.
    pub fn place(geoloc: Geoloc) -> Self {
        Location {
            geoloc: Some(geoloc),
            ..Location::default()
        }
    }

    /// An online location.
    pub fn online(online: OnlineLocation) -> Self {
        Location {
            online: vec![online],
            ..Location::default()
        }
    }

    /// The same location with an id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    fn parse(el: &Element, ns: &str) -> Result<Self, ParseError> {
        let mut loc = Location {
            id: el.attr("id").map(str::to_owned),
            lang: lang_of(el),
            ..Location::default()
        };
        for c in el.children() {
            if c.is("geoloc", NS_GEOLOC) && loc.geoloc.is_none() {
                loc.geoloc_lang = lang_of(c);
                loc.geoloc = Some(Geoloc::parse(c)?);
            } else if c.is("online", ns) {
                push_bounded(&mut loc.online, OnlineLocation::parse(c, ns)?, "online")?;
            } else {
                push_bounded(&mut loc.other, detached(c), "location")?;
            }
        }
        Ok(loc)
    }

    fn to_element(&self, ns: &str) -> Element {
        let mut el = Element::builder("location", ns)
            .a_opt("id", self.id.clone())
            .build();
        set_lang(&mut el, self.lang.as_deref());
        if let Some(g) = &self.geoloc {
            let mut g = g.to_element();
            set_lang(&mut g, self.geoloc_lang.as_deref());
            el.append_child(g);
        }
        for o in &self.online {
            el.append_child(o.to_element(ns));
        }
        for o in &self.other {
            el.append_child(o.clone());
        }
        el
    }
}

/// An `<rsvp/>` form of the event: what invitees answer (in one language).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RsvpForm {
    /// `xml:lang`: the language of the labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// The XEP-0004 form (`type='form'`, `FORM_TYPE` `urn:xmpp:calendar-events:rsvp:0`).
    pub form: DataForm,
}

impl RsvpForm {
    /// The usual RSVP form: a required `attending` list-single with `maybe`, `yes` and `no`.
    pub fn standard(ns: EventNamespace) -> Self {
        let mut form = DataForm::with_form_type(FormType::Form, ns.rsvp_form_type());
        let option = |v: &str| FieldOption {
            label: Some(v.to_owned()),
            value: v.to_owned(),
        };
        form.fields.push(Field {
            var: Some("attending".to_owned()),
            kind: Some("list-single".to_owned()),
            label: Some("Attending".to_owned()),
            required: true,
            options: vec![option("maybe"), option("yes"), option("no")],
            ..Field::default()
        });
        RsvpForm { lang: None, form }
    }

    /// The same form with a `participants_number` field (people coming, including the one answering).
    pub fn with_participants_number(mut self, label: impl Into<String>) -> Self {
        self.form.fields.push(Field {
            var: Some(super::rsvp::PARTICIPANTS_FIELD.to_owned()),
            label: Some(label.into()),
            values: vec!["1".to_owned()],
            ..Field::default()
        });
        self
    }

    /// The same form with another field (its `var` should be in Clark notation, `{ns}name`).
    pub fn with_field(mut self, field: Field) -> Self {
        self.form.fields.push(field);
        self
    }

    fn parse(el: &Element) -> Result<Self, ParseError> {
        let x = el
            .children()
            .find(|c| c.is("x", NS_DATA))
            .ok_or(ParseError::MissingChild {
                element: "rsvp",
                child: "x",
            })?;
        Ok(RsvpForm {
            lang: lang_of(el),
            form: DataForm::parse(x)?,
        })
    }

    fn to_element(&self, ns: &str) -> Element {
        let mut el = Element::bare("rsvp", ns);
        set_lang(&mut el, self.lang.as_deref());
        el.append_child(self.form.to_element());
        el
    }
}

/// A XEP-0447 `<file-sharing xmlns='urn:xmpp:sfs:0'/>` (head picture or attachment), kept whole, with
/// accessors for the XEP-0446 metadata and XEP-0103 URLs.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSharing(Element);

impl FileSharing {
    /// Wraps a `<file-sharing/>` element.
    pub fn from_element(el: &Element) -> Result<Self, ParseError> {
        crate::xml::expect_element(el, NS_SFS, "file-sharing")?;
        Ok(FileSharing(detached(el)))
    }

    /// A file reachable at `url`, shown inline.
    pub fn from_url(url: &str, name: Option<&str>, media_type: Option<&str>) -> Self {
        let mut file = Element::bare("file", NS_FILE_METADATA);
        if let Some(m) = media_type {
            file.append_child(text_element("media-type", NS_FILE_METADATA, m));
        }
        if let Some(n) = name {
            file.append_child(text_element("name", NS_FILE_METADATA, n));
        }
        let sources = Element::builder("sources", NS_SFS)
            .append(
                Element::builder("url-data", NS_URL_DATA)
                    .a("target", url)
                    .build(),
            )
            .build();
        FileSharing(
            Element::builder("file-sharing", NS_SFS)
                .a("disposition", "inline")
                .append(file)
                .append(sources)
                .build(),
        )
    }

    /// The `<file-sharing/>` element.
    pub fn element(&self) -> &Element {
        &self.0
    }

    fn file_child(&self, name: &str) -> Option<String> {
        self.0
            .get_child("file", NS_FILE_METADATA)
            .and_then(|f| f.get_child(name, NS_FILE_METADATA))
            .map(|c| c.text().trim().to_owned())
    }

    /// The file name.
    pub fn name(&self) -> Option<String> {
        self.file_child("name")
    }

    /// The media type.
    pub fn media_type(&self) -> Option<String> {
        self.file_child("media-type")
    }

    /// The size in bytes, when given and numeric.
    pub fn size(&self) -> Option<u64> {
        self.file_child("size").and_then(|s| s.parse().ok())
    }

    /// The description.
    pub fn desc(&self) -> Option<String> {
        self.file_child("desc")
    }

    /// The URLs of the `<url-data/>` sources.
    pub fn urls(&self) -> Vec<String> {
        self.0
            .get_child("sources", NS_SFS)
            .map(|s| {
                s.children()
                    .filter(|c| c.is("url-data", NS_URL_DATA))
                    .filter_map(|c| c.attr("target").map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Serialize for FileSharing {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Json<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            media_type: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            size: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            desc: Option<String>,
            urls: Vec<String>,
            xml: XmlText<'a>,
        }
        Json {
            name: self.name(),
            media_type: self.media_type(),
            size: self.size(),
            desc: self.desc(),
            urls: self.urls(),
            xml: XmlText(&self.0),
        }
        .serialize(s)
    }
}

/// The `status` extra field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventStatus {
    /// The event will happen.
    Confirmed,
    /// The event may happen.
    Tentative,
    /// The event will not happen.
    Cancelled,
    /// Another value, kept as written.
    Other(String),
}

impl EventStatus {
    /// The protocol value.
    pub fn as_str(&self) -> &str {
        match self {
            EventStatus::Confirmed => "confirmed",
            EventStatus::Tentative => "tentative",
            EventStatus::Cancelled => "cancelled",
            EventStatus::Other(s) => s,
        }
    }

    /// Reads a protocol value.
    pub fn from_protocol(s: &str) -> Self {
        match s {
            "confirmed" => EventStatus::Confirmed,
            "tentative" => EventStatus::Tentative,
            "cancelled" => EventStatus::Cancelled,
            other => EventStatus::Other(other.to_owned()),
        }
    }
}

impl Serialize for EventStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The `accessibility:wheelchair` extra field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wheelchair {
    /// Fully accessible.
    Full,
    /// Some zones are hard to reach.
    Partial,
    /// Not adapted.
    No,
    /// Another value, kept as written.
    Other(String),
}

impl Wheelchair {
    /// The protocol value.
    pub fn as_str(&self) -> &str {
        match self {
            Wheelchair::Full => "full",
            Wheelchair::Partial => "partial",
            Wheelchair::No => "no",
            Wheelchair::Other(s) => s,
        }
    }

    /// Reads a protocol value.
    pub fn from_protocol(s: &str) -> Self {
        match s {
            "full" => Wheelchair::Full,
            "partial" => Wheelchair::Partial,
            "no" => Wheelchair::No,
            other => Wheelchair::Other(other.to_owned()),
        }
    }
}

impl Serialize for Wheelchair {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The `<extra/>` form: website, status, languages, accessibility and any other field.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EventExtra {
    /// `website`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// `status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<EventStatus>,
    /// `languages`: ISO 639 codes of the main spoken languages.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    /// `accessibility:wheelchair`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wheelchair: Option<Wheelchair>,
    /// Other fields (Clark-notation names), kept as they are.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<Field>,
}

impl EventExtra {
    fn parse(el: &Element) -> Result<Self, ParseError> {
        let x = el
            .children()
            .find(|c| c.is("x", NS_DATA))
            .ok_or(ParseError::MissingChild {
                element: "extra",
                child: "x",
            })?;
        let form = DataForm::parse(x)?;
        let mut extra = EventExtra::default();
        for f in form.fields {
            match f.var.as_deref() {
                Some("FORM_TYPE") => {}
                Some("website") if extra.website.is_none() => {
                    extra.website = f.value().map(str::to_owned)
                }
                Some("status") if extra.status.is_none() => {
                    extra.status = f.value().map(EventStatus::from_protocol)
                }
                Some("languages") if extra.languages.is_empty() => extra.languages = f.values,
                Some("accessibility:wheelchair") if extra.wheelchair.is_none() => {
                    extra.wheelchair = f.value().map(Wheelchair::from_protocol)
                }
                _ => extra.other.push(f),
            }
        }
        Ok(extra)
    }

    fn to_element(&self, ns: EventNamespace) -> Element {
        let mut form = DataForm::with_form_type(FormType::Result, ns.extra_form_type());
        if let Some(w) = &self.website {
            form.fields.push(Field::new("website", w.as_str()));
        }
        if let Some(s) = &self.status {
            form.fields.push(Field::new("status", s.as_str()));
        }
        if !self.languages.is_empty() {
            form.fields
                .push(Field::multi("languages", self.languages.clone()).with_kind("list-multi"));
        }
        if let Some(w) = &self.wheelchair {
            form.fields
                .push(Field::new("accessibility:wheelchair", w.as_str()));
        }
        form.fields.extend(self.other.iter().cloned());
        Element::builder("extra", ns.ns())
            .append(form.to_element())
            .build()
    }
}

/// A XEP-0471 event.
///
/// Parse with `Event::try_from(&element)`, serialise with `Element::from(&event)`. Every child this type
/// does not model is kept in [`Event::other`], so reading then republishing loses nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// The namespace the event is written in.
    pub ns: EventNamespace,
    /// `<name/>`s, one per language (at least one).
    pub names: Vec<LangText>,
    /// `<start/>`.
    #[serde(serialize_with = "ser_date")]
    pub start: DateTime<FixedOffset>,
    /// `<end/>`.
    #[serde(serialize_with = "ser_date")]
    pub end: DateTime<FixedOffset>,
    /// `<head-picture/>`: the main image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_picture: Option<FileSharing>,
    /// `<description/>`s, distinct by type and language.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub descriptions: Vec<Description>,
    /// `<category/>`s.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
    /// `<location/>`s.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    /// `<rsvp/>` forms, one per language.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rsvp: Vec<RsvpForm>,
    /// `<invitees/>`: the node listing invitees.
    #[serde(
        serialize_with = "ser_opt_node",
        skip_serializing_if = "Option::is_none"
    )]
    pub invitees: Option<NodeRef>,
    /// `<comments/>`: a XEP-0277 comments node about the event.
    #[serde(
        serialize_with = "ser_opt_node",
        skip_serializing_if = "Option::is_none"
    )]
    pub comments: Option<NodeRef>,
    /// `<blog/>`: a XEP-0277 blog about the event.
    #[serde(
        serialize_with = "ser_opt_node",
        skip_serializing_if = "Option::is_none"
    )]
    pub blog: Option<NodeRef>,
    /// `<schedule/>`: an events node with the programme.
    #[serde(
        serialize_with = "ser_opt_node",
        skip_serializing_if = "Option::is_none"
    )]
    pub schedule: Option<NodeRef>,
    /// `<attachments/>`: files useful for the event.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<FileSharing>,
    /// `<extra/>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<EventExtra>,
    /// `<external/>`: this event is a link to another one.
    #[serde(
        serialize_with = "ser_opt_item",
        skip_serializing_if = "Option::is_none"
    )]
    pub external: Option<ItemRef>,
    /// Every other child, unchanged.
    #[serde(serialize_with = "ser_elements", skip_serializing_if = "Vec::is_empty")]
    pub other: Vec<Element>,
}

impl Event {
    /// A minimal event (current namespace).
    pub fn new(
        name: impl Into<String>,
        start: DateTime<FixedOffset>,
        end: DateTime<FixedOffset>,
    ) -> Self {
        Event {
            ns: EventNamespace::Current,
            names: vec![LangText::new(name)],
            start,
            end,
            head_picture: None,
            descriptions: Vec::new(),
            categories: Vec::new(),
            locations: Vec::new(),
            rsvp: Vec::new(),
            invitees: None,
            comments: None,
            blog: None,
            schedule: None,
            attachments: Vec::new(),
            extra: None,
            external: None,
            other: Vec::new(),
        }
    }

    /// An entry in one's agenda pointing at someone else's event (`<external/>`), with its name and
    /// times copied so it does not move if the original does.
    pub fn link_to(original: &Event, item: ItemRef) -> Self {
        let mut e = Event::new("", original.start, original.end);
        e.ns = original.ns;
        e.names = original.names.clone();
        e.external = Some(item);
        e
    }

    /// The name in `lang` (else the one without language, else the first).
    pub fn name(&self, lang: Option<&str>) -> Option<&str> {
        pick(&self.names, lang)
    }

    /// The same event with a description.
    pub fn with_description(mut self, description: Description) -> Self {
        self.descriptions.push(description);
        self
    }

    /// The same event with a category.
    pub fn with_category(mut self, category: Category) -> Self {
        self.categories.push(category);
        self
    }

    /// The same event with a location.
    pub fn with_location(mut self, location: Location) -> Self {
        self.locations.push(location);
        self
    }

    /// The same event with an RSVP form.
    pub fn with_rsvp(mut self, rsvp: RsvpForm) -> Self {
        self.rsvp.push(rsvp);
        self
    }

    /// The same event with extra data.
    pub fn with_extra(mut self, extra: EventExtra) -> Self {
        self.extra = Some(extra);
        self
    }

    /// The same event with a head picture.
    pub fn with_head_picture(mut self, picture: FileSharing) -> Self {
        self.head_picture = Some(picture);
        self
    }

    /// The same event written in another namespace (e.g. [`EventNamespace::Legacy`] for Libervia 0.9).
    /// RSVP and extra forms follow.
    pub fn in_namespace(mut self, ns: EventNamespace) -> Self {
        let old = self.ns;
        self.ns = ns;
        for r in &mut self.rsvp {
            if r.form.form_type() == Some(old.rsvp_form_type()) {
                r.form
                    .set("FORM_TYPE", vec![ns.rsvp_form_type().to_owned()]);
            }
        }
        self
    }

    /// The main location (`id='main'`, else the first).
    pub fn main_location(&self) -> Option<&Location> {
        self.locations
            .iter()
            .find(|l| l.id.as_deref() == Some("main"))
            .or_else(|| self.locations.first())
    }

    /// Checks the XEP's MUSTs that a typed value can still break: at least one name, distinct name
    /// languages, distinct description type/language pairs, distinct RSVP languages, distinct location
    /// ids when there are several, and an end that is not before the start.
    pub fn validate(&self) -> Result<(), ParseError> {
        if self.names.is_empty() {
            return Err(ParseError::MissingChild {
                element: "event",
                child: "name",
            });
        }
        distinct(
            self.names.iter().map(|n| n.lang.clone()),
            "name",
            "xml:lang",
        )?;
        distinct(
            self.descriptions
                .iter()
                .map(|d| (d.type_name(), d.lang.clone())),
            "description",
            "type/xml:lang",
        )?;
        distinct(self.rsvp.iter().map(|r| r.lang.clone()), "rsvp", "xml:lang")?;
        if self.locations.len() > 1 {
            distinct(
                self.locations.iter().map(|l| l.id.clone()),
                "location",
                "id",
            )?;
        }
        if self.end < self.start {
            return Err(invalid("event", "<end/> is before <start/>"));
        }
        Ok(())
    }
}

fn distinct<T: PartialEq>(
    values: impl Iterator<Item = T>,
    element: &'static str,
    what: &str,
) -> Result<(), ParseError> {
    let values: Vec<T> = values.collect();
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(invalid(
                element,
                format!("several <{element}/> with the same {what}"),
            ));
        }
    }
    Ok(())
}

fn node_link(el: &Element, element: &'static str) -> Result<NodeRef, ParseError> {
    let service = parse_jid(element, required_attr(el, element, "jid")?)?;
    Ok(NodeRef::new(service, required_attr(el, element, "node")?))
}

fn node_link_element(name: &str, ns: &str, n: &NodeRef) -> Element {
    Element::builder(name, ns)
        .a("jid", n.service.to_string())
        .a("node", n.node.as_str())
        .build()
}

fn set_once<T>(slot: &mut Option<T>, value: T, element: &'static str) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(invalid(element, format!("several <{element}/> elements")));
    }
    *slot = Some(value);
    Ok(())
}

impl TryFrom<&Element> for Event {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Self, ParseError> {
        let ns_str = el.ns();
        let ns = match EventNamespace::from_ns(&ns_str) {
            Some(ns) if el.name() == "event" => ns,
            _ => {
                return Err(ParseError::WrongElement {
                    expected: format!("{{{NS_CALENDAR_EVENTS}}}event"),
                    found: crate::xml::qname(el),
                })
            }
        };
        let nsv = ns.ns();
        check_limits(el, "event nesting")?;
        let mut names = Vec::new();
        let mut start = None;
        let mut end = None;
        // Placeholder times, replaced by the required <start/> and <end/> below.
        let epoch = DateTime::UNIX_EPOCH.fixed_offset();
        let mut ev = Event::new("", epoch, epoch);
        ev.ns = ns;
        ev.names.clear();
        for c in el.children() {
            if !c.has_ns(nsv) {
                push_bounded(&mut ev.other, detached(c), "event")?;
                continue;
            }
            match c.name() {
                "name" => push_bounded(&mut names, LangText::parse(c, "name")?, "names")?,
                "start" => set_once(&mut start, parse_date(&c.text(), "start")?, "start")?,
                "end" => set_once(&mut end, parse_date(&c.text(), "end")?, "end")?,
                "head-picture" => {
                    let fs =
                        c.get_child("file-sharing", NS_SFS)
                            .ok_or(ParseError::MissingChild {
                                element: "head-picture",
                                child: "file-sharing",
                            })?;
                    set_once(
                        &mut ev.head_picture,
                        FileSharing::from_element(fs)?,
                        "head-picture",
                    )?;
                }
                "description" => {
                    push_bounded(&mut ev.descriptions, Description::parse(c)?, "descriptions")?
                }
                "category" => push_bounded(&mut ev.categories, Category::parse(c)?, "categories")?,
                "location" => {
                    push_bounded(&mut ev.locations, Location::parse(c, nsv)?, "locations")?
                }
                "rsvp" => push_bounded(&mut ev.rsvp, RsvpForm::parse(c)?, "rsvp")?,
                "invitees" => set_once(&mut ev.invitees, node_link(c, "invitees")?, "invitees")?,
                "comments" => set_once(&mut ev.comments, node_link(c, "comments")?, "comments")?,
                "blog" => set_once(&mut ev.blog, node_link(c, "blog")?, "blog")?,
                "schedule" => set_once(&mut ev.schedule, node_link(c, "schedule")?, "schedule")?,
                "attachments" => {
                    for f in c.children().filter(|f| f.is("file-sharing", NS_SFS)) {
                        push_bounded(
                            &mut ev.attachments,
                            FileSharing::from_element(f)?,
                            "attachments",
                        )?;
                    }
                }
                "extra" => set_once(&mut ev.extra, EventExtra::parse(c)?, "extra")?,
                "external" => {
                    let service = parse_jid("external", required_attr(c, "external", "jid")?)?;
                    let item = ItemRef::new(
                        service,
                        required_attr(c, "external", "node")?,
                        required_attr(c, "external", "item")?,
                    );
                    set_once(&mut ev.external, item, "external")?;
                }
                _ => push_bounded(&mut ev.other, detached(c), "event")?,
            }
        }
        ev.names = names;
        ev.start = start.ok_or(ParseError::MissingChild {
            element: "event",
            child: "start",
        })?;
        ev.end = end.ok_or(ParseError::MissingChild {
            element: "event",
            child: "end",
        })?;
        if ev.names.is_empty() {
            return Err(ParseError::MissingChild {
                element: "event",
                child: "name",
            });
        }
        distinct(ev.names.iter().map(|n| n.lang.clone()), "name", "xml:lang")?;
        distinct(
            ev.descriptions
                .iter()
                .map(|d| (d.type_name(), d.lang.clone())),
            "description",
            "type/xml:lang",
        )?;
        distinct(ev.rsvp.iter().map(|r| r.lang.clone()), "rsvp", "xml:lang")?;
        if ev.locations.len() > 1 {
            distinct(ev.locations.iter().map(|l| l.id.clone()), "location", "id")?;
        }
        Ok(ev)
    }
}

impl TryFrom<Element> for Event {
    type Error = ParseError;

    fn try_from(el: Element) -> Result<Self, ParseError> {
        Event::try_from(&el)
    }
}

impl std::str::FromStr for Event {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let el = crate::xml::parse_bounded(s, crate::xml::DEFAULT_MAX_XML_BYTES)?;
        Event::try_from(&el)
    }
}

impl From<&Event> for Element {
    fn from(ev: &Event) -> Element {
        let ns = ev.ns.ns();
        let mut root = Element::bare("event", ns);
        for n in &ev.names {
            root.append_child(n.to_element("name", ns));
        }
        root.append_child(text_element("start", ns, &format_date(&ev.start)));
        root.append_child(text_element("end", ns, &format_date(&ev.end)));
        if let Some(p) = &ev.head_picture {
            root.append_child(
                Element::builder("head-picture", ns)
                    .append(p.element().clone())
                    .build(),
            );
        }
        for d in &ev.descriptions {
            root.append_child(d.to_element(ns));
        }
        for c in &ev.categories {
            root.append_child(c.to_element(ns));
        }
        for l in &ev.locations {
            root.append_child(l.to_element(ns));
        }
        for r in &ev.rsvp {
            root.append_child(r.to_element(ns));
        }
        let links = [
            ("invitees", &ev.invitees),
            ("comments", &ev.comments),
            ("blog", &ev.blog),
            ("schedule", &ev.schedule),
        ];
        for (name, link) in links {
            if let Some(n) = link {
                root.append_child(node_link_element(name, ns, n));
            }
        }
        if !ev.attachments.is_empty() {
            root.append_child(
                Element::builder("attachments", ns)
                    .append_all(ev.attachments.iter().map(|a| a.element().clone()))
                    .build(),
            );
        }
        if let Some(x) = &ev.extra {
            root.append_child(x.to_element(ev.ns));
        }
        if let Some(x) = &ev.external {
            root.append_child(
                Element::builder("external", ns)
                    .a("jid", x.service.to_string())
                    .a("node", x.node.as_str())
                    .a("item", x.item.as_str())
                    .build(),
            );
        }
        for o in &ev.other {
            root.append_child(o.clone());
        }
        root
    }
}

impl From<Event> for Element {
    fn from(ev: Event) -> Element {
        Element::from(&ev)
    }
}

/// An `<invitee/>` item of an invitees node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invitee {
    /// The invitee.
    #[serde(serialize_with = "crate::util::ser_jid")]
    pub jid: Jid,
    /// A human-readable name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Invitee {
    /// Reads `<invitee/>` in either namespace.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        if el.name() != "invitee" || EventNamespace::from_ns(&el.ns()).is_none() {
            return Err(ParseError::WrongElement {
                expected: format!("{{{NS_CALENDAR_EVENTS}}}invitee"),
                found: crate::xml::qname(el),
            });
        }
        check_limits(el, "invitee nesting")?;
        Ok(Invitee {
            jid: parse_jid("invitee@jid", required_attr(el, "invitee", "jid")?)?,
            name: el.attr("name").map(str::to_owned),
        })
    }

    /// The `<invitee/>` element in a namespace.
    pub fn to_element(&self, ns: EventNamespace) -> Element {
        Element::builder("invitee", ns.ns())
            .a("jid", self.jid.to_string())
            .a_opt("name", self.name.clone())
            .build()
    }
}
