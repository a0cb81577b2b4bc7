//! The ActivityStreams 2.0 / ActivityPub vocabulary the gateway speaks, as serde types.
//!
//! Only the subset the gateway maps is typed: content objects (`Note`, `Article`, `Page`, `Question`,
//! Mobilizon's `Event` with its `Place`), `Tombstone`, actors (`Person`, `Service`, `Group`,
//! `Application`, `Organization`), the activities of the mappings (`Create`, `Update`, `Delete`,
//! `Follow`, `Accept`, `Reject`, `Undo`, `Like`, `EmojiReact`, `Announce`, `Join`, `Leave`; any other
//! activity type still parses, with [`ActivityKind::Other`]), collections and their pages, tags
//! (`Hashtag`, `Mention`, `Emoji`) and attachments (`Document`, `Image`, `Video`, `Audio`, `Link`,
//! `PropertyValue`).
//!
//! # Reading
//!
//! [`parse`] is lenient where real servers differ and strict where hostile input could hurt:
//!
//! - one value or an array of values is accepted wherever AS2 allows several (`to`, `cc`, `tag`,
//!   `attachment`, `type`...); for single-valued fields the first element of an array is taken;
//! - objects are accepted embedded or referenced by id (`"actor": "https://..."` or
//!   `"actor": {"id": "https://...", ...}`), and a `Link` (`{"href": ...}`) where a URL is expected;
//! - the public collection's compact forms (`as:Public`, `Public`) read as [`PUBLIC`];
//! - `@context` may be a string, an array or an object (it is kept, not interpreted: terms are read by
//!   their compact names, as Mastodon does);
//! - unknown properties are ignored, unknown object types parse as [`AnyObject::Unknown`], unknown tag or
//!   attachment types as `Other`;
//! - but the document is bounded before any typed value is built ([`MAX_DOCUMENT_BYTES`],
//!   [`MAX_DEPTH`], [`MAX_ARRAY_LEN`], [`MAX_OBJECT_KEYS`], [`MAX_STRING_BYTES`]), a present value
//!   of the wrong shape (a date that is not RFC 3339, an actor without `inbox`...) is a
//!   [`VocabError`], and nothing panics.
//!
//! # Writing
//!
//! [`to_json`] / [`to_vec`] write the canonical form: one `@context` (the AS2 and security contexts plus
//! the extension terms the gateway uses, see [`canonical_context`]) on the top-level object only, the
//! public collection spelt in full, empty fields left out.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, SecondsFormat};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// The ActivityStreams 2.0 JSON-LD context.
pub const AS_CONTEXT: &str = "https://www.w3.org/ns/activitystreams";
/// The security vocabulary context (`publicKey`, `publicKeyPem`).
pub const SECURITY_CONTEXT: &str = "https://w3id.org/security/v1";
/// The special public collection: an object addressed to it is public.
pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";
/// The media type of ActivityPub documents.
pub const ACTIVITY_JSON: &str = "application/activity+json";
/// The JSON-LD media type with the ActivityStreams profile (also accepted for ActivityPub).
pub const LD_JSON_AS: &str =
    "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";

/// The largest document [`parse`] accepts (1 MiB, Mastodon's cap on fetched objects).
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// The deepest JSON nesting accepted (arrays and objects).
pub const MAX_DEPTH: usize = 32;
/// The longest JSON array accepted anywhere in a document.
pub const MAX_ARRAY_LEN: usize = 1024;
/// The most keys a JSON object may have.
pub const MAX_OBJECT_KEYS: usize = 512;
/// The longest JSON string accepted (256 KiB, the size of the largest XMPP entry text).
pub const MAX_STRING_BYTES: usize = 256 * 1024;

/// Why a JSON document is not an ActivityStreams object the gateway can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VocabError {
    /// The document, or one string in it, is larger than accepted.
    #[error("{what} too large: {size} bytes > {limit}")]
    TooLarge {
        /// What was too large (`document`, `string`).
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The JSON nesting is deeper than [`MAX_DEPTH`].
    #[error("JSON nested deeper than {limit}")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// An array or object has more members than accepted.
    #[error("too many {what}: {count} > {limit}")]
    TooMany {
        /// `array elements` or `object keys`.
        what: &'static str,
        /// How many were found.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Not JSON (syntax error, recursion limit of the JSON parser...).
    #[error("not JSON: {0}")]
    Json(String),
    /// JSON, but not of the expected shape: a missing required property, a value of the wrong type
    /// or format (the message names the property).
    #[error("not a valid ActivityStreams document: {0}")]
    Shape(String),
    /// The top-level value is not a JSON object with a `type`.
    #[error("no object type: {0}")]
    NoType(&'static str),
}

// ---------------------------------------------------------------------------------------------
// Bounds
// ---------------------------------------------------------------------------------------------

/// Checks a parsed JSON value against [`MAX_DEPTH`], [`MAX_ARRAY_LEN`], [`MAX_OBJECT_KEYS`] and
/// [`MAX_STRING_BYTES`].
pub fn check_bounds(value: &Value) -> Result<(), VocabError> {
    // Iterative: the depth limit is checked before descending, so the stack stays small anyway.
    let mut stack: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::String(s) => check_string(s)?,
            Value::Array(a) => {
                if depth > MAX_DEPTH {
                    return Err(VocabError::TooDeep { limit: MAX_DEPTH });
                }
                if a.len() > MAX_ARRAY_LEN {
                    return Err(VocabError::TooMany {
                        what: "array elements",
                        count: a.len(),
                        limit: MAX_ARRAY_LEN,
                    });
                }
                stack.extend(a.iter().map(|c| (c, depth + 1)));
            }
            Value::Object(o) => {
                if depth > MAX_DEPTH {
                    return Err(VocabError::TooDeep { limit: MAX_DEPTH });
                }
                if o.len() > MAX_OBJECT_KEYS {
                    return Err(VocabError::TooMany {
                        what: "object keys",
                        count: o.len(),
                        limit: MAX_OBJECT_KEYS,
                    });
                }
                for (k, c) in o {
                    check_string(k)?;
                    stack.push((c, depth + 1));
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    Ok(())
}

fn check_string(s: &str) -> Result<(), VocabError> {
    if s.len() > MAX_STRING_BYTES {
        return Err(VocabError::TooLarge {
            what: "string",
            size: s.len(),
            limit: MAX_STRING_BYTES,
        });
    }
    Ok(())
}

/// Parses a document received from the network (see the module documentation for what is accepted).
pub fn parse(bytes: &[u8]) -> Result<AnyObject, VocabError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(VocabError::TooLarge {
            what: "document",
            size: bytes.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    // serde_json refuses nesting deeper than 128 itself; check_bounds then applies ours.
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| VocabError::Json(e.to_string()))?;
    parse_value(value)
}

/// Reads an already parsed JSON value (bounds are checked first).
pub fn parse_value(value: Value) -> Result<AnyObject, VocabError> {
    check_bounds(&value)?;
    AnyObject::from_value(value)
}

/// Parses a document that must be of one type, e.g. `parse_as::<Actor>(bytes)`.
pub fn parse_as<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, VocabError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(VocabError::TooLarge {
            what: "document",
            size: bytes.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| VocabError::Json(e.to_string()))?;
    check_bounds(&value)?;
    serde_json::from_value(value).map_err(|e| VocabError::Shape(e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// The `@context` the gateway writes on every top-level document: the AS2 and security contexts, then
/// the extension terms it uses (Mastodon's `Hashtag`/`sensitive`, Litepub's `EmojiReact`, Mastodon's
/// `Emoji`, schema.org's `PropertyValue` and `PostalAddress`, Mobilizon's event terms, iCalendar's
/// `status`).
pub fn canonical_context() -> Value {
    let mut ext = Map::new();
    for (k, v) in [
        ("Hashtag", "as:Hashtag"),
        ("sensitive", "as:sensitive"),
        ("manuallyApprovesFollowers", "as:manuallyApprovesFollowers"),
        ("toot", "http://joinmastodon.org/ns#"),
        ("Emoji", "toot:Emoji"),
        ("discoverable", "toot:discoverable"),
        ("blurhash", "toot:blurhash"),
        ("litepub", "http://litepub.social/ns#"),
        ("EmojiReact", "litepub:EmojiReact"),
        ("schema", "http://schema.org#"),
        ("PropertyValue", "schema:PropertyValue"),
        ("value", "schema:value"),
        ("PostalAddress", "schema:PostalAddress"),
        ("address", "schema:address"),
        ("streetAddress", "schema:streetAddress"),
        ("addressLocality", "schema:addressLocality"),
        ("addressRegion", "schema:addressRegion"),
        ("postalCode", "schema:postalCode"),
        ("addressCountry", "schema:addressCountry"),
        ("maximumAttendeeCapacity", "schema:maximumAttendeeCapacity"),
        (
            "remainingAttendeeCapacity",
            "schema:remainingAttendeeCapacity",
        ),
        ("category", "schema:category"),
        ("inLanguage", "schema:inLanguage"),
        ("mz", "https://joinmobilizon.org/ns#"),
        ("joinMode", "mz:joinMode"),
        ("participantCount", "mz:participantCount"),
        (
            "anonymousParticipationEnabled",
            "mz:anonymousParticipationEnabled",
        ),
        ("repliesModerationOption", "mz:repliesModerationOption"),
        ("timezone", "mz:timezone"),
        ("isOnline", "mz:isOnline"),
        ("draft", "mz:draft"),
        ("uuid", "schema:identifier"),
        ("participationMessage", "mz:participationMessage"),
        ("contacts", "mz:contacts"),
        ("ical", "http://www.w3.org/2002/12/cal/ical#"),
    ] {
        ext.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    Value::Array(vec![
        Value::String(AS_CONTEXT.to_owned()),
        Value::String(SECURITY_CONTEXT.to_owned()),
        Value::Object(ext),
    ])
}

/// Serialises a top-level document in canonical form (see the module documentation).
pub fn to_json<T: Serialize>(doc: &T) -> Value {
    let value = serde_json::to_value(doc).unwrap_or(Value::Null);
    match value {
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len() + 1);
            out.insert("@context".to_owned(), canonical_context());
            for (k, v) in map {
                if k != "@context" {
                    out.insert(k, v);
                }
            }
            Value::Object(out)
        }
        other => other,
    }
}

/// [`to_json`] as bytes, ready to send.
pub fn to_vec<T: Serialize>(doc: &T) -> Vec<u8> {
    serde_json::to_vec(&to_json(doc)).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Type names
// ---------------------------------------------------------------------------------------------

macro_rules! kind_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vm])* $variant,)*
            /// Another type name, kept as written.
            Other(String),
        }

        impl $name {
            /// The type name as written in JSON.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => stringify!($variant),)*
                    $name::Other(s) => s.as_str(),
                }
            }

            /// The variant for a type name (`Other` if unknown).
            pub fn from_name(s: &str) -> Self {
                match s {
                    $(stringify!($variant) => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }

            fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                // `type` may be one name or several (`["Note", "schema:Thing"]`): the first known
                // one wins, else the first one.
                let names = type_names(Value::deserialize(d)?).map_err(D::Error::custom)?;
                let kinds: Vec<$name> = names.iter().map(|n| $name::from_name(n)).collect();
                let first_known = kinds.iter().position($name::is_known).unwrap_or(0);
                kinds
                    .into_iter()
                    .nth(first_known)
                    .ok_or_else(|| D::Error::custom("empty type"))
            }
        }
    };
}

/// Type names from a `type` value: a string or an array of strings. A compact IRI prefix (`as:Note`)
/// is dropped.
fn type_names(value: Value) -> Result<Vec<String>, &'static str> {
    let strip = |s: String| match s.strip_prefix("as:") {
        Some(rest) => rest.to_owned(),
        None => s,
    };
    match value {
        Value::String(s) => Ok(vec![strip(s)]),
        Value::Array(a) => {
            let names: Vec<String> = a
                .into_iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(strip(s)),
                    _ => None,
                })
                .collect();
            if names.is_empty() {
                Err("type has no name")
            } else {
                Ok(names)
            }
        }
        _ => Err("type is not a string"),
    }
}

kind_enum!(
    /// The type of a content object.
    ObjectKind {
        /// A short post (what Mastodon writes).
        Note,
        /// A long post with a title.
        Article,
        /// A web page.
        Page,
        /// A poll.
        Question,
        /// An event (Mobilizon, Gancio...).
        Event,
        /// A video (PeerTube).
        Video,
        /// An audio post (Funkwhale).
        Audio,
        /// A picture post (Pixelfed writes `Note` with attachments; some servers use `Image`).
        Image,
    }
);

kind_enum!(
    /// The type of an activity.
    ActivityKind {
        /// Creates an object.
        Create,
        /// Replaces an object.
        Update,
        /// Deletes an object (or an actor).
        Delete,
        /// Asks to follow an actor.
        Follow,
        /// Accepts a `Follow` or a `Join`.
        Accept,
        /// Refuses a `Follow` or a `Join`.
        Reject,
        /// Withdraws an earlier activity.
        Undo,
        /// Likes an object (Misskey puts a reaction in `content`).
        Like,
        /// Reacts with an emoji (Pleroma/Akkoma/Misskey, `litepub:EmojiReact`).
        EmojiReact,
        /// Shares (boosts, repeats) an object.
        Announce,
        /// Joins an event (RSVP yes).
        Join,
        /// Leaves an event (RSVP withdrawn).
        Leave,
        /// Adds an object to a collection.
        Add,
        /// Removes an object from a collection.
        Remove,
        /// Blocks an actor.
        Block,
        /// Reports content.
        Flag,
        /// Moves an account.
        Move,
    }
);

kind_enum!(
    /// The type of an actor.
    ActorKind {
        /// A person.
        Person,
        /// A bot or service.
        Service,
        /// A group.
        Group,
        /// An application (instance actors).
        Application,
        /// An organisation.
        Organization,
    }
);

kind_enum!(
    /// The type of a collection.
    CollectionKind {
        /// An unordered collection.
        Collection,
        /// An ordered collection (outboxes, followers...).
        OrderedCollection,
        /// A page of an unordered collection.
        CollectionPage,
        /// A page of an ordered collection.
        OrderedCollectionPage,
    }
);

kind_enum!(
    /// The type of a tag.
    TagKind {
        /// `#tag` (Mastodon extension `as:Hashtag`).
        Hashtag,
        /// `@user@host`.
        Mention,
        /// A custom emoji (`toot:Emoji`).
        Emoji,
    }
);

kind_enum!(
    /// The type of an attachment.
    AttachmentKind {
        /// A file (Mastodon writes `Document` for media).
        Document,
        /// A picture.
        Image,
        /// A video.
        Video,
        /// A sound.
        Audio,
        /// A link.
        Link,
        /// A profile field (`schema:PropertyValue`).
        PropertyValue,
    }
);

// ---------------------------------------------------------------------------------------------
// Lenient field readers
// ---------------------------------------------------------------------------------------------

/// Reads the URL-like value of one JSON value: a string, an object's `id`, or a `Link`'s `href`.
fn value_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(normalise_public(s)),
        Value::Object(o) => o
            .get("id")
            .and_then(Value::as_str)
            .or_else(|| o.get("href").and_then(Value::as_str))
            .map(normalise_public),
        _ => None,
    }
}

fn normalise_public(s: &str) -> String {
    match s {
        "as:Public" | "Public" => PUBLIC.to_owned(),
        other => other.to_owned(),
    }
}

/// One-or-many references (strings, objects with `id`, links with `href`) -> their ids. Values
/// without an id are skipped.
fn de_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(a) => a.iter().filter_map(value_id).collect(),
        Value::Null => Vec::new(),
        v => value_id(&v).into_iter().collect(),
    })
}

/// A single reference (first of an array).
fn de_opt_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(a) => a.iter().find_map(value_id),
        v => value_id(&v),
    })
}

/// A required single reference.
fn de_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    de_opt_id(d)?.ok_or_else(|| D::Error::custom("expected a URL or an object with an id"))
}

/// One-or-many values of a type; elements that do not parse are skipped (a list of tags with one
/// strange tag must not lose the others).
fn de_many<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    let values = match Value::deserialize(d)? {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        v => vec![v],
    };
    Ok(values
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

/// A single value of a type (first of an array that parses); a value that does not parse is
/// skipped.
fn de_opt_one<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    Ok(de_many::<D, T>(d)?.into_iter().next())
}

/// A string, or the first string of an array; other values are ignored.
fn de_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Array(a) => a.into_iter().find_map(|v| match v {
            Value::String(s) => Some(s),
            _ => None,
        }),
        _ => None,
    })
}

/// A language map (`contentMap`, `nameMap`): string values are kept, others dropped.
fn de_lang_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Object(o) => o
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    })
}

/// A number, or a numeric string; other values read as absent.
fn de_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A float, or a numeric string.
fn de_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    })
}

/// A boolean (or `"true"`/`"false"`).
fn de_opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => Some(b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    })
}

/// An RFC 3339 date-time; a present value that is not one is an error, `null` is absent.
fn de_opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => DateTime::parse_from_rfc3339(s.trim())
            .map(Some)
            .map_err(|e| D::Error::custom(format!("bad date {s:?}: {e}"))),
    }
}

fn ser_opt_date<S: Serializer>(
    date: &Option<DateTime<FixedOffset>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match date {
        Some(d) => s.serialize_str(&d.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        None => s.serialize_none(),
    }
}

/// One value as itself, several as an array.
fn ser_one_or_many<S: Serializer, T: Serialize>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
    match v {
        [one] => one.serialize(s),
        many => many.serialize(s),
    }
}

// ---------------------------------------------------------------------------------------------
// Tags and attachments
// ---------------------------------------------------------------------------------------------

/// A tag of an object: `Hashtag`, `Mention`, custom `Emoji`, or another type kept by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tag {
    /// The tag's type.
    #[serde(rename = "type")]
    pub kind: TagKind,
    /// The tag's id (custom emojis have one).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub id: Option<String>,
    /// The link: a hashtag's page, a mentioned actor's id.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub href: Option<String>,
    /// The text: `#tag`, `@user@host`, `:emoji:`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub name: Option<String>,
    /// A custom emoji's picture.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_one"
    )]
    pub icon: Option<Box<Attachment>>,
}

impl Tag {
    /// A hashtag; `name` is written with its `#`.
    pub fn hashtag(name: &str, href: Option<String>) -> Self {
        Tag {
            kind: TagKind::Hashtag,
            id: None,
            href,
            name: Some(format!("#{}", name.trim_start_matches('#'))),
            icon: None,
        }
    }

    /// A mention of an actor.
    pub fn mention(actor: impl Into<String>, name: Option<String>) -> Self {
        Tag {
            kind: TagKind::Mention,
            id: None,
            href: Some(actor.into()),
            name,
            icon: None,
        }
    }
}

/// An attachment (media file, link, profile field) or an actor's icon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// The attachment's type.
    #[serde(rename = "type")]
    pub kind: AttachmentKind,
    /// Where the file is (a string, a `Link`'s `href`, or the first of several).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub url: Option<String>,
    /// A `Link`'s target.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub href: Option<String>,
    /// The media type.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub media_type: Option<String>,
    /// A description (alt text), or a profile field's name.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub name: Option<String>,
    /// A profile field's value (HTML).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub value: Option<String>,
    /// Width in pixels.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_u64"
    )]
    pub width: Option<u64>,
    /// Height in pixels.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_u64"
    )]
    pub height: Option<u64>,
    /// Mastodon's blurhash preview.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub blurhash: Option<String>,
}

impl Attachment {
    /// The file's URL: `url`, else `href`.
    pub fn location(&self) -> Option<&str> {
        self.url.as_deref().or(self.href.as_deref())
    }
}

/// The source text an object was written in (Misskey, Pleroma: Markdown or MFM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// The text.
    pub content: String,
    /// Its media type (`text/markdown`, `text/x.misskeymarkdown`...).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub media_type: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Places
// ---------------------------------------------------------------------------------------------

/// A schema.org `PostalAddress`, as Mobilizon writes event addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostalAddress {
    /// `PostalAddress`.
    #[serde(
        rename = "type",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub kind: Option<String>,
    /// Street and number.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub street_address: Option<String>,
    /// Town.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub address_locality: Option<String>,
    /// Region.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub address_region: Option<String>,
    /// Postal code.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub postal_code: Option<String>,
    /// Country (name or code).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub address_country: Option<String>,
}

/// An address: a `PostalAddress` or free text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Address {
    /// Free text.
    Text(String),
    /// A structured address.
    Postal(PostalAddress),
}

/// A `Place` (event locations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Place {
    /// The place's id.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub id: Option<String>,
    /// `Place`.
    #[serde(rename = "type", default = "place_kind")]
    pub kind: String,
    /// The place's name.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub name: Option<String>,
    /// Latitude (decimal degrees).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_f64"
    )]
    pub latitude: Option<f64>,
    /// Longitude (decimal degrees).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_f64"
    )]
    pub longitude: Option<f64>,
    /// The address.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_one"
    )]
    pub address: Option<Address>,
}

fn place_kind() -> String {
    "Place".to_owned()
}

impl Place {
    /// A named place.
    pub fn named(name: impl Into<String>) -> Self {
        Place {
            id: None,
            kind: place_kind(),
            name: Some(name.into()),
            latitude: None,
            longitude: None,
            address: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Content objects
// ---------------------------------------------------------------------------------------------

/// A content object: `Note`, `Article`, `Page`, `Question`, `Event`, `Video`...
///
/// Mobilizon's event properties are typed too (empty on other objects).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Object {
    /// The JSON-LD context as received (replaced by [`canonical_context`] on output).
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The object's id (its URL).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub id: Option<String>,
    /// The object's type.
    #[serde(rename = "type")]
    pub kind: ObjectKind,
    /// The authors (actor ids).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_ids",
        serialize_with = "ser_one_or_many"
    )]
    pub attributed_to: Vec<String>,
    /// The title.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub name: Option<String>,
    /// The title per language.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de_lang_map"
    )]
    pub name_map: BTreeMap<String, String>,
    /// The summary (Mastodon: the content warning).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub summary: Option<String>,
    /// The summary per language.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de_lang_map"
    )]
    pub summary_map: BTreeMap<String, String>,
    /// The body (HTML unless `mediaType` says otherwise).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub content: Option<String>,
    /// The body per language.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "de_lang_map"
    )]
    pub content_map: BTreeMap<String, String>,
    /// The media type of `content` (absent: HTML).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub media_type: Option<String>,
    /// The source text.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_one"
    )]
    pub source: Option<Source>,
    /// Publication date.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_date",
        serialize_with = "ser_opt_date"
    )]
    pub published: Option<DateTime<FixedOffset>>,
    /// Last update.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_date",
        serialize_with = "ser_opt_date"
    )]
    pub updated: Option<DateTime<FixedOffset>>,
    /// Primary audience.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_ids"
    )]
    pub to: Vec<String>,
    /// Secondary audience.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_ids"
    )]
    pub cc: Vec<String>,
    /// Hidden primary audience (never written).
    #[serde(default, skip_serializing, deserialize_with = "de_ids")]
    pub bto: Vec<String>,
    /// Hidden secondary audience (never written).
    #[serde(default, skip_serializing, deserialize_with = "de_ids")]
    pub bcc: Vec<String>,
    /// The audience (groups).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_ids"
    )]
    pub audience: Vec<String>,
    /// The object this one answers.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub in_reply_to: Option<String>,
    /// Web pages of the object (strings or `Link`s).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_ids",
        serialize_with = "ser_one_or_many"
    )]
    pub url: Vec<String>,
    /// Hashtags, mentions, custom emojis.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_many"
    )]
    pub tag: Vec<Tag>,
    /// Media and links.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_many"
    )]
    pub attachment: Vec<Attachment>,
    /// Marked sensitive (media hidden by default).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_bool"
    )]
    pub sensitive: Option<bool>,
    /// The replies collection (its id).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub replies: Option<String>,
    /// Event: start.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_date",
        serialize_with = "ser_opt_date"
    )]
    pub start_time: Option<DateTime<FixedOffset>>,
    /// Event: end.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_date",
        serialize_with = "ser_opt_date"
    )]
    pub end_time: Option<DateTime<FixedOffset>>,
    /// Event: where.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_one"
    )]
    pub location: Option<Place>,
    /// Event: IANA time zone (Mobilizon).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub timezone: Option<String>,
    /// Event: `free`, `restricted` or `invite` (Mobilizon).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub join_mode: Option<String>,
    /// Event: participants so far.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_u64"
    )]
    pub participant_count: Option<u64>,
    /// Event: capacity.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_u64"
    )]
    pub maximum_attendee_capacity: Option<u64>,
    /// Event: places left.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_u64"
    )]
    pub remaining_attendee_capacity: Option<u64>,
    /// Event: anonymous participation allowed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_bool"
    )]
    pub anonymous_participation_enabled: Option<bool>,
    /// Event: comment moderation (`allow_all`, `closed`...).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub replies_moderation_option: Option<String>,
    /// Event: online only.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_bool"
    )]
    pub is_online: Option<bool>,
    /// Event: `CONFIRMED`, `TENTATIVE` or `CANCELLED` (`ical:status`).
    #[serde(
        rename = "ical:status",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub ical_status: Option<String>,
    /// Event: a draft (not published yet).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_bool"
    )]
    pub draft: Option<bool>,
    /// Event: Mobilizon's UUID.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub uuid: Option<String>,
    /// Event: category (Mobilizon's `MEETING`, `THEATRE`...).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub category: Option<String>,
    /// Event: language.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub in_language: Option<String>,
    /// Event: contacts (actor ids).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_ids"
    )]
    pub contacts: Vec<String>,
}

impl Object {
    /// An empty object of a type.
    pub fn new(kind: ObjectKind) -> Self {
        Object {
            context: None,
            id: None,
            kind,
            attributed_to: Vec::new(),
            name: None,
            name_map: BTreeMap::new(),
            summary: None,
            summary_map: BTreeMap::new(),
            content: None,
            content_map: BTreeMap::new(),
            media_type: None,
            source: None,
            published: None,
            updated: None,
            to: Vec::new(),
            cc: Vec::new(),
            bto: Vec::new(),
            bcc: Vec::new(),
            audience: Vec::new(),
            in_reply_to: None,
            url: Vec::new(),
            tag: Vec::new(),
            attachment: Vec::new(),
            sensitive: None,
            replies: None,
            start_time: None,
            end_time: None,
            location: None,
            timezone: None,
            join_mode: None,
            participant_count: None,
            maximum_attendee_capacity: None,
            remaining_attendee_capacity: None,
            anonymous_participation_enabled: None,
            replies_moderation_option: None,
            is_online: None,
            ical_status: None,
            draft: None,
            uuid: None,
            category: None,
            in_language: None,
            contacts: Vec::new(),
        }
    }

    /// Whether the object is addressed to the public collection.
    pub fn is_public(&self) -> bool {
        self.to.iter().chain(&self.cc).any(|a| a == PUBLIC)
    }

    /// The first author.
    pub fn author(&self) -> Option<&str> {
        self.attributed_to.first().map(String::as_str)
    }
}

/// A deleted object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tombstone {
    /// The id the object had.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub id: Option<String>,
    /// `Tombstone`.
    #[serde(rename = "type", default = "tombstone_kind")]
    pub kind: String,
    /// The type the object had.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub former_type: Option<String>,
    /// When it was deleted.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_date",
        serialize_with = "ser_opt_date"
    )]
    pub deleted: Option<DateTime<FixedOffset>>,
}

fn tombstone_kind() -> String {
    "Tombstone".to_owned()
}

impl Tombstone {
    /// The tombstone of an object.
    pub fn of(id: impl Into<String>, former_type: Option<&str>) -> Self {
        Tombstone {
            id: Some(id.into()),
            kind: tombstone_kind(),
            former_type: former_type.map(str::to_owned),
            deleted: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Actors
// ---------------------------------------------------------------------------------------------

/// An actor's public key (`publicKey` of the security vocabulary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// The key's id (`<actor>#main-key`).
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// The actor owning the key.
    #[serde(deserialize_with = "de_id")]
    pub owner: String,
    /// The SPKI public key, PEM-encoded.
    pub public_key_pem: String,
}

/// An actor's endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// The server-wide inbox.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub shared_inbox: Option<String>,
}

/// An actor: `Person`, `Service`, `Group`, `Application`, `Organization`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// The JSON-LD context as received.
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The actor's id.
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// The actor's type.
    #[serde(rename = "type")]
    pub kind: ActorKind,
    /// The user name (`alice` of `@alice@host`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub preferred_username: Option<String>,
    /// The display name.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub name: Option<String>,
    /// The biography (HTML).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub summary: Option<String>,
    /// The inbox (required).
    #[serde(deserialize_with = "de_id")]
    pub inbox: String,
    /// The outbox.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub outbox: Option<String>,
    /// The followers collection.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub followers: Option<String>,
    /// The following collection.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub following: Option<String>,
    /// Endpoints (the shared inbox).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_one"
    )]
    pub endpoints: Option<Endpoints>,
    /// The HTTP-signature key (the first, if several are given).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_one"
    )]
    pub public_key: Option<PublicKey>,
    /// The avatar.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_one"
    )]
    pub icon: Option<Attachment>,
    /// The header picture.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_one"
    )]
    pub image: Option<Attachment>,
    /// The profile page.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub url: Option<String>,
    /// Follows need approval.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_bool"
    )]
    pub manually_approves_followers: Option<bool>,
    /// Listed in directories.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_bool"
    )]
    pub discoverable: Option<bool>,
    /// Account creation.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_date",
        serialize_with = "ser_opt_date"
    )]
    pub published: Option<DateTime<FixedOffset>>,
    /// Profile fields.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_many"
    )]
    pub attachment: Vec<Attachment>,
}

impl Actor {
    /// An actor with the required properties; the rest empty.
    pub fn new(kind: ActorKind, id: impl Into<String>, inbox: impl Into<String>) -> Self {
        Actor {
            context: None,
            id: id.into(),
            kind,
            preferred_username: None,
            name: None,
            summary: None,
            inbox: inbox.into(),
            outbox: None,
            followers: None,
            following: None,
            endpoints: None,
            public_key: None,
            icon: None,
            image: None,
            url: None,
            manually_approves_followers: None,
            discoverable: None,
            published: None,
            attachment: Vec::new(),
        }
    }

    /// Where to deliver: the shared inbox if there is one, else the inbox.
    pub fn delivery_inbox(&self) -> &str {
        self.endpoints
            .as_ref()
            .and_then(|e| e.shared_inbox.as_deref())
            .unwrap_or(&self.inbox)
    }
}

// ---------------------------------------------------------------------------------------------
// Collections
// ---------------------------------------------------------------------------------------------

/// A collection or a collection page (`OrderedCollection`, `OrderedCollectionPage`...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Collection {
    /// The JSON-LD context as received.
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The collection's (or page's) id.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub id: Option<String>,
    /// The type.
    #[serde(rename = "type")]
    pub kind: CollectionKind,
    /// How many items the whole collection has.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_u64"
    )]
    pub total_items: Option<u64>,
    /// The first page (an id or an embedded page).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_ref"
    )]
    pub first: Option<ObjectRef>,
    /// The last page.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub last: Option<String>,
    /// The next page.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub next: Option<String>,
    /// The previous page.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub prev: Option<String>,
    /// The collection a page belongs to.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub part_of: Option<String>,
    /// Items of an ordered collection (or page).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_refs"
    )]
    pub ordered_items: Vec<ObjectRef>,
    /// Items of an unordered collection (or page).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_refs"
    )]
    pub items: Vec<ObjectRef>,
}

impl Collection {
    /// An empty collection of a kind.
    pub fn new(kind: CollectionKind, id: Option<String>) -> Self {
        Collection {
            context: None,
            id,
            kind,
            total_items: None,
            first: None,
            last: None,
            next: None,
            prev: None,
            part_of: None,
            ordered_items: Vec::new(),
            items: Vec::new(),
        }
    }

    /// The items, ordered or not.
    pub fn all_items(&self) -> impl Iterator<Item = &ObjectRef> {
        self.ordered_items.iter().chain(&self.items)
    }
}

// ---------------------------------------------------------------------------------------------
// Activities
// ---------------------------------------------------------------------------------------------

/// An activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// The JSON-LD context as received.
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The activity's id.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_id"
    )]
    pub id: Option<String>,
    /// The activity's type.
    #[serde(rename = "type")]
    pub kind: ActivityKind,
    /// Who acts (required; an embedded actor is read as its id).
    #[serde(deserialize_with = "de_id")]
    pub actor: String,
    /// What is acted upon (an id or an embedded object).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_ref"
    )]
    pub object: Option<ObjectRef>,
    /// The target (a collection, an event...).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_ref"
    )]
    pub target: Option<ObjectRef>,
    /// `EmojiReact` (and Misskey's `Like`): the emoji; other activities: a text.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub content: Option<String>,
    /// Custom emojis of a reaction.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_many"
    )]
    pub tag: Vec<Tag>,
    /// Primary audience.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_ids"
    )]
    pub to: Vec<String>,
    /// Secondary audience.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_ids"
    )]
    pub cc: Vec<String>,
    /// The audience (groups).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de_ids"
    )]
    pub audience: Vec<String>,
    /// When it happened.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_date",
        serialize_with = "ser_opt_date"
    )]
    pub published: Option<DateTime<FixedOffset>>,
    /// Mobilizon's `Join`: the message to the organiser.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de_opt_string"
    )]
    pub participation_message: Option<String>,
}

impl Activity {
    /// An activity of `kind` by `actor` on `object`.
    pub fn new(
        kind: ActivityKind,
        id: Option<String>,
        actor: impl Into<String>,
        object: Option<ObjectRef>,
    ) -> Self {
        Activity {
            context: None,
            id,
            kind,
            actor: actor.into(),
            object,
            target: None,
            content: None,
            tag: Vec::new(),
            to: Vec::new(),
            cc: Vec::new(),
            audience: Vec::new(),
            published: None,
            participation_message: None,
        }
    }

    /// The id of the object (embedded or referenced).
    pub fn object_id(&self) -> Option<&str> {
        self.object.as_ref().and_then(ObjectRef::id)
    }

    /// The embedded object, if it is embedded.
    pub fn embedded_object(&self) -> Option<&AnyObject> {
        match &self.object {
            Some(ObjectRef::Embedded(o)) => Some(o),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Any object, references
// ---------------------------------------------------------------------------------------------

/// An object whose type this module does not model: its type name and id are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unknown {
    /// The type name (first of several).
    #[serde(rename = "type")]
    pub kind: String,
    /// The id, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Any ActivityStreams object, dispatched on its `type`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum AnyObject {
    /// An activity.
    Activity(Box<Activity>),
    /// A content object.
    Object(Box<Object>),
    /// An actor.
    Actor(Box<Actor>),
    /// A collection or a page.
    Collection(Box<Collection>),
    /// A deleted object.
    Tombstone(Tombstone),
    /// A place.
    Place(Box<Place>),
    /// A type this module does not model.
    Unknown(Unknown),
}

impl AnyObject {
    /// Reads a JSON value (bounds are the caller's business: use [`parse_value`] for untrusted input).
    pub fn from_value(value: Value) -> Result<Self, VocabError> {
        let Value::Object(map) = &value else {
            return Err(VocabError::NoType("not a JSON object"));
        };
        let names = match map.get("type") {
            Some(t) => type_names(t.clone()).map_err(VocabError::NoType)?,
            None => return Err(VocabError::NoType("no type property")),
        };
        let shape = |e: serde_json::Error| VocabError::Shape(e.to_string());
        for name in &names {
            let n = name.as_str();
            if ActivityKind::from_name(n).is_known() {
                return Ok(AnyObject::Activity(Box::new(
                    serde_json::from_value(value).map_err(shape)?,
                )));
            }
            if ObjectKind::from_name(n).is_known() {
                return Ok(AnyObject::Object(Box::new(
                    serde_json::from_value(value).map_err(shape)?,
                )));
            }
            if ActorKind::from_name(n).is_known() {
                return Ok(AnyObject::Actor(Box::new(
                    serde_json::from_value(value).map_err(shape)?,
                )));
            }
            if CollectionKind::from_name(n).is_known() {
                return Ok(AnyObject::Collection(Box::new(
                    serde_json::from_value(value).map_err(shape)?,
                )));
            }
            match n {
                "Tombstone" => {
                    return Ok(AnyObject::Tombstone(
                        serde_json::from_value(value).map_err(shape)?,
                    ))
                }
                "Place" => {
                    return Ok(AnyObject::Place(Box::new(
                        serde_json::from_value(value).map_err(shape)?,
                    )))
                }
                _ => {}
            }
        }
        // Unknown type. An object with an `actor` is an activity of another type (Add, Move...).
        if map.contains_key("actor") {
            if let Ok(a) = serde_json::from_value::<Activity>(value.clone()) {
                return Ok(AnyObject::Activity(Box::new(a)));
            }
        }
        Ok(AnyObject::Unknown(Unknown {
            kind: names.into_iter().next().unwrap_or_default(),
            id: map.get("id").and_then(value_id),
        }))
    }

    /// The object's id.
    pub fn id(&self) -> Option<&str> {
        match self {
            AnyObject::Activity(a) => a.id.as_deref(),
            AnyObject::Object(o) => o.id.as_deref(),
            AnyObject::Actor(a) => Some(&a.id),
            AnyObject::Collection(c) => c.id.as_deref(),
            AnyObject::Tombstone(t) => t.id.as_deref(),
            AnyObject::Place(p) => p.id.as_deref(),
            AnyObject::Unknown(u) => u.id.as_deref(),
        }
    }

    /// The type name.
    pub fn type_name(&self) -> &str {
        match self {
            AnyObject::Activity(a) => a.kind.as_str(),
            AnyObject::Object(o) => o.kind.as_str(),
            AnyObject::Actor(a) => a.kind.as_str(),
            AnyObject::Collection(c) => c.kind.as_str(),
            AnyObject::Tombstone(_) => "Tombstone",
            AnyObject::Place(_) => "Place",
            AnyObject::Unknown(u) => &u.kind,
        }
    }
}

impl<'de> Deserialize<'de> for AnyObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        AnyObject::from_value(Value::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// A reference to an object: its id, or the object embedded.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectRef {
    /// Referenced by id.
    Id(String),
    /// Embedded.
    Embedded(Box<AnyObject>),
}

impl ObjectRef {
    /// The id (of the embedded object, if embedded).
    pub fn id(&self) -> Option<&str> {
        match self {
            ObjectRef::Id(id) => Some(id),
            ObjectRef::Embedded(o) => o.id(),
        }
    }

    /// Embeds an object.
    pub fn embed(object: AnyObject) -> Self {
        ObjectRef::Embedded(Box::new(object))
    }

    /// A reference from a JSON value: a string, a `Link`, an object with a `type`; `None` for other
    /// values.
    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(ObjectRef::Id(normalise_public(&s))),
            Value::Object(ref o) if o.contains_key("type") => {
                let is_link = o.get("type").and_then(Value::as_str) == Some("Link");
                if is_link {
                    return value_id(&value).map(ObjectRef::Id);
                }
                match AnyObject::from_value(value.clone()) {
                    Ok(obj) => Some(ObjectRef::Embedded(Box::new(obj))),
                    // A broken embedded object still names its target.
                    Err(_) => value_id(&value).map(ObjectRef::Id),
                }
            }
            Value::Object(_) => value_id(&value).map(ObjectRef::Id),
            _ => None,
        }
    }
}

impl Serialize for ObjectRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ObjectRef::Id(id) => s.serialize_str(id),
            ObjectRef::Embedded(o) => o.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ObjectRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ObjectRef::from_value(Value::deserialize(d)?)
            .ok_or_else(|| D::Error::custom("expected an id or an object"))
    }
}

impl From<String> for ObjectRef {
    fn from(id: String) -> Self {
        ObjectRef::Id(id)
    }
}

impl From<&str> for ObjectRef {
    fn from(id: &str) -> Self {
        ObjectRef::Id(id.to_owned())
    }
}

fn de_opt_ref<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ObjectRef>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(a) => a.into_iter().find_map(ObjectRef::from_value),
        v => ObjectRef::from_value(v),
    })
}

fn de_refs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ObjectRef>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(a) => a.into_iter().filter_map(ObjectRef::from_value).collect(),
        Value::Null => Vec::new(),
        v => ObjectRef::from_value(v).into_iter().collect(),
    })
}

#[cfg(test)]
#[path = "vocab_tests.rs"]
pub(crate) mod tests;
