//! RSVP answers (XEP-0471 §RSVP) as XEP-0470 attachments, and the attendees summary.
//!
//! An invitee answers by publishing, on the event item's attachment node, an item whose id is their
//! bare JID and whose payload is `<attachments xmlns='urn:xmpp:pubsub-attachments:1'>` holding
//! `<rsvp xmlns='urn:xmpp:calendar-events:0'>` with the submitted form. Other attachments of the same
//! item (noticed, reactions...) are kept when the answer changes, as XEP-0470 requires.

use chrono::{DateTime, FixedOffset};
use minidom::Element;
use serde::Serialize;

use super::model::EventNamespace;
use crate::error::ParseError;
use crate::forms::{DataForm, Field, FormType, NS_DATA};
use crate::util::{check_limits, detached, format_date, invalid, parse_date, ser_opt_date};
use crate::xml::BuilderExt;

use crate::attachments::{NS_ATTACHMENTS, NS_SUMMARY};
/// XEP-0334 Message Processing Hints (the `<store/>` hint of private RSVPs).
pub const NS_HINTS: &str = "urn:xmpp:hints";
/// The main RSVP field.
pub const ATTENDING_FIELD: &str = "attending";
/// The optional RSVP field counting people coming (including the one answering).
pub const PARTICIPANTS_FIELD: &str = "participants_number";

/// The value of the `attending` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Attending {
    /// Coming.
    Yes,
    /// Perhaps coming.
    Maybe,
    /// Not coming.
    No,
}

impl Attending {
    /// The protocol value.
    pub fn as_str(self) -> &'static str {
        match self {
            Attending::Yes => "yes",
            Attending::Maybe => "maybe",
            Attending::No => "no",
        }
    }

    /// Reads a protocol value (`None` for anything else).
    pub fn from_protocol(s: &str) -> Option<Self> {
        match s {
            "yes" => Some(Attending::Yes),
            "maybe" => Some(Attending::Maybe),
            "no" => Some(Attending::No),
            _ => None,
        }
    }
}

impl std::str::FromStr for Attending {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Attending::from_protocol(s)
            .ok_or_else(|| invalid("attending", format!("expected yes, maybe or no, got {s:?}")))
    }
}

/// An RSVP answer: the `<rsvp/>` attached to an event item (or sent privately in a message).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RsvpAnswer {
    /// The namespace of the `<rsvp/>` element.
    pub ns: EventNamespace,
    /// `timestamp` (XEP-0470: when the attachment was set).
    #[serde(
        serialize_with = "ser_opt_date",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// The submitted form.
    pub form: DataForm,
}

impl RsvpAnswer {
    /// An answer to the standard form (current namespace).
    pub fn new(attending: Attending) -> Self {
        let ns = EventNamespace::Current;
        let mut form = DataForm::with_form_type(FormType::Submit, ns.rsvp_form_type());
        form.fields
            .push(Field::new(ATTENDING_FIELD, attending.as_str()));
        RsvpAnswer {
            ns,
            timestamp: None,
            form,
        }
    }

    /// The same answer saying how many people come, including the one answering.
    pub fn with_participants(mut self, count: u32) -> Self {
        self.form.set(PARTICIPANTS_FIELD, vec![count.to_string()]);
        self
    }

    /// The same answer with another field (Clark-notation `var` for non-standard ones).
    pub fn with_field(mut self, var: &str, values: Vec<String>) -> Self {
        self.form.set(var, values);
        self
    }

    /// The same answer stamped with a time.
    pub fn with_timestamp(mut self, timestamp: DateTime<FixedOffset>) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// The same answer in another namespace (the form's `FORM_TYPE` follows).
    pub fn in_namespace(mut self, ns: EventNamespace) -> Self {
        if self.form.form_type() == Some(self.ns.rsvp_form_type()) {
            self.form
                .set("FORM_TYPE", vec![ns.rsvp_form_type().to_owned()]);
        }
        self.ns = ns;
        self
    }

    /// The raw value of the `attending` field.
    pub fn attending_value(&self) -> Option<&str> {
        self.form.value(ATTENDING_FIELD).map(str::trim)
    }

    /// The `attending` field, when it is `yes`, `maybe` or `no`.
    pub fn attending(&self) -> Option<Attending> {
        self.attending_value().and_then(Attending::from_protocol)
    }

    /// How many people this answer counts for (XEP-0471 §RSVP Summarizing): the integer value of
    /// `participants_number`, or 1 when it is absent, not an integer, or lower than 1.
    pub fn increment(&self) -> u64 {
        let Some(v) = self.form.value(PARTICIPANTS_FIELD) else {
            return 1;
        };
        let v = v.trim();
        let digits = v.strip_prefix('+').unwrap_or(v);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            // Not an integer, or negative (hence lower than 1).
            return 1;
        }
        // An integer too large for u64 is still an integer above 1: saturate.
        digits.parse::<u64>().unwrap_or(u64::MAX).max(1)
    }

    /// Reads `<rsvp/>` in either XEP-0471 namespace.
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        let ns = match EventNamespace::from_ns(&el.ns()) {
            Some(ns) if el.name() == "rsvp" => ns,
            _ => {
                return Err(ParseError::WrongElement {
                    expected: format!("{{{}}}rsvp", EventNamespace::Current.ns()),
                    found: crate::xml::qname(el),
                })
            }
        };
        check_limits(el, "rsvp nesting")?;
        let timestamp = el
            .attr("timestamp")
            .map(|t| parse_date(t, "rsvp@timestamp"))
            .transpose()?;
        let x = el
            .children()
            .find(|c| c.is("x", NS_DATA))
            .ok_or(ParseError::MissingChild {
                element: "rsvp",
                child: "x",
            })?;
        Ok(RsvpAnswer {
            ns,
            timestamp,
            form: DataForm::parse(x)?,
        })
    }

    /// The `<rsvp/>` element.
    pub fn to_element(&self) -> Element {
        Element::builder("rsvp", self.ns.ns())
            .a_opt("timestamp", self.timestamp.as_ref().map(format_date))
            .append(self.form.to_element())
            .build()
    }

    /// Reads the RSVP of a XEP-0470 `<attachments/>` payload (`None` when it has none).
    pub fn from_attachments(attachments: &Element) -> Result<Option<Self>, ParseError> {
        crate::xml::expect_element(attachments, NS_ATTACHMENTS, "attachments")?;
        attachments
            .children()
            .find(|c| is_rsvp(c))
            .map(RsvpAnswer::parse)
            .transpose()
    }

    /// The `<attachments/>` payload to publish: `existing` (one's current attachment item, if any) with
    /// its RSVP replaced by this one and every other attachment kept.
    pub fn merge_into_attachments(&self, existing: Option<&Element>) -> Element {
        let mut out = Element::bare("attachments", NS_ATTACHMENTS);
        if let Some(old) = existing.filter(|e| e.is("attachments", NS_ATTACHMENTS)) {
            for c in old.children().filter(|c| !is_rsvp(c)) {
                out.append_child(detached(c));
            }
        }
        out.append_child(self.to_element());
        out
    }

    /// The payloads of a private RSVP message (XEP-0471 §Private RSVP): the `<rsvp/>` and a XEP-0334
    /// `<store/>` hint (for messages without a body).
    pub fn private_message_payloads(&self) -> Vec<Element> {
        vec![self.to_element(), Element::bare("store", NS_HINTS)]
    }

    /// Reads a private RSVP from a `<message/>` (`None` when it carries none).
    pub fn from_message(message: &Element) -> Option<Result<Self, ParseError>> {
        message
            .children()
            .find(|c| is_rsvp(c))
            .map(RsvpAnswer::parse)
    }
}

fn is_rsvp(el: &Element) -> bool {
    el.name() == "rsvp" && EventNamespace::from_ns(&el.ns()).is_some()
}

/// `attachments` without the RSVP: what to republish to withdraw an answer (`None` when nothing else
/// is left, so the item can be retracted).
pub fn attachments_without_rsvp(existing: &Element) -> Option<Element> {
    let mut out = Element::bare("attachments", NS_ATTACHMENTS);
    let mut any = false;
    for c in existing.children().filter(|c| !is_rsvp(c)) {
        out.append_child(detached(c));
        any = true;
    }
    any.then_some(out)
}

/// The attendees count of XEP-0471 §RSVP Summarizing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AttendeesSummary {
    /// People coming for sure.
    pub confirmed: u64,
    /// Most people expected (confirmed plus "maybe").
    pub max: u64,
}

impl AttendeesSummary {
    /// Counts one answer: nothing for `no` or no answer, [`RsvpAnswer::increment`] to both counts for
    /// `yes`, to `max` only for `maybe`.
    pub fn add(&mut self, answer: &RsvpAnswer) {
        let inc = answer.increment();
        match answer.attending() {
            Some(Attending::Yes) => {
                self.confirmed = self.confirmed.saturating_add(inc);
                self.max = self.max.saturating_add(inc);
            }
            Some(Attending::Maybe) => self.max = self.max.saturating_add(inc),
            Some(Attending::No) | None => {}
        }
    }

    /// The summary of several answers (one per JID).
    pub fn from_answers<'a>(answers: impl IntoIterator<Item = &'a RsvpAnswer>) -> Self {
        let mut s = AttendeesSummary::default();
        for a in answers {
            s.add(a);
        }
        s
    }

    /// Reads `<attendees confirmed='..' max='..'/>` in either namespace (`max` defaults to `confirmed`).
    pub fn parse(el: &Element) -> Result<Self, ParseError> {
        if el.name() != "attendees" || EventNamespace::from_ns(&el.ns()).is_none() {
            return Err(ParseError::WrongElement {
                expected: format!("{{{}}}attendees", EventNamespace::Current.ns()),
                found: crate::xml::qname(el),
            });
        }
        let number = |attr: &'static str, v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| invalid("attendees", format!("'{attr}' is not a count: {v:?}")))
        };
        let confirmed = number(
            "confirmed",
            el.attr("confirmed").ok_or(ParseError::MissingAttribute {
                element: "attendees",
                attribute: "confirmed",
            })?,
        )?;
        let max = match el.attr("max") {
            Some(m) => number("max", m)?,
            None => confirmed,
        };
        if max < confirmed {
            return Err(invalid("attendees", "'max' is lower than 'confirmed'"));
        }
        Ok(AttendeesSummary { confirmed, max })
    }

    /// The `<attendees/>` element (`max` omitted when it equals `confirmed`).
    pub fn to_element(&self, ns: EventNamespace) -> Element {
        Element::builder("attendees", ns.ns())
            .a("confirmed", self.confirmed.to_string())
            .a_opt(
                "max",
                (self.max != self.confirmed).then(|| self.max.to_string()),
            )
            .build()
    }

    /// Reads the attendees of a XEP-0470 `<summary/>` item payload (`None` when it has none).
    pub fn from_summary(summary: &Element) -> Result<Option<Self>, ParseError> {
        crate::xml::expect_element(summary, NS_SUMMARY, "summary")?;
        summary
            .children()
            .find(|c| c.name() == "attendees" && EventNamespace::from_ns(&c.ns()).is_some())
            .map(AttendeesSummary::parse)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increments_follow_the_xep() {
        let with = |v: &str| {
            RsvpAnswer::new(Attending::Yes).with_field(PARTICIPANTS_FIELD, vec![v.into()])
        };
        assert_eq!(RsvpAnswer::new(Attending::Yes).increment(), 1);
        assert_eq!(with("3").increment(), 3);
        assert_eq!(with(" 4 ").increment(), 4);
        assert_eq!(with("+2").increment(), 2);
        assert_eq!(with("0").increment(), 1);
        assert_eq!(with("-5").increment(), 1);
        assert_eq!(with("2.5").increment(), 1);
        assert_eq!(with("two").increment(), 1);
        assert_eq!(with("").increment(), 1);
        assert_eq!(with("99999999999999999999999").increment(), u64::MAX);
    }

    #[test]
    fn summary_rules() {
        let answers = [
            RsvpAnswer::new(Attending::Yes).with_participants(2),
            RsvpAnswer::new(Attending::Maybe),
            RsvpAnswer::new(Attending::No).with_participants(5),
            RsvpAnswer::new(Attending::Maybe).with_participants(3),
            RsvpAnswer::new(Attending::Yes),
            // Not set: nothing.
            {
                let mut a = RsvpAnswer::new(Attending::Yes);
                a.form
                    .fields
                    .retain(|f| f.var.as_deref() != Some(ATTENDING_FIELD));
                a
            },
        ];
        let s = AttendeesSummary::from_answers(&answers);
        assert_eq!(
            s,
            AttendeesSummary {
                confirmed: 3,
                max: 7
            }
        );
        let el = s.to_element(EventNamespace::Current);
        assert_eq!(AttendeesSummary::parse(&el).expect("parse"), s);
        let same = AttendeesSummary {
            confirmed: 2,
            max: 2,
        };
        let el = same.to_element(EventNamespace::Current);
        assert!(el.attr("max").is_none());
        assert_eq!(AttendeesSummary::parse(&el).expect("parse"), same);
        let saturating = AttendeesSummary::from_answers(&[
            RsvpAnswer::new(Attending::Yes)
                .with_field(PARTICIPANTS_FIELD, vec!["18446744073709551615".into()]),
            RsvpAnswer::new(Attending::Yes).with_participants(2),
        ]);
        assert_eq!(saturating.confirmed, u64::MAX);
    }

    #[test]
    fn merging_keeps_other_attachments() {
        let old: Element = "<attachments xmlns='urn:xmpp:pubsub-attachments:1'>\
            <noticed timestamp='2022-07-11T12:07:45Z'/>\
            <rsvp xmlns='urn:xmpp:events:0'><x xmlns='jabber:x:data' type='submit'>\
            <field var='attending'><value>no</value></field></x></rsvp>\
            <unknown xmlns='urn:example:x'>keep me</unknown></attachments>"
            .parse()
            .expect("xml");
        let prev = RsvpAnswer::from_attachments(&old)
            .expect("ok")
            .expect("rsvp");
        assert_eq!(prev.ns, EventNamespace::Legacy);
        assert_eq!(prev.attending(), Some(Attending::No));
        let new = RsvpAnswer::new(Attending::Yes).merge_into_attachments(Some(&old));
        assert_eq!(new.children().count(), 3);
        assert!(new.get_child("noticed", NS_ATTACHMENTS).is_some());
        assert!(new.get_child("unknown", "urn:example:x").is_some());
        let a = RsvpAnswer::from_attachments(&new)
            .expect("ok")
            .expect("rsvp");
        assert_eq!(a.attending(), Some(Attending::Yes));
        let without = attachments_without_rsvp(&new).expect("others left");
        assert!(RsvpAnswer::from_attachments(&without)
            .expect("ok")
            .is_none());
        let only: Element = RsvpAnswer::new(Attending::Yes).merge_into_attachments(None);
        assert!(attachments_without_rsvp(&only).is_none());
    }

    #[test]
    fn malformed_rsvps_are_typed_errors() {
        let bad = [
            "<rsvp xmlns='urn:xmpp:calendar-events:0'/>",
            "<rsvp xmlns='urn:xmpp:calendar-events:0' timestamp='yesterday'><x xmlns='jabber:x:data' type='submit'/></rsvp>",
            "<rsvp xmlns='urn:xmpp:calendar-events:0'><x xmlns='jabber:x:data'/></rsvp>",
            "<rsvp xmlns='urn:example:other'><x xmlns='jabber:x:data' type='submit'/></rsvp>",
        ];
        for xml in bad {
            let el: Element = xml.parse().expect("xml");
            assert!(RsvpAnswer::parse(&el).is_err(), "{xml}");
        }
        for xml in [
            "<attendees xmlns='urn:xmpp:calendar-events:0'/>",
            "<attendees xmlns='urn:xmpp:calendar-events:0' confirmed='x'/>",
            "<attendees xmlns='urn:xmpp:calendar-events:0' confirmed='3' max='2'/>",
            "<attendees xmlns='urn:xmpp:calendar-events:0' confirmed='-1'/>",
        ] {
            let el: Element = xml.parse().expect("xml");
            assert!(AttendeesSummary::parse(&el).is_err(), "{xml}");
        }
    }
}
