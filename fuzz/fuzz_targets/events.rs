//! Feeds arbitrary bytes to the XEP-0471 parsers: `<event/>`, `<rsvp/>` (alone and inside XEP-0470
//! `<attachments/>`), `<attendees/>` and `<invitee/>`.
//!
//! Invariants checked: parsing never panics; whatever parses serialises, and the serialisation parses
//! back to an equal value; serialising is a fixed point after one round; counting an RSVP never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_parsers::minidom::Element;
use xmpp_social::events::{AttendeesSummary, Event, Invitee, RsvpAnswer};

fn text(el: &Element) -> String {
    String::from(el)
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(el) = xmpp_social::xml::parse_bounded(s, 1 << 20) else {
        return;
    };

    if let Ok(ev) = Event::try_from(&el) {
        let out = Element::from(&ev);
        let xml = text(&out);
        let again: Event = xml.parse().expect("a serialised event must parse");
        assert_eq!(again, ev, "round trip changed the event:\n{xml}");
        assert_eq!(text(&Element::from(&again)), xml);
        let _ = ev.validate();
        let _ = ev.name(Some("en"));
    }

    let rsvp = if el.name() == "attachments" {
        RsvpAnswer::from_attachments(&el).ok().flatten()
    } else {
        RsvpAnswer::parse(&el).ok()
    };
    if let Some(answer) = rsvp {
        let out = answer.to_element();
        let xml = text(&out);
        let again = RsvpAnswer::parse(&xml.parse::<Element>().expect("serialised rsvp must parse"))
            .expect("a serialised rsvp must parse");
        assert_eq!(again, answer, "round trip changed the rsvp:\n{xml}");
        let merged = answer.merge_into_attachments(Some(&el));
        let back = RsvpAnswer::from_attachments(&merged)
            .expect("merged attachments must parse")
            .expect("merged attachments hold the rsvp");
        assert_eq!(back, answer);
        let mut summary = AttendeesSummary::default();
        summary.add(&answer);
        assert!(summary.max >= summary.confirmed);
    }

    if let Ok(summary) = AttendeesSummary::parse(&el) {
        let out = summary.to_element(xmpp_social::events::EventNamespace::Current);
        assert_eq!(AttendeesSummary::parse(&out).expect("reparse"), summary);
    }

    if let Ok(invitee) = Invitee::parse(&el) {
        let out = invitee.to_element(xmpp_social::events::EventNamespace::Current);
        assert_eq!(Invitee::parse(&out).expect("reparse"), invitee);
    }
});
