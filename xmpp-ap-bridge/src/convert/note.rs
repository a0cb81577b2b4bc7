//! XEP-0277 entries <-> `Note`/`Article`, wrapped in `Create`/`Update`; retractions <-> `Delete`
//! (`Tombstone`); replies (`thr:in-reply-to`, comments nodes) <-> `inReplyTo`; enclosures <->
//! attachments; repeats (`rel='via'`) <-> `Announce`.
//!
//! Outgoing, an entry becomes a `Note` when it is a microblog post (no title, or a title that is its
//! text, as XEP-0277 writes them) and an `Article` with `name` when it has a title of its own and a
//! body. Incoming, a `Note` becomes an entry whose title is the text (XEP-0277's convention) and which
//! carries the sanitised XHTML only when there is markup (links, mentions, emphasis); an object with
//! a `name` keeps it as the title and its body as text and XHTML contents.

use chrono::{DateTime, FixedOffset};
use minidom::Element;
use xmpp_social::microblog::{
    Entry, Geoloc, InReplyTo, ItemRef, Link, NodeRef, Person, Text, XmppUri, COMMENTS_NODE_PREFIX,
};

use super::content::{
    html_to_plain, html_to_xhtml, language_map, pick_language, plain_to_html, text_to_html,
    xml_safe, MAX_HTML_BYTES,
};
use super::tags::{
    categories_to_hashtags, entry_references, hashtags_to_categories, mentions_to_references,
    references_to_mentions,
};
use super::{ConvertError, Incoming, IncomingPost, UrlScheme};
use crate::vocab::{
    Activity, ActivityKind, AnyObject, Attachment, AttachmentKind, Object, ObjectKind, ObjectRef,
    Place, Tombstone, PUBLIC,
};

/// Most attachments converted from one object.
pub const MAX_ATTACHMENTS: usize = 16;

/// How outgoing objects are addressed and flagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteOptions {
    /// Address to the public collection (`to`) and the followers (`cc`); otherwise to the followers
    /// only (`to`). Entries of nodes that are not open should not be federated at all.
    pub public: bool,
    /// Mark as sensitive (media hidden by default).
    pub sensitive: bool,
}

impl Default for NoteOptions {
    fn default() -> Self {
        NoteOptions {
            public: true,
            sensitive: false,
        }
    }
}

fn is_http(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

fn is_comments_node(node: &str) -> bool {
    node.starts_with(COMMENTS_NODE_PREFIX)
}

/// The actor publishing `entry` at `item`: the blog's actor, or for a comment the author's.
fn publishing_actor<S: UrlScheme + ?Sized>(
    entry: &Entry,
    item: &ItemRef,
    scheme: &S,
) -> Result<String, ConvertError> {
    if is_comments_node(&item.node) {
        let author = entry
            .authors
            .iter()
            .find_map(Person::jid)
            .ok_or(ConvertError::Missing("comment author JID"))?;
        Ok(scheme.actor_for_jid(&author.to_bare()))
    } else {
        Ok(scheme.actor_for_node(&NodeRef::new(item.service.clone(), item.node.clone())))
    }
}

/// Whether the title only repeats the body (XEP-0277 microblog posts put the text in the title).
fn title_is_redundant(title: &str, body: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let (t, b) = (norm(title), norm(body));
    t.is_empty() || b.starts_with(&t)
}

fn audience<S: UrlScheme + ?Sized>(
    actor: &str,
    opts: &NoteOptions,
    scheme: &S,
    extra_cc: impl IntoIterator<Item = String>,
) -> (Vec<String>, Vec<String>) {
    let followers = scheme.followers_url(actor);
    let (to, mut cc) = if opts.public {
        (vec![PUBLIC.to_owned()], vec![followers])
    } else {
        (vec![followers], Vec::new())
    };
    for a in extra_cc {
        if !cc.contains(&a) && !to.contains(&a) {
            cc.push(a);
        }
    }
    (to, cc)
}

fn geoloc_to_place(g: &Geoloc) -> Option<Place> {
    if g.lat.is_none() && g.lon.is_none() && g.text.is_none() && g.description.is_none() {
        return None;
    }
    let mut p = Place::named(
        g.text
            .clone()
            .or_else(|| g.description.clone())
            .or_else(|| g.locality.clone())
            .unwrap_or_default(),
    );
    if p.name.as_deref() == Some("") {
        p.name = None;
    }
    p.latitude = g.lat;
    p.longitude = g.lon;
    Some(p)
}

fn place_to_geoloc(p: &Place) -> Option<Geoloc> {
    let valid_lat = p.latitude.filter(|l| (-90.0..=90.0).contains(l));
    let valid_lon = p.longitude.filter(|l| (-180.0..=180.0).contains(l));
    let text = p.name.as_deref().map(xml_safe).filter(|s| !s.is_empty());
    if valid_lat.is_none() && valid_lon.is_none() && text.is_none() {
        return None;
    }
    let mut g = match (valid_lat, valid_lon) {
        (Some(lat), Some(lon)) => Geoloc::at(lat, lon),
        _ => Geoloc::default(),
    };
    g.text = text;
    Some(g)
}

/// The `inReplyTo` of an outgoing entry: its `thr:in-reply-to` (an `xmpp:` item mapped by the
/// scheme, or an http(s) URL), else the item its comments node belongs to.
fn outgoing_in_reply_to<S: UrlScheme + ?Sized>(
    entry: &Entry,
    item: &ItemRef,
    scheme: &S,
) -> Option<String> {
    for reply in &entry.in_reply_to {
        if let Some(parent) = reply.item() {
            return Some(scheme.object_url(&parent));
        }
        for candidate in [reply.href.as_deref(), Some(reply.reference.as_str())]
            .into_iter()
            .flatten()
        {
            if is_http(candidate) {
                return Some(candidate.to_owned());
            }
            if let Ok(uri) = XmppUri::parse(candidate) {
                if let Some(parent) = uri.item_ref() {
                    return Some(scheme.object_url(&parent));
                }
            }
        }
    }
    if is_comments_node(&item.node) {
        let node = NodeRef::new(item.service.clone(), item.node.clone());
        return scheme
            .parent_of_comments_node(&node)
            .map(|p| scheme.object_url(&p));
    }
    None
}

fn enclosure_to_attachment(link: &Link) -> Option<Attachment> {
    if !is_http(&link.href) {
        return None;
    }
    Some(Attachment {
        kind: AttachmentKind::Document,
        url: Some(link.href.clone()),
        href: None,
        media_type: link.media_type.clone(),
        name: link.title.clone(),
        value: None,
        width: None,
        height: None,
        blurhash: None,
    })
}

fn attachment_to_enclosure(a: &Attachment) -> Option<Link> {
    if matches!(a.kind, AttachmentKind::PropertyValue) {
        return None;
    }
    let url = a.location().filter(|u| is_http(u))?;
    let mut link = Link::enclosure(xml_safe(url), a.media_type.as_deref().map(xml_safe), None);
    link.title = a.name.as_deref().map(xml_safe).filter(|s| !s.is_empty());
    Some(link)
}

/// The object for an entry published at `item` (see the module documentation for Note vs Article).
pub fn entry_to_note<S: UrlScheme + ?Sized>(
    entry: &Entry,
    item: &ItemRef,
    scheme: &S,
    opts: &NoteOptions,
) -> Result<Object, ConvertError> {
    let actor = publishing_actor(entry, item, scheme)?;
    let title = entry.title_text().unwrap_or_default();
    let body_text = entry.body_text().unwrap_or_default();
    // The body: XHTML first, then HTML, then text; a title-only post has its title as body.
    let body = entry
        .body_xhtml()
        .map(|x| Text::Xhtml(x.clone()))
        .or_else(|| {
            entry
                .content
                .iter()
                .find(|c| matches!(c, Text::Html(_)))
                .cloned()
        })
        .or_else(|| entry.content.first().cloned());
    let (kind, name, html) = match body {
        Some(b) if !title_is_redundant(&title, &body_text) => {
            (ObjectKind::Article, Some(title.clone()), text_to_html(&b)?)
        }
        Some(b) => (ObjectKind::Note, None, text_to_html(&b)?),
        None => (ObjectKind::Note, None, plain_to_html(&title)),
    };
    let mut note = Object::new(kind);
    note.id = Some(scheme.object_url(item));
    note.attributed_to = vec![actor.clone()];
    note.name_map = language_map(entry.language.as_deref(), name.as_deref().unwrap_or(""));
    if name.is_none() {
        note.name_map.clear();
    }
    note.name = name;
    note.content_map = language_map(entry.language.as_deref(), &html);
    note.content = Some(html);
    if let Some(summary) = &entry.summary {
        note.summary = Some(text_to_html(summary)?);
    }
    note.published = entry.published.or(entry.updated);
    note.updated = entry
        .updated
        .filter(|u| entry.published.is_some_and(|p| u > &p));
    let mentions = references_to_mentions(&entry_references(entry), scheme);
    let mentioned: Vec<String> = mentions.iter().filter_map(|t| t.href.clone()).collect();
    (note.to, note.cc) = audience(&actor, opts, scheme, mentioned);
    note.tag = categories_to_hashtags(&entry.categories);
    note.tag.extend(mentions);
    note.attachment = entry
        .enclosures()
        .filter_map(enclosure_to_attachment)
        .take(MAX_ATTACHMENTS)
        .collect();
    note.in_reply_to = outgoing_in_reply_to(entry, item, scheme);
    note.url = entry
        .links
        .iter()
        .filter(|l| l.rel_or_default() == "alternate" && is_http(&l.href))
        .map(|l| l.href.clone())
        .take(1)
        .collect();
    note.location = entry.geoloc.as_ref().and_then(geoloc_to_place);
    if opts.sensitive {
        note.sensitive = Some(true);
    }
    Ok(note)
}

/// The activity for an entry published at `item`: `Announce` for a repeat (see
/// [`repeat_to_announce`]), else `Create` (or `Update` when `update`) of [`entry_to_note`].
pub fn entry_to_activity<S: UrlScheme + ?Sized>(
    entry: &Entry,
    item: &ItemRef,
    scheme: &S,
    opts: &NoteOptions,
    update: bool,
) -> Result<Activity, ConvertError> {
    if entry.via_link().is_some() {
        return repeat_to_announce(entry, item, scheme, opts);
    }
    let note = entry_to_note(entry, item, scheme, opts)?;
    let object_id = note.id.clone().unwrap_or_default();
    let actor = note.attributed_to.first().cloned().unwrap_or_default();
    let (kind, salt) = if update {
        let when = note.updated.or(note.published).map(|d| d.to_rfc3339());
        (ActivityKind::Update, when.unwrap_or_default())
    } else {
        (ActivityKind::Create, String::new())
    };
    let id = scheme.activity_id(
        &kind.as_str().to_ascii_lowercase(),
        &object_id,
        &actor,
        &salt,
    );
    let mut activity = Activity::new(kind, Some(id), actor, None);
    activity.to = note.to.clone();
    activity.cc = note.cc.clone();
    activity.published = if update { note.updated } else { note.published };
    activity.object = Some(ObjectRef::embed(AnyObject::Object(Box::new(note))));
    Ok(activity)
}

/// The `Delete` of a retracted item, by `actor` (the actor that published it).
pub fn delete_activity<S: UrlScheme + ?Sized>(
    item: &ItemRef,
    actor: &str,
    scheme: &S,
    opts: &NoteOptions,
) -> Activity {
    let object = scheme.object_url(item);
    let id = scheme.activity_id("delete", &object, actor, "");
    let mut activity = Activity::new(
        ActivityKind::Delete,
        Some(id),
        actor,
        Some(ObjectRef::embed(AnyObject::Tombstone(Tombstone::of(
            object, None,
        )))),
    );
    (activity.to, activity.cc) = audience(actor, opts, scheme, []);
    activity
}

/// The object a repeat points at: its `rel='via'` link as an `xmpp:` item mapped by the scheme, or
/// an http(s) URL.
fn repeated_object<S: UrlScheme + ?Sized>(entry: &Entry, scheme: &S) -> Option<String> {
    if let Some(original) = entry.repeated_item() {
        return Some(scheme.object_url(&original));
    }
    let via = entry.via_link()?;
    if is_http(&via.href) {
        return Some(via.href.clone());
    }
    via.reference
        .as_deref()
        .filter(|r| is_http(r))
        .map(str::to_owned)
}

/// The `Announce` of a XEP-0277 repeat published at `item` (a `rel='via'` link to the original).
pub fn repeat_to_announce<S: UrlScheme + ?Sized>(
    entry: &Entry,
    item: &ItemRef,
    scheme: &S,
    opts: &NoteOptions,
) -> Result<Activity, ConvertError> {
    let object = repeated_object(entry, scheme).ok_or(ConvertError::Missing(
        "repeat link (rel='via' to an xmpp: item or an http(s) URL)",
    ))?;
    let actor = scheme.actor_for_node(&NodeRef::new(item.service.clone(), item.node.clone()));
    let id = scheme.activity_id("announce", &object, &actor, &item.item);
    // The original author is told (cc), as Mastodon does.
    let original_author = entry
        .authors
        .iter()
        .find_map(Person::jid)
        .map(|j| scheme.actor_for_jid(&j.to_bare()))
        .filter(|a| a != &actor);
    let mut activity = Activity::new(
        ActivityKind::Announce,
        Some(id),
        actor.clone(),
        Some(ObjectRef::Id(object)),
    );
    (activity.to, activity.cc) = audience(&actor, opts, scheme, original_author);
    activity.published = entry.updated.or(entry.published);
    Ok(activity)
}

/// The `Undo(Announce)` of a retracted repeat (the same `Announce` [`repeat_to_announce`] made).
pub fn unrepeat_activity<S: UrlScheme + ?Sized>(
    entry: &Entry,
    item: &ItemRef,
    scheme: &S,
    opts: &NoteOptions,
) -> Result<Activity, ConvertError> {
    let announce = repeat_to_announce(entry, item, scheme, opts)?;
    let actor = announce.actor.clone();
    let id = scheme.activity_id(
        "undo",
        announce.id.as_deref().unwrap_or_default(),
        &actor,
        "",
    );
    let mut undo = Activity::new(ActivityKind::Undo, Some(id), actor, None);
    undo.to = announce.to.clone();
    undo.cc = announce.cc.clone();
    undo.object = Some(ObjectRef::embed(AnyObject::Activity(Box::new(announce))));
    Ok(undo)
}

/// One page of an outbox (XEP-0059 pages of a blog node map to outbox pages): the `Create` (or
/// `Announce`, for repeats) of each entry, in the order given, as an `OrderedCollectionPage` with
/// id `page_id`, `partOf` `outbox` and the caller's `next`/`prev` page ids (made from RSM cursors).
/// Entries that cannot be converted are skipped.
pub fn outbox_page<S: UrlScheme + ?Sized>(
    outbox: &str,
    page_id: &str,
    entries: &[(ItemRef, Entry)],
    next: Option<String>,
    prev: Option<String>,
    scheme: &S,
    opts: &NoteOptions,
) -> crate::vocab::Collection {
    use crate::vocab::{Collection, CollectionKind};
    let mut page = Collection::new(
        CollectionKind::OrderedCollectionPage,
        Some(page_id.to_owned()),
    );
    page.part_of = Some(outbox.to_owned());
    page.next = next;
    page.prev = prev;
    page.ordered_items = entries
        .iter()
        .filter_map(|(item, entry)| entry_to_activity(entry, item, scheme, opts, false).ok())
        .map(|a| ObjectRef::embed(AnyObject::Activity(Box::new(a))))
        .collect();
    page
}

// ---------------------------------------------------------------------------------------------
// Incoming
// ---------------------------------------------------------------------------------------------

fn clamp_date(d: Option<DateTime<FixedOffset>>) -> Option<DateTime<FixedOffset>> {
    // XEP-0082 dates are four-digit years.
    d.filter(|d| {
        let y = chrono::Datelike::year(d);
        (1..=9999).contains(&y)
    })
}

/// The entry for an incoming object (`Note`, `Article`, `Page`, `Question`, `Event`...).
///
/// The author is mapped to an `xmpp:` URI when the scheme knows the actor (otherwise its id is kept);
/// `atom:id` is the object's id; the HTML is sanitised; every string is cleaned of characters XML
/// cannot carry.
pub fn note_to_entry<S: UrlScheme + ?Sized>(
    note: &Object,
    scheme: &S,
) -> Result<Entry, ConvertError> {
    let mut entry = Entry::new();
    entry.id = note.id.as_deref().map(xml_safe);
    // Body and language. A content in another media type than HTML is text.
    let (lang, html) = match (&note.content, pick_language(&note.content_map, None)) {
        (Some(c), _) => {
            let lang = note
                .content_map
                .iter()
                .find(|(_, v)| *v == c)
                .map(|(k, _)| k.as_str())
                .filter(|k| *k != "und");
            (lang, Some(c.as_str()))
        }
        (None, Some((lang, c))) => (lang, Some(c)),
        (None, None) => (None, None),
    };
    if let Some(h) = html {
        if h.len() > MAX_HTML_BYTES {
            return Err(ConvertError::TooLarge {
                what: "content",
                size: h.len(),
                limit: MAX_HTML_BYTES,
            });
        }
    }
    entry.language = lang.map(xml_safe);
    let is_html = note
        .media_type
        .as_deref()
        .is_none_or(|m| m.trim().eq_ignore_ascii_case("text/html"));
    let (plain, xhtml) = match html {
        Some(h) if is_html => {
            let plain = html_to_plain(h)?;
            // Markup worth keeping: anything else than paragraphs and line breaks.
            let xhtml = html_to_xhtml(h)
                .ok()
                .filter(|x| has_rich_markup(x.element()));
            (plain, xhtml)
        }
        Some(t) => (xml_safe(t), None),
        None => (String::new(), None),
    };
    let name = note
        .name
        .as_deref()
        .or_else(|| pick_language(&note.name_map, lang).map(|(_, n)| n))
        .map(|n| xml_safe(n.trim()))
        .filter(|n| !n.is_empty());
    match name {
        Some(title) => {
            entry.title = Some(Text::Plain(title));
            if !plain.is_empty() {
                entry.content.push(Text::Plain(plain));
            }
            if let Some(x) = html.filter(|_| is_html).and_then(|h| html_to_xhtml(h).ok()) {
                entry.content.push(Text::Xhtml(x));
            }
        }
        None => {
            entry.title = Some(Text::Plain(plain.clone()));
            if let Some(x) = xhtml {
                entry.content.push(Text::Plain(plain));
                entry.content.push(Text::Xhtml(x));
            }
        }
    }
    if let Some(summary) = note.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        entry.summary = Some(Text::Plain(html_to_plain(summary)?));
    }
    entry.published = clamp_date(note.published);
    entry.updated = clamp_date(note.updated).or(entry.published);
    if let Some(author) = note.author() {
        let person = match scheme.jid_for_actor(author) {
            Some(jid) => Person::from_jid(&jid.into(), None),
            None => Person {
                uri: Some(xml_safe(author)),
                ..Person::default()
            },
        };
        entry.authors.push(person);
    }
    entry.categories = hashtags_to_categories(&note.tag);
    for c in &mut entry.categories {
        c.term = xml_safe(&c.term);
    }
    entry.categories.retain(|c| !c.term.is_empty());
    for r in mentions_to_references(&note.tag, scheme)? {
        if XmppUri::parse(&r.uri).is_ok() || is_http(&r.uri) {
            let mut r = r;
            r.uri = xml_safe(&r.uri);
            entry.extra.push(r.to_element());
        }
    }
    if let Some(url) = note.url.iter().find(|u| is_http(u)) {
        entry.links.push(Link {
            media_type: Some("text/html".to_owned()),
            ..Link::new("alternate", xml_safe(url))
        });
    }
    entry.links.extend(
        note.attachment
            .iter()
            .filter_map(attachment_to_enclosure)
            .take(MAX_ATTACHMENTS),
    );
    if let Some(parent) = note.in_reply_to.as_deref() {
        let parent = xml_safe(parent);
        let reply = match scheme.item_for_object(&parent) {
            Some(item) => InReplyTo::to_item(&item, Some(parent)),
            None if is_http(&parent) => InReplyTo {
                reference: parent.clone(),
                href: Some(parent),
                media_type: None,
                source: None,
            },
            None => {
                return Err(ConvertError::Invalid {
                    field: "inReplyTo",
                    reason: "not an http(s) URL".into(),
                })
            }
        };
        entry.in_reply_to.push(reply);
    }
    entry.geoloc = note.location.as_ref().and_then(place_to_geoloc);
    // Final guard: the entry must serialise.
    xmpp_social::xml::check_serialisable(&Element::from(&entry))?;
    Ok(entry)
}

fn has_rich_markup(div: &Element) -> bool {
    let mut stack: Vec<&Element> = div.children().collect();
    while let Some(el) = stack.pop() {
        if !matches!(el.name(), "p" | "br") {
            return true;
        }
        stack.extend(el.children());
    }
    false
}

/// The XEP-0277 repeat of an announced object, for the announcer's gateway node: the original's
/// entry with a `rel='via'` link to it (its `xmpp:` item when the scheme maps it, else its URL) and
/// the original id as the link's `ref`.
pub fn repeat_entry<S: UrlScheme + ?Sized>(
    original: &Object,
    scheme: &S,
    announced: Option<DateTime<FixedOffset>>,
) -> Result<Entry, ConvertError> {
    let mut entry = note_to_entry(original, scheme)?;
    let object_id = original
        .id
        .clone()
        .ok_or(ConvertError::Missing("announced object id"))?;
    let href = match scheme.item_for_object(&object_id) {
        Some(item) => item.to_uri().to_string(),
        None if is_http(&object_id) => xml_safe(&object_id),
        None => {
            return Err(ConvertError::Invalid {
                field: "object",
                reason: "announced object id is not an http(s) URL".into(),
            })
        }
    };
    entry.id = None;
    entry
        .links
        .retain(|l| !matches!(l.rel_or_default(), "via" | "self" | "edit"));
    entry.links.push(Link {
        reference: Some(xml_safe(&object_id)),
        ..Link::new("via", href)
    });
    if let Some(when) = clamp_date(announced) {
        entry.updated = Some(when);
    }
    Ok(entry)
}

fn embedded_content_object(activity: &Activity) -> Option<&Object> {
    match activity.embedded_object() {
        Some(AnyObject::Object(o)) => Some(o),
        _ => None,
    }
}

/// `Create`/`Update` of a content object -> [`Incoming::Publish`] / [`Incoming::Republish`].
pub(crate) fn incoming_create<S: UrlScheme + ?Sized>(
    activity: &Activity,
    scheme: &S,
) -> Result<Incoming, ConvertError> {
    let Some(note) = embedded_content_object(activity) else {
        return match activity.embedded_object() {
            Some(other) => Ok(super::unsupported(
                format!("{}/{}", activity.kind.as_str(), other.type_name()),
                "object type not mapped",
            )),
            None => Err(ConvertError::Missing(
                "embedded object (fetch it by id first)",
            )),
        };
    };
    if let ObjectKind::Other(kind) = &note.kind {
        return Ok(super::unsupported(
            format!("{}/{kind}", activity.kind.as_str()),
            "object type not mapped",
        ));
    }
    // The object must be the actor's own.
    if note.author().is_some_and(|a| a != activity.actor) {
        return Err(ConvertError::Invalid {
            field: "attributedTo",
            reason: "the object's author is not the activity's actor".into(),
        });
    }
    let object_id = note
        .id
        .as_deref()
        .ok_or(ConvertError::Missing("object id"))?;
    // An actor only creates or updates objects of its own origin.
    if !super::same_origin(object_id, &activity.actor) {
        return Err(ConvertError::Invalid {
            field: "object id",
            reason: "the object is not on the actor's origin".into(),
        });
    }
    let item = scheme
        .item_for_object(object_id)
        .ok_or_else(|| ConvertError::Unmapped {
            what: "object",
            id: object_id.to_owned(),
        })?;
    let mut entry = note_to_entry(note, scheme)?;
    if entry.authors.is_empty() {
        if let Some(jid) = scheme.jid_for_actor(&activity.actor) {
            entry.authors.push(Person::from_jid(&jid.into(), None));
        }
    }
    let in_reply_to = note
        .in_reply_to
        .as_deref()
        .and_then(|p| scheme.item_for_object(p));
    let node = match in_reply_to.as_ref().and_then(|p| scheme.comments_node(p)) {
        Some(comments) => comments,
        None => scheme
            .node_for_actor(&activity.actor)
            .ok_or_else(|| ConvertError::Unmapped {
                what: "actor",
                id: activity.actor.clone(),
            })?,
    };
    let post = IncomingPost {
        node,
        item_id: item.item,
        entry,
        in_reply_to,
        public: note.is_public(),
        audience: note.to.iter().chain(&note.cc).cloned().collect(),
    };
    Ok(if activity.kind == ActivityKind::Update {
        Incoming::Republish(post)
    } else {
        Incoming::Publish(post)
    })
}

/// `Delete` -> [`Incoming::Retract`] or, for an actor deleting itself, [`Incoming::DeleteActor`].
pub(crate) fn incoming_delete<S: UrlScheme + ?Sized>(
    activity: &Activity,
    scheme: &S,
) -> Result<Incoming, ConvertError> {
    let object = activity
        .object_id()
        .ok_or(ConvertError::Missing("Delete object id"))?;
    if object == activity.actor {
        return Ok(Incoming::DeleteActor {
            actor: activity.actor.clone(),
        });
    }
    // An actor only deletes objects of its own origin.
    if !super::same_origin(object, &activity.actor) {
        return Err(ConvertError::Invalid {
            field: "object id",
            reason: "the deleted object is not on the actor's origin".into(),
        });
    }
    let item = scheme
        .item_for_object(object)
        .ok_or_else(|| ConvertError::Unmapped {
            what: "object",
            id: object.to_owned(),
        })?;
    Ok(Incoming::Retract { item })
}

/// A stable item id for the repeat an `Announce` becomes (FNV-1a of the activity id: only the
/// announcer's own ids share its node).
pub fn announce_item_id(announce_id: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in announce_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("announce-{h:016x}")
}

/// `Announce` -> [`Incoming::Repeat`] (the repeat entry is built when the object is embedded).
pub fn announce_to_repeat<S: UrlScheme + ?Sized>(
    activity: &Activity,
    scheme: &S,
) -> Result<Incoming, ConvertError> {
    let object = activity
        .object_id()
        .ok_or(ConvertError::Missing("Announce object id"))?
        .to_owned();
    let announce_id = activity
        .id
        .as_deref()
        .ok_or(ConvertError::Missing("Announce id"))?;
    let node = scheme
        .node_for_actor(&activity.actor)
        .ok_or_else(|| ConvertError::Unmapped {
            what: "actor",
            id: activity.actor.clone(),
        })?;
    let entry = match embedded_content_object(activity) {
        Some(o) => Some(Box::new(repeat_entry(o, scheme, activity.published)?)),
        None => None,
    };
    Ok(Incoming::Repeat {
        node,
        item_id: announce_item_id(announce_id),
        object_item: scheme.item_for_object(&object),
        object,
        entry,
    })
}

pub(crate) fn incoming_announce<S: UrlScheme + ?Sized>(
    activity: &Activity,
    scheme: &S,
) -> Result<Incoming, ConvertError> {
    announce_to_repeat(activity, scheme)
}

/// `Undo(Announce)` -> [`Incoming::Unrepeat`].
pub(crate) fn incoming_unannounce<S: UrlScheme + ?Sized>(
    announce: &Activity,
    scheme: &S,
) -> Result<Incoming, ConvertError> {
    let announce_id = announce
        .id
        .as_deref()
        .ok_or(ConvertError::Missing("Announce id"))?;
    let node = scheme
        .node_for_actor(&announce.actor)
        .ok_or_else(|| ConvertError::Unmapped {
            what: "actor",
            id: announce.actor.clone(),
        })?;
    Ok(Incoming::Unrepeat {
        node,
        item_id: announce_item_id(announce_id),
    })
}

#[cfg(test)]
#[path = "note_tests.rs"]
mod tests;
