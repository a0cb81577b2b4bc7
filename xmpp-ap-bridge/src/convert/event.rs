//! XEP-0471 events <-> Mobilizon-style `Event` objects; RSVPs <-> `Join` / `Leave` (answered by
//! `Accept` / `Reject`).
//!
//! Mapped: names (`name`/`nameMap`), descriptions (`content`/`contentMap`, XHTML <-> sanitised
//! HTML), start and end, the main location (XEP-0080 geoloc <-> `Place` with `PostalAddress`),
//! online-only events (`isOnline`), categories (<-> `Hashtag`s, Mobilizon's `category`), status
//! (`<extra/>` status <-> `ical:status`), languages (<-> `inLanguage`), the head picture (<-> an
//! `Image` attachment). RSVP `yes`/`maybe` is a `Join`, `no` a `Leave`; Mobilizon's `joinMode` is
//! `free` for the events the gateway federates (invitation-only nodes should not be federated).

use jid::BareJid;
use xmpp_social::events::{
    Attending, Category, Description, DescriptionBody, Event, EventExtra, EventStatus, FileSharing,
    LangText, Location, RsvpAnswer,
};
use xmpp_social::microblog::{Geoloc, ItemRef, NodeRef};

use super::content::{html_to_plain, html_to_xhtml, plain_to_html, xhtml_to_html, xml_safe};
use super::note::NoteOptions;
use super::{ConvertError, Incoming, UrlScheme};
use crate::vocab::{
    Activity, ActivityKind, Address, Attachment, AttachmentKind, Object, ObjectKind, ObjectRef,
    Place, PostalAddress, Tag, TagKind, PUBLIC,
};

/// An RSVP read from a `Join` / `Leave`, or the answer to one.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingRsvp {
    /// The event.
    pub event: ItemRef,
    /// Who answers (a gateway JID for remote actors, an account for answers to ours).
    pub by: BareJid,
    /// Coming or not.
    pub attending: Attending,
    /// Mobilizon's participation message.
    pub message: Option<String>,
    /// For an `Accept`/`Reject` of a `Join`: whether the organiser accepted it.
    pub accepted: Option<bool>,
}

fn geoloc_to_place(g: &Geoloc) -> Place {
    let mut p = Place::named(
        g.text
            .clone()
            .or_else(|| g.description.clone())
            .or_else(|| g.building.clone())
            .unwrap_or_default(),
    );
    if p.name.as_deref() == Some("") {
        p.name = None;
    }
    p.latitude = g.lat;
    p.longitude = g.lon;
    let address = PostalAddress {
        kind: Some("PostalAddress".to_owned()),
        street_address: g.street.clone(),
        address_locality: g.locality.clone(),
        address_region: g.region.clone(),
        postal_code: g.postalcode.clone(),
        address_country: g.country.clone(),
    };
    if address.street_address.is_some()
        || address.address_locality.is_some()
        || address.address_region.is_some()
        || address.postal_code.is_some()
        || address.address_country.is_some()
    {
        p.address = Some(Address::Postal(address));
    }
    p
}

fn place_to_geoloc(p: &Place) -> Geoloc {
    let mut g = match (
        p.latitude.filter(|l| (-90.0..=90.0).contains(l)),
        p.longitude.filter(|l| (-180.0..=180.0).contains(l)),
    ) {
        (Some(lat), Some(lon)) => Geoloc::at(lat, lon),
        _ => Geoloc::default(),
    };
    let clean = |s: &Option<String>| s.as_deref().map(xml_safe).filter(|s| !s.is_empty());
    g.text = clean(&p.name);
    match &p.address {
        Some(Address::Postal(a)) => {
            g.street = clean(&a.street_address);
            g.locality = clean(&a.address_locality);
            g.region = clean(&a.address_region);
            g.postalcode = clean(&a.postal_code);
            g.country = clean(&a.address_country);
        }
        Some(Address::Text(t)) => g.description = Some(xml_safe(t)).filter(|s| !s.is_empty()),
        None => {}
    }
    g
}

/// The `Event` object for a XEP-0471 event published at `item`.
pub fn event_to_object<S: UrlScheme + ?Sized>(
    event: &Event,
    item: &ItemRef,
    scheme: &S,
    opts: &NoteOptions,
) -> Result<Object, ConvertError> {
    let actor = scheme.actor_for_node(&NodeRef::new(item.service.clone(), item.node.clone()));
    let mut o = Object::new(ObjectKind::Event);
    o.id = Some(scheme.object_url(item));
    o.attributed_to = vec![actor.clone()];
    o.name = event.name(None).map(str::to_owned);
    for n in &event.names {
        if let Some(lang) = &n.lang {
            o.name_map.insert(lang.clone(), n.text.clone());
        }
    }
    // Descriptions: XHTML preferred; one per language in contentMap.
    let mut first: Option<String> = None;
    for d in event
        .descriptions
        .iter()
        .filter(|d| matches!(d.body, DescriptionBody::Xhtml(_)))
        .chain(
            event
                .descriptions
                .iter()
                .filter(|d| matches!(d.body, DescriptionBody::Text(_))),
        )
    {
        let html = match &d.body {
            DescriptionBody::Xhtml(x) => xhtml_to_html(x)?,
            DescriptionBody::Text(t) => plain_to_html(t),
        };
        if let Some(lang) = &d.lang {
            o.content_map
                .entry(lang.clone())
                .or_insert_with(|| html.clone());
        }
        first.get_or_insert(html);
    }
    o.content = first;
    o.start_time = Some(event.start);
    o.end_time = Some(event.end);
    if let Some(loc) = event.main_location() {
        match &loc.geoloc {
            Some(g) => o.location = Some(geoloc_to_place(g)),
            None if !loc.online.is_empty() => o.is_online = Some(true),
            None => {}
        }
    }
    o.tag = event
        .categories
        .iter()
        .filter(|c| !c.term.trim().is_empty())
        .map(|c| Tag::hashtag(&c.term.trim().replace(char::is_whitespace, "_"), None))
        .collect();
    if let Some(extra) = &event.extra {
        o.ical_status = extra
            .status
            .as_ref()
            .map(|s| s.as_str().to_ascii_uppercase());
        o.in_language = extra.languages.first().cloned();
    }
    if let Some(pic) = &event.head_picture {
        if let Some(url) = pic
            .urls()
            .into_iter()
            .find(|u| u.starts_with("https://") || u.starts_with("http://"))
        {
            o.attachment.push(Attachment {
                kind: AttachmentKind::Document,
                url: Some(url),
                href: None,
                media_type: pic.media_type(),
                name: pic.name(),
                value: None,
                width: None,
                height: None,
                blurhash: None,
            });
        }
    }
    o.join_mode = Some("free".to_owned());
    o.anonymous_participation_enabled = Some(false);
    let followers = scheme.followers_url(&actor);
    (o.to, o.cc) = if opts.public {
        (vec![PUBLIC.to_owned()], vec![followers])
    } else {
        (vec![followers], Vec::new())
    };
    Ok(o)
}

/// The XEP-0471 event for an `Event` object. `startTime` is required; a missing `endTime` is the
/// start (XEP-0471 requires an end).
pub fn object_to_event(obj: &Object) -> Result<Event, ConvertError> {
    if obj.kind != ObjectKind::Event {
        return Err(ConvertError::Invalid {
            field: "type",
            reason: format!("{} is not an Event", obj.kind.as_str()),
        });
    }
    let start = obj.start_time.ok_or(ConvertError::Missing("startTime"))?;
    let end = obj.end_time.filter(|e| e >= &start).unwrap_or(start);
    let name = obj
        .name
        .as_deref()
        .or_else(|| obj.name_map.values().next().map(String::as_str))
        .map(|n| xml_safe(n.trim()))
        .unwrap_or_default();
    let mut event = Event::new(name, start, end);
    for (lang, text) in &obj.name_map {
        let text = xml_safe(text.trim());
        if lang != "und"
            && !text.is_empty()
            && !event.names.iter().any(|n| n.lang.as_deref() == Some(lang))
        {
            event.names.push(LangText::with_lang(xml_safe(lang), text));
        }
    }
    let mut descriptions: Vec<(Option<&str>, &str)> = Vec::new();
    if let Some(c) = &obj.content {
        let lang = obj
            .content_map
            .iter()
            .find(|(_, v)| *v == c)
            .map(|(k, _)| k.as_str());
        descriptions.push((lang.filter(|l| *l != "und"), c));
    }
    for (lang, c) in &obj.content_map {
        if lang != "und" && !descriptions.iter().any(|(l, _)| *l == Some(lang.as_str())) {
            descriptions.push((Some(lang), c));
        }
    }
    for (lang, html) in descriptions {
        let lang = lang.map(xml_safe);
        let text = html_to_plain(html)?;
        if !event
            .descriptions
            .iter()
            .any(|d| d.lang == lang && d.type_name() == "text")
        {
            event
                .descriptions
                .push(Description::text(lang.as_deref(), text));
        }
        if let Ok(x) = html_to_xhtml(html) {
            if !event
                .descriptions
                .iter()
                .any(|d| d.lang == lang && d.type_name() == "xhtml")
            {
                event
                    .descriptions
                    .push(Description::xhtml(lang.as_deref(), x));
            }
        }
    }
    if let Some(place) = &obj.location {
        event
            .locations
            .push(Location::place(place_to_geoloc(place)));
    }
    for tag in obj.tag.iter().filter(|t| t.kind == TagKind::Hashtag) {
        if let Some(term) = tag
            .name
            .as_deref()
            .map(|n| xml_safe(n.trim().trim_start_matches('#')))
        {
            if !term.is_empty() && !event.categories.iter().any(|c| c.term == term) {
                event.categories.push(Category::new(term));
            }
        }
    }
    if let Some(c) = obj
        .category
        .as_deref()
        .map(xml_safe)
        .filter(|c| !c.is_empty())
    {
        let term = c.to_lowercase();
        if !event.categories.iter().any(|x| x.term == term) {
            event.categories.push(Category::new(term));
        }
    }
    let status = obj
        .ical_status
        .as_deref()
        .map(|s| EventStatus::from_protocol(&xml_safe(&s.to_ascii_lowercase())));
    let languages: Vec<String> = obj.in_language.iter().map(|l| xml_safe(l)).collect();
    if status.is_some() || !languages.is_empty() {
        event.extra = Some(EventExtra {
            status,
            languages,
            ..EventExtra::default()
        });
    }
    if let Some(pic) = obj.attachment.iter().find(|a| {
        a.media_type
            .as_deref()
            .is_some_and(|m| m.starts_with("image/"))
            || a.kind == AttachmentKind::Image
    }) {
        if let Some(url) = pic
            .location()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        {
            event.head_picture = Some(FileSharing::from_url(
                &xml_safe(url),
                pic.name.as_deref().map(xml_safe).as_deref(),
                pic.media_type.as_deref().map(xml_safe).as_deref(),
            ));
        }
    }
    event.validate()?;
    Ok(event)
}

/// The activity for `by`'s RSVP to an event: `Join` for `yes`/`maybe`, `Leave` for `no`.
pub fn rsvp_to_activity<S: UrlScheme + ?Sized>(
    by: &BareJid,
    event: &ItemRef,
    answer: &RsvpAnswer,
    scheme: &S,
) -> Option<Activity> {
    let kind = match answer.attending()? {
        Attending::Yes | Attending::Maybe => ActivityKind::Join,
        Attending::No => ActivityKind::Leave,
    };
    let actor = scheme.actor_for_jid(by);
    let object = scheme.object_url(event);
    let id = scheme.activity_id(&kind.as_str().to_ascii_lowercase(), &object, &actor, "");
    let mut a = Activity::new(kind, Some(id), actor, Some(ObjectRef::Id(object)));
    a.to = vec![scheme.actor_for_node(&NodeRef::new(event.service.clone(), event.node.clone()))];
    Some(a)
}

/// `Join` / `Leave` -> [`Incoming::Rsvp`].
pub fn rsvp_from_activity<S: UrlScheme + ?Sized>(
    activity: &Activity,
    scheme: &S,
) -> Result<Incoming, ConvertError> {
    let object = activity.object_id().ok_or(ConvertError::Missing("event"))?;
    let event = scheme
        .item_for_object(object)
        .ok_or_else(|| ConvertError::Unmapped {
            what: "object",
            id: object.to_owned(),
        })?;
    let by = scheme
        .jid_for_actor(&activity.actor)
        .ok_or_else(|| ConvertError::Unmapped {
            what: "actor",
            id: activity.actor.clone(),
        })?;
    let attending = if activity.kind == ActivityKind::Leave {
        Attending::No
    } else {
        Attending::Yes
    };
    Ok(Incoming::Rsvp(IncomingRsvp {
        event,
        by,
        attending,
        message: activity.participation_message.as_deref().map(xml_safe),
        accepted: None,
    }))
}

/// `Accept` / `Reject` of a `Join` (by the organiser).
pub(crate) fn incoming_join_answer<S: UrlScheme + ?Sized>(
    answer: &Activity,
    join: &Activity,
    scheme: &S,
) -> Result<Incoming, ConvertError> {
    let Incoming::Rsvp(mut rsvp) = rsvp_from_activity(join, scheme)? else {
        return Err(ConvertError::Missing("Join"));
    };
    rsvp.accepted = Some(answer.kind == ActivityKind::Accept);
    Ok(Incoming::Rsvp(rsvp))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::convert::incoming_bytes;
    use crate::convert::test_scheme::{item, jid, TestScheme};
    use crate::vocab::{parse, to_vec, AnyObject};

    #[test]
    fn mobilizon_event_to_xep0471_and_back() {
        let AnyObject::Object(obj) =
            parse(crate::vocab::tests::MOBILIZON_EVENT.as_bytes()).unwrap()
        else {
            panic!()
        };
        let event = object_to_event(&obj).unwrap();
        assert_eq!(event.name(None), Some("XMPP sprint"));
        assert_eq!(event.start.to_rfc3339(), "2024-05-04T09:00:00+02:00");
        let geo = event.main_location().unwrap().geoloc.as_ref().unwrap();
        assert_eq!(geo.locality.as_deref(), Some("Paris"));
        assert_eq!(geo.lat, Some(48.85));
        assert_eq!(geo.text.as_deref(), Some("Hackerspace"));
        assert!(event.categories.iter().any(|c| c.term == "xmpp"));
        assert!(event.categories.iter().any(|c| c.term == "meeting"));
        assert_eq!(
            event.extra.as_ref().unwrap().status,
            Some(EventStatus::Confirmed)
        );
        assert!(event.descriptions.iter().any(|d| d.type_name() == "xhtml"));
        // The element form parses back (it is a valid XEP-0471 event).
        let el = minidom::Element::from(&event);
        let reparsed = Event::try_from(&el).unwrap();
        assert_eq!(reparsed.name(None), Some("XMPP sprint"));

        // Back to AP.
        let ev_item = item("alice@example.org", "sprint");
        let out = event_to_object(&event, &ev_item, &TestScheme, &NoteOptions::default()).unwrap();
        assert_eq!(out.kind, ObjectKind::Event);
        assert_eq!(out.name.as_deref(), Some("XMPP sprint"));
        assert_eq!(out.start_time, obj.start_time);
        assert_eq!(out.end_time, obj.end_time);
        assert_eq!(out.ical_status.as_deref(), Some("CONFIRMED"));
        let place = out.location.as_ref().unwrap();
        assert_eq!(place.latitude, Some(48.85));
        match place.address.as_ref().unwrap() {
            Address::Postal(a) => assert_eq!(a.postal_code.as_deref(), Some("75002")),
            other => panic!("{other:?}"),
        }
        assert!(out.content.as_deref().unwrap().contains("<b>XMPP</b>"));
        assert!(out.is_public());
        // And it reads again as the same event.
        let AnyObject::Object(again) = parse(&to_vec(&out)).unwrap() else {
            panic!()
        };
        let event2 = object_to_event(&again).unwrap();
        assert_eq!(event2.start, event.start);
        assert_eq!(event2.names, event.names);
        assert_eq!(
            event2.main_location().unwrap().geoloc,
            event.main_location().unwrap().geoloc
        );
    }

    #[test]
    fn events_without_times_or_with_odd_values() {
        let mut o = Object::new(ObjectKind::Event);
        o.name = Some("x".into());
        assert!(matches!(
            object_to_event(&o),
            Err(ConvertError::Missing("startTime"))
        ));
        o.start_time = Some(chrono::DateTime::parse_from_rfc3339("2024-01-01T10:00:00Z").unwrap());
        o.end_time = Some(chrono::DateTime::parse_from_rfc3339("2023-01-01T10:00:00Z").unwrap());
        let mut p = Place::named("nowhere");
        p.latitude = Some(500.0);
        p.longitude = Some(f64::NAN);
        o.location = Some(p);
        let e = object_to_event(&o).unwrap();
        assert_eq!(e.end, e.start);
        assert_eq!(
            e.main_location().unwrap().geoloc.as_ref().unwrap().lat,
            None
        );
        assert!(object_to_event(&Object::new(ObjectKind::Note)).is_err());
    }

    #[test]
    fn rsvp_join_leave() {
        let me = jid("alice@example.org");
        let ev = item("libre_group\\40mobilizon.example@ap.example.org", "9f2e");
        let join =
            rsvp_to_activity(&me, &ev, &RsvpAnswer::new(Attending::Yes), &TestScheme).unwrap();
        assert_eq!(join.kind, ActivityKind::Join);
        assert_eq!(
            join.object_id(),
            Some("https://mobilizon.example/@libre_group/statuses/9f2e")
        );
        assert_eq!(join.to, vec!["https://mobilizon.example/@libre_group"]);
        let leave =
            rsvp_to_activity(&me, &ev, &RsvpAnswer::new(Attending::No), &TestScheme).unwrap();
        assert_eq!(leave.kind, ActivityKind::Leave);

        // A remote participant joins our event, with a message.
        let incoming = br#"{"type": "Join", "id": "https://mobilizon.example/join/1",
            "actor": "https://mobilizon.example/@zoe", "participationMessage": "see you",
            "object": "https://ap.example.org/_ap/item/alice@example.org/sprint"}"#;
        let Incoming::Rsvp(r) = incoming_bytes(incoming, &TestScheme).unwrap() else {
            panic!()
        };
        assert_eq!(r.event, item("alice@example.org", "sprint"));
        assert_eq!(r.by, jid("zoe\\40mobilizon.example@ap.example.org"));
        assert_eq!(r.attending, Attending::Yes);
        assert_eq!(r.message.as_deref(), Some("see you"));
        // The organiser accepts our Join.
        let accept = format!(
            r#"{{"type": "Accept", "actor": "https://mobilizon.example/@libre_group", "object": {}}}"#,
            String::from_utf8(to_vec(&join)).unwrap()
        );
        let Incoming::Rsvp(r) = incoming_bytes(accept.as_bytes(), &TestScheme).unwrap() else {
            panic!()
        };
        assert_eq!(r.accepted, Some(true));
        assert_eq!(r.by, me);
        // Undo(Join) reads as a Leave.
        let undo = format!(
            r#"{{"type": "Undo", "actor": "https://ap.example.org/_ap/actor/alice@example.org", "object": {}}}"#,
            String::from_utf8(to_vec(&join)).unwrap()
        );
        let Incoming::Rsvp(r) = incoming_bytes(undo.as_bytes(), &TestScheme).unwrap() else {
            panic!()
        };
        assert_eq!(r.attending, Attending::No);
    }
}
