//! XMPP entities (JID + pubsub node) <-> ActivityPub actor handles and gateway URLs.
//!
//! # Handles
//!
//! The mapping is Libervia's (the seed project), kept exactly compatible so that handles already known to
//! the fediverse keep resolving:
//!
//! * `alice@example.org`: the JID `alice@example.org`, default microblog node
//!   ([`DEFAULT_MICROBLOG_NODE`] is the same as "no node in the handle").
//! * `blog@pubsub.example.org`: when `pubsub.example.org` is a pubsub *service* (not PEP) the local part is
//!   the node name: service `pubsub.example.org`, node `blog`. Only a service discovery can tell the two
//!   cases apart, so decoding is two-step: [`HandleMapper::decode`] gives a [`DecodedHandle`], and
//!   [`DecodedHandle::resolve`] takes the answer of that check.
//! * `tata---louise@example.org`: node `tata` of `louise@example.org` (node before `---`).
//! * A user part (or node) that does not match `^[a-zA-Z0-9_-]+$`, starts with `___` or contains `---` is
//!   *period-encoded* and the whole user part is prefixed with `___`: percent-encoding (UTF-8, every byte
//!   but `A-Za-z0-9_.-~`), then `---` -> `.2d.2d.2d`, `___` -> `.5f.5f.5f`, `.` -> `.2e`, `~` -> `.7e`, and
//!   finally `%` -> `.`. Mastodon forbids `~`, `%` and `.`-free escapes in usernames, hence the period.
//!   Decoding accepts hex digits of either case.
//! * A JID on another server is mapped on the gateway's own domain with its full bare JID as user:
//!   `___toto.40example.net@ap.example.org`.
//!
//! One deliberate difference with Libervia's encoder, invisible to its decoder: when a node is present and
//! the user part starts with `-`, that `-` is written `.2d` (Libervia wrote `node----user`, which its own
//! `rsplit("---")` decodes wrongly), and a JID without a local part and a node that needs encoding gives
//! `___<node>@service` (Libervia raised an error there, though its decoder reads that form).
//!
//! # URLs
//!
//! `{base}/actor/{handle}` (also `inbox`, `outbox`, `followers`, `following`), `{base}/shared_inbox`,
//! `{base}/item/{handle}/{id}` where `{base}` is e.g. `https://ap.example.org/_ap`. Path segments only use
//! RFC 3986 unreserved characters plus the literal `@` of the handle (a `pchar`, left alone by URL
//! normalisers): Libervia percent-encoded that `@` (`%40`), and Mastodon normalises the URL it fetched to
//! `@`, then refuses the object because its `id` differs. Item ids outside `[A-Za-z0-9_-]` are
//! period-encoded with the `___` prefix like user parts. When parsing, percent-escapes are decoded first,
//! so Libervia's old `%40` URLs still resolve.

use jid::BareJid;

use crate::error::HandleError;

/// The XEP-0277 microblog node: a handle without a node means this node.
pub const DEFAULT_MICROBLOG_NODE: &str = "urn:xmpp:microblog:0";

/// Longest handle (or path segment) accepted for decoding, in bytes.
pub const MAX_HANDLE_LEN: usize = 4096;

const ENCODED_PREFIX: &str = "___";
const NODE_SEPARATOR: &str = "---";

/// True if `text` must be period-encoded to appear in a handle (Libervia's rule).
pub fn must_encode(text: &str) -> bool {
    text.is_empty()
        || !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        || text.starts_with(ENCODED_PREFIX)
        || text.contains(NODE_SEPARATOR)
}

/// Period-encodes `text` exactly like Libervia (uppercase hex from percent-encoding, lowercase for the
/// `-`, `_`, `.` and `~` substitutions).
pub fn period_encode(text: &str) -> String {
    // Step 1: percent-encoding of everything but unreserved characters, uppercase hex (Python's quote).
    let mut quoted = String::with_capacity(text.len() * 3);
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            quoted.push(char::from(b));
        } else {
            quoted.push('%');
            quoted.push(hex_digit(b >> 4, true));
            quoted.push(hex_digit(b & 0xf, true));
        }
    }
    // Step 2: Libervia's substitutions, in its order (each a left-to-right, non-overlapping replace).
    quoted
        .replace("---", "%2d%2d%2d")
        .replace("___", "%5f%5f%5f")
        .replace('.', "%2e")
        .replace('~', "%7e")
        .replace('%', ".")
}

/// Decodes a period-encoded text: `.` and two hex digits (either case) is a byte, any other `.` is kept
/// as is (Libervia's decoder does the same, so hand-typed handles like `___toto.40example.net` work).
/// Only `[A-Za-z0-9_.-]` may appear; the bytes must form UTF-8.
pub fn period_decode(text: &str) -> Result<String, HandleError> {
    decode_escapes(text, b'.', |b| {
        b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
    })
    .and_then(|v| String::from_utf8(v).map_err(|_| HandleError::InvalidUtf8))
}

fn hex_digit(v: u8, upper: bool) -> char {
    let d = b"0123456789abcdef"[usize::from(v & 0xf)];
    char::from(if upper { d.to_ascii_uppercase() } else { d })
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_escapes(
    text: &str,
    escape: u8,
    allowed: impl Fn(u8) -> bool,
) -> Result<Vec<u8>, HandleError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == escape {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            match (hi, lo) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                }
                _ if escape == b'.' => {
                    out.push(b'.');
                    i += 1;
                }
                _ => return Err(HandleError::BadPercentEscape(i)),
            }
        } else if allowed(b) {
            out.push(b);
            i += 1;
        } else {
            let c = text
                .get(i..)
                .and_then(|s| s.chars().next())
                .unwrap_or('\u{fffd}');
            return Err(HandleError::ForbiddenChar(c));
        }
    }
    Ok(out)
}

/// What a handle designates on the XMPP side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmppTarget {
    /// The entity: a user JID (PEP) or a pubsub service.
    pub jid: BareJid,
    /// The node; `None` means the default microblog node (and the other nodes the gateway maps).
    pub node: Option<String>,
}

/// A handle decoded, before the "is this domain a pubsub service?" check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedHandle {
    /// The user part (decoded); `None` when it was empty (`node---@domain`).
    pub username: Option<String>,
    /// The domain part (after moving a non-local JID's domain out of the user part).
    pub domain: String,
    /// The node before `---` (decoded), if any.
    pub node: Option<String>,
}

impl DecodedHandle {
    /// True when [`DecodedHandle::resolve`] needs to know whether [`DecodedHandle::domain`] is a pubsub
    /// service (no node in the handle and a user part present): ask with a disco#info (identity
    /// `pubsub/service` and not `pubsub/pep`), as Libervia does.
    pub fn needs_service_check(&self) -> bool {
        self.node.is_none() && self.username.is_some()
    }

    /// The XMPP entity and node. `domain_is_pubsub_service` is only used when
    /// [`DecodedHandle::needs_service_check`] is true: then the user part is the node name.
    pub fn resolve(self, domain_is_pubsub_service: bool) -> Result<XmppTarget, HandleError> {
        let (user, node) = match (self.username, self.node) {
            (Some(user), None) if domain_is_pubsub_service => (None, Some(user)),
            (user, node) => (user, node),
        };
        let jid_s = match &user {
            Some(user) => format!("{user}@{}", self.domain),
            None => self.domain.clone(),
        };
        let jid = BareJid::new(&jid_s).map_err(|_| HandleError::InvalidJid(jid_s.clone()))?;
        if jid.node().is_none() && node.is_none() {
            return Err(HandleError::NoUserPart);
        }
        Ok(XmppTarget { jid, node })
    }
}

/// Maps JIDs and nodes to handles and back for one gateway deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleMapper {
    local_domain: String,
    gateway_domain: String,
}

impl HandleMapper {
    /// `local_domain`: the XMPP server the gateway serves (`example.org`; JIDs on it and its subdomains get
    /// handles on their own domain). `gateway_domain`: the gateway component's domain (`ap.example.org`),
    /// used for JIDs of other servers.
    pub fn new(local_domain: &str, gateway_domain: &str) -> Self {
        Self {
            local_domain: local_domain.trim_end_matches('.').to_ascii_lowercase(),
            gateway_domain: gateway_domain.trim_end_matches('.').to_ascii_lowercase(),
        }
    }

    /// The gateway component's domain.
    pub fn gateway_domain(&self) -> &str {
        &self.gateway_domain
    }

    /// True when `domain` is the local domain or one of its subdomains.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        domain == self.local_domain
            || domain
                .strip_suffix(&self.local_domain)
                .is_some_and(|rest| rest.ends_with('.'))
    }

    /// The handle (`user@domain`, without `acct:` or a leading `@`) of `jid`'s `node`.
    ///
    /// `node` `None` or [`DEFAULT_MICROBLOG_NODE`] on a JID with a local part means the default blog.
    /// A JID without a local part (a pubsub service) needs a node, which becomes the user part.
    pub fn encode(&self, jid: &BareJid, node: Option<&str>) -> Result<String, HandleError> {
        let domain = jid.domain().as_str();
        let local = self.is_local_domain(domain);
        let (user, node): (String, Option<&str>) = match jid.node() {
            Some(n) => {
                let node = node.filter(|n| !n.is_empty() && *n != DEFAULT_MICROBLOG_NODE);
                let user = if local {
                    n.as_str().to_owned()
                } else {
                    jid.as_str().to_owned()
                };
                (user, node)
            }
            None => match node.filter(|n| !n.is_empty()) {
                // A node containing `@` would be read back as a JID: keep it before `---`, empty user.
                Some(node) if local && node.contains('@') => (String::new(), Some(node)),
                Some(node) if local => (node.to_owned(), None),
                Some(node) => (domain.to_owned(), Some(node)),
                None => return Err(HandleError::NoUserPart),
            },
        };
        let host = if local {
            domain
        } else {
            self.gateway_domain.as_str()
        };
        let user_starts_with_dash = user.starts_with('-');
        let encode = node.is_some_and(must_encode)
            || (!user.is_empty() && must_encode(&user))
            || (node.is_some() && user_starts_with_dash);
        let mut out = String::new();
        if encode {
            out.push_str(ENCODED_PREFIX);
            if let Some(node) = node {
                out.push_str(&period_encode(node));
                out.push_str(NODE_SEPARATOR);
            }
            let enc = period_encode(&user);
            match enc.strip_prefix('-') {
                Some(rest) if node.is_some() => {
                    out.push_str(".2d");
                    out.push_str(rest);
                }
                _ => out.push_str(&enc),
            }
        } else {
            if let Some(node) = node {
                out.push_str(node);
                out.push_str(NODE_SEPARATOR);
            }
            out.push_str(&user);
        }
        out.push('@');
        out.push_str(host);
        Ok(out)
    }

    /// Decodes a handle (`user@domain`; an `acct:` prefix or a leading `@` are accepted).
    pub fn decode(&self, handle: &str) -> Result<DecodedHandle, HandleError> {
        if handle.len() > MAX_HANDLE_LEN {
            return Err(HandleError::TooLong {
                max: MAX_HANDLE_LEN,
            });
        }
        let handle = handle.strip_prefix("acct:").unwrap_or(handle);
        let handle = handle.strip_prefix('@').unwrap_or(handle);
        let ats = handle.matches('@').count();
        if ats != 1 {
            return Err(HandleError::AtCount(ats));
        }
        let (encoded, handle) = match handle.strip_prefix(ENCODED_PREFIX) {
            Some(rest) => (true, rest),
            None => (false, handle),
        };
        let (user, domain) = handle.split_once('@').ok_or(HandleError::AtCount(0))?;
        if domain.is_empty() {
            return Err(HandleError::Empty);
        }
        let (node, user) = match user.rsplit_once(NODE_SEPARATOR) {
            Some((node, user)) => (Some(node), user),
            None => (None, user),
        };
        let (node, mut user) = if encoded {
            (node.map(period_decode).transpose()?, period_decode(user)?)
        } else {
            (node.map(str::to_owned), user.to_owned())
        };
        let node = node.filter(|n| !n.is_empty());
        let mut domain = domain.to_owned();
        if let Some((u, d)) = user.rsplit_once('@') {
            // A JID of another server, mapped on the gateway's domain.
            let (u, d) = (u.to_owned(), d.to_owned());
            user = u;
            domain = d;
        } else if !user.is_empty()
            && domain.eq_ignore_ascii_case(&self.gateway_domain)
            && user.contains('.')
        {
            // A service JID (no local part) of another server, mapped on the gateway's domain.
            domain = std::mem::take(&mut user);
        }
        if domain.is_empty() {
            return Err(HandleError::Empty);
        }
        let username = Some(user).filter(|u| !u.is_empty());
        if username.is_none() && node.is_none() {
            return Err(HandleError::Empty);
        }
        Ok(DecodedHandle {
            username,
            domain,
            node,
        })
    }
}

/// A gateway endpoint that takes a handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorEndpoint {
    /// The actor document.
    Actor,
    /// The actor's inbox.
    Inbox,
    /// The actor's outbox.
    Outbox,
    /// The actor's followers collection.
    Followers,
    /// The actor's following collection.
    Following,
}

impl ActorEndpoint {
    /// All endpoints.
    pub const ALL: [Self; 5] = [
        Self::Actor,
        Self::Inbox,
        Self::Outbox,
        Self::Followers,
        Self::Following,
    ];

    /// The path segment naming this endpoint.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Actor => "actor",
            Self::Inbox => "inbox",
            Self::Outbox => "outbox",
            Self::Followers => "followers",
            Self::Following => "following",
        }
    }
}

/// A gateway URL, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApPath {
    /// `/{endpoint}/{handle}`.
    Actor {
        /// Which endpoint.
        endpoint: ActorEndpoint,
        /// The handle (`user@domain`, still encoded: decode with [`HandleMapper::decode`]).
        handle: String,
    },
    /// `/shared_inbox`.
    SharedInbox,
    /// `/item/{handle}/{id}`.
    Item {
        /// The handle of the item's author/node.
        handle: String,
        /// The XMPP item id (decoded).
        id: String,
    },
}

/// Builds and parses the gateway's URLs under one base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlLayout {
    /// Base without trailing slash, e.g. `https://ap.example.org/_ap`.
    base: String,
    /// Its path part without trailing slash, e.g. `/_ap`.
    base_path: String,
    origin: url::Origin,
}

impl UrlLayout {
    /// `base`: the public URL of the gateway's AP endpoints, e.g. `https://ap.example.org/_ap`.
    pub fn new(base: &str) -> Result<Self, HandleError> {
        let url = url::Url::parse(base).map_err(|e| HandleError::InvalidUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(HandleError::InvalidUrl(
                "the base must be an http(s) URL without query or fragment".into(),
            ));
        }
        let base_path = url.path().trim_end_matches('/').to_owned();
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            base,
            base_path,
            origin: url.origin(),
        })
    }

    /// The base URL (no trailing slash).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of `endpoint` for `handle`.
    pub fn actor_url(&self, endpoint: ActorEndpoint, handle: &str) -> Result<String, HandleError> {
        check_handle_segment(handle)?;
        Ok(format!("{}/{}/{handle}", self.base, endpoint.as_str()))
    }

    /// The shared inbox URL.
    pub fn shared_inbox_url(&self) -> String {
        format!("{}/shared_inbox", self.base)
    }

    /// The URL of item `id` published by `handle`.
    pub fn item_url(&self, handle: &str, id: &str) -> Result<String, HandleError> {
        check_handle_segment(handle)?;
        if id.is_empty() {
            return Err(HandleError::Empty);
        }
        Ok(format!(
            "{}/item/{handle}/{}",
            self.base,
            encode_item_id(id)
        ))
    }

    /// The URL of `path`.
    pub fn url(&self, path: &ApPath) -> Result<String, HandleError> {
        match path {
            ApPath::Actor { endpoint, handle } => self.actor_url(*endpoint, handle),
            ApPath::SharedInbox => Ok(self.shared_inbox_url()),
            ApPath::Item { handle, id } => self.item_url(handle, id),
        }
    }

    /// Parses a full URL of this gateway (same origin, under the base path; query and fragment ignored).
    pub fn parse_url(&self, url: &str) -> Result<ApPath, HandleError> {
        if url.len() > MAX_HANDLE_LEN * 2 {
            return Err(HandleError::TooLong {
                max: MAX_HANDLE_LEN * 2,
            });
        }
        let parsed = url::Url::parse(url).map_err(|e| HandleError::InvalidUrl(e.to_string()))?;
        if parsed.origin() != self.origin {
            return Err(HandleError::NotOurUrl);
        }
        self.parse_path(parsed.path())
    }

    /// Parses the path of a request (`/_ap/actor/alice@example.org`; a query is ignored).
    pub fn parse_path(&self, path: &str) -> Result<ApPath, HandleError> {
        if path.len() > MAX_HANDLE_LEN * 2 {
            return Err(HandleError::TooLong {
                max: MAX_HANDLE_LEN * 2,
            });
        }
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let rest = path
            .strip_prefix(self.base_path.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .ok_or(HandleError::NotOurUrl)?;
        let segments: Vec<&str> = rest.split('/').collect();
        let (first, args) = segments.split_first().ok_or(HandleError::NotOurUrl)?;
        if *first == "shared_inbox" {
            return match args {
                [] | [""] => Ok(ApPath::SharedInbox),
                _ => Err(HandleError::SegmentCount("shared_inbox")),
            };
        }
        if *first == "item" {
            return match args {
                [handle, id] => {
                    let handle = decode_handle_segment(handle)?;
                    let id = decode_item_id(id)?;
                    Ok(ApPath::Item { handle, id })
                }
                _ => Err(HandleError::SegmentCount("item")),
            };
        }
        let endpoint = ActorEndpoint::ALL
            .into_iter()
            .find(|e| e.as_str() == *first)
            .ok_or_else(|| HandleError::UnknownEndpoint(truncate(first, 64)))?;
        match args {
            [handle] => Ok(ApPath::Actor {
                endpoint,
                handle: decode_handle_segment(handle)?,
            }),
            _ => Err(HandleError::SegmentCount(endpoint.as_str())),
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn check_handle_segment(handle: &str) -> Result<(), HandleError> {
    if handle.is_empty() {
        return Err(HandleError::Empty);
    }
    if handle.len() > MAX_HANDLE_LEN {
        return Err(HandleError::TooLong {
            max: MAX_HANDLE_LEN,
        });
    }
    let ats = handle.matches('@').count();
    if ats != 1 {
        return Err(HandleError::AtCount(ats));
    }
    match handle
        .chars()
        .find(|&c| c != '@' && !(c.is_ascii() && is_unreserved(c as u8)))
    {
        Some(c) => Err(HandleError::ForbiddenChar(c)),
        None => Ok(()),
    }
}

fn percent_decode_segment(segment: &str) -> Result<String, HandleError> {
    if segment.len() > MAX_HANDLE_LEN {
        return Err(HandleError::TooLong {
            max: MAX_HANDLE_LEN,
        });
    }
    let bytes = decode_escapes(segment, b'%', |b| b != b'/' && b.is_ascii_graphic())?;
    String::from_utf8(bytes).map_err(|_| HandleError::InvalidUtf8)
}

fn decode_handle_segment(segment: &str) -> Result<String, HandleError> {
    let handle = percent_decode_segment(segment)?;
    if handle.is_empty() {
        return Err(HandleError::Empty);
    }
    let ats = handle.matches('@').count();
    if ats != 1 {
        return Err(HandleError::AtCount(ats));
    }
    Ok(handle)
}

/// Encodes an item id as a path segment of unreserved characters.
pub fn encode_item_id(id: &str) -> String {
    if must_encode(id) {
        format!("{ENCODED_PREFIX}{}", period_encode(id))
    } else {
        id.to_owned()
    }
}

/// Decodes an item id path segment (ours, or Libervia's percent-encoded form).
pub fn decode_item_id(segment: &str) -> Result<String, HandleError> {
    let decoded = percent_decode_segment(segment)?;
    let id = match decoded.strip_prefix(ENCODED_PREFIX) {
        Some(rest) => period_decode(rest)?,
        None => decoded,
    };
    if id.is_empty() {
        return Err(HandleError::Empty);
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn mapper() -> HandleMapper {
        HandleMapper::new("example.org", "ap.example.org")
    }

    fn jid(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    #[test]
    fn period_encoding_rules() {
        assert_eq!(
            period_encode("urn:xmpp:microblog:0"),
            "urn.3Axmpp.3Amicroblog.3A0"
        );
        assert_eq!(period_encode("a---b"), "a.2d.2d.2db");
        assert_eq!(period_encode("___x"), ".5f.5f.5fx");
        assert_eq!(period_encode("a.b"), "a.2eb");
        assert_eq!(period_encode("a~b"), "a.7eb");
        assert_eq!(period_encode("a%b"), "a.25b");
        assert_eq!(period_encode("toto@example.net"), "toto.40example.2enet");
        assert_eq!(period_encode("----"), ".2d.2d.2d-");
        assert_eq!(period_encode("é"), ".C3.A9");
        assert_eq!(
            period_decode("urn.3axmpp.3Amicroblog.3a0").unwrap(),
            "urn:xmpp:microblog:0"
        );
        assert_eq!(period_decode(".c3.a9").unwrap(), "é");
        // A `.` without two hex digits is literal, as in Libervia.
        assert_eq!(period_decode("a.2").unwrap(), "a.2");
        assert_eq!(period_decode("a.zz.").unwrap(), "a.zz.");
        assert_eq!(
            period_decode("toto.40example.net").unwrap(),
            "toto@example.net"
        );
        assert_eq!(period_decode("a%41"), Err(HandleError::ForbiddenChar('%')));
        assert_eq!(period_decode(".ff"), Err(HandleError::InvalidUtf8));
    }

    #[test]
    fn must_encode_rules() {
        assert!(!must_encode("alice"));
        assert!(!must_encode("a-b_c"));
        assert!(must_encode("a.b"));
        assert!(must_encode("___a"));
        assert!(must_encode("a---b"));
        assert!(must_encode("é"));
        assert!(must_encode(""));
    }

    #[test]
    fn libervia_vectors_encode() {
        let m = mapper();
        assert_eq!(
            m.encode(&jid("toto@example.org"), None).unwrap(),
            "toto@example.org"
        );
        assert_eq!(
            m.encode(&jid("toto@example.org"), Some(DEFAULT_MICROBLOG_NODE))
                .unwrap(),
            "toto@example.org"
        );
        assert_eq!(
            m.encode(&jid("louise@example.org"), Some("tata")).unwrap(),
            "tata---louise@example.org"
        );
        assert_eq!(
            m.encode(&jid("pubsub.example.org"), Some("blog")).unwrap(),
            "blog@pubsub.example.org"
        );
        assert_eq!(
            m.encode(&jid("pubsub.example.org"), Some(DEFAULT_MICROBLOG_NODE))
                .unwrap(),
            "___urn.3Axmpp.3Amicroblog.3A0@pubsub.example.org"
        );
        assert_eq!(
            m.encode(&jid("toto@example.net"), None).unwrap(),
            "___toto.40example.2enet@ap.example.org"
        );
        assert_eq!(
            m.encode(&jid("john.doe@example.org"), Some("my blog"))
                .unwrap(),
            "___my.20blog---john.2edoe@example.org"
        );
        assert_eq!(
            m.encode(&jid("example.org"), None),
            Err(HandleError::NoUserPart)
        );
    }

    #[test]
    fn libervia_vectors_decode() {
        let m = mapper();
        let d = m.decode("toto@example.org").unwrap();
        assert!(d.needs_service_check());
        let t = d.resolve(false).unwrap();
        assert_eq!(t.jid, jid("toto@example.org"));
        assert_eq!(t.node, None);

        let t = m
            .decode("toto@pubsub.example.org")
            .unwrap()
            .resolve(true)
            .unwrap();
        assert_eq!(t.jid, jid("pubsub.example.org"));
        assert_eq!(t.node.as_deref(), Some("toto"));

        let d = m.decode("tata---toto@example.org").unwrap();
        assert!(!d.needs_service_check());
        let t = d.resolve(true).unwrap();
        assert_eq!(t.jid, jid("toto@example.org"));
        assert_eq!(t.node.as_deref(), Some("tata"));

        for h in [
            "___urn.3axmpp.3amicroblog.3a0@pubsub.example.org",
            "___urn.3Axmpp.3Amicroblog.3A0@pubsub.example.org",
        ] {
            let t = m.decode(h).unwrap().resolve(true).unwrap();
            assert_eq!(t.jid, jid("pubsub.example.org"));
            assert_eq!(t.node.as_deref(), Some(DEFAULT_MICROBLOG_NODE));
        }

        let t = m
            .decode("___toto.40example.net@example.org")
            .unwrap()
            .resolve(false)
            .unwrap();
        assert_eq!(t.jid, jid("toto@example.net"));

        let t = m
            .decode("___urn.3axmpp.3amicroblog.3a0---toto@example.org")
            .unwrap()
            .resolve(false)
            .unwrap();
        assert_eq!(t.jid, jid("toto@example.org"));
        assert_eq!(t.node.as_deref(), Some(DEFAULT_MICROBLOG_NODE));

        let t = m
            .decode("acct:@alice@example.org")
            .unwrap()
            .resolve(false)
            .unwrap();
        assert_eq!(t.jid, jid("alice@example.org"));
    }

    #[test]
    fn decode_errors() {
        let m = mapper();
        assert_eq!(m.decode("alice"), Err(HandleError::AtCount(0)));
        assert_eq!(m.decode("a@b@c"), Err(HandleError::AtCount(2)));
        assert_eq!(m.decode("alice@"), Err(HandleError::Empty));
        assert_eq!(m.decode("@example.org"), Err(HandleError::AtCount(0)));
        assert_eq!(m.decode("___@example.org"), Err(HandleError::Empty));
        assert_eq!(
            m.decode("___a.ff@example.org"),
            Err(HandleError::InvalidUtf8)
        );
        assert_eq!(
            m.decode("___a%40b@example.org"),
            Err(HandleError::ForbiddenChar('%'))
        );
        assert_eq!(
            m.decode("___a~b@example.org"),
            Err(HandleError::ForbiddenChar('~'))
        );
        let long = format!("{}@example.org", "a".repeat(MAX_HANDLE_LEN));
        assert!(matches!(m.decode(&long), Err(HandleError::TooLong { .. })));
        assert!(matches!(
            m.decode("a b@example.org").unwrap().resolve(false),
            Err(HandleError::InvalidJid(_))
        ));
    }

    /// A small deterministic generator (xorshift) of names mixing the characters the rules care about.
    fn names(count: usize) -> Vec<String> {
        const PIECES: &[&str] = &[
            "a",
            "Z",
            "0",
            "-",
            "_",
            ".",
            "~",
            "%",
            "---",
            "___",
            "--",
            "__",
            "@",
            ":",
            " ",
            "é",
            "日本",
            "🦀",
            "+",
            "/",
            "\\",
            "%2e",
            ".2d",
            "urn:xmpp:microblog:0",
            "x",
            "\u{1F600}",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..count)
            .map(|_| {
                let len = 1 + (next() % 8) as usize;
                (0..len)
                    .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                    .collect()
            })
            .collect()
    }

    #[test]
    fn period_round_trip_generated() {
        for name in names(5000) {
            let enc = period_encode(&name);
            assert!(
                enc.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
                "{enc}"
            );
            assert!(
                !enc.contains("---") && !enc.contains("___"),
                "{name:?} -> {enc}"
            );
            assert_eq!(period_decode(&enc).unwrap(), name);
            let id_seg = encode_item_id(&name);
            assert_eq!(decode_item_id(&id_seg).unwrap(), name);
        }
    }

    #[test]
    fn handle_round_trip_generated() {
        let m = mapper();
        let mut checked = 0;
        let gen = names(4000);
        for (i, name) in gen.iter().enumerate() {
            let node = gen.get(i + 1).map(String::as_str);
            // Local parts must be valid JID local parts; others are exercised as nodes only.
            let user = gen[i].replace(['@', ' ', '/', '\\', ':', '"', '&', '\'', '<', '>'], "u");
            for (jid_s, local) in [
                (format!("{user}@example.org"), true),
                (format!("{user}@other.net"), false),
            ] {
                let Ok(j) = BareJid::new(&jid_s) else {
                    continue;
                };
                for node in [None, node, Some(name.as_str())] {
                    let handle = m.encode(&j, node).unwrap();
                    assert_eq!(handle.matches('@').count(), 1, "{handle}");
                    let domain = handle.rsplit_once('@').unwrap().1;
                    assert_eq!(
                        domain,
                        if local {
                            "example.org"
                        } else {
                            "ap.example.org"
                        }
                    );
                    let d = m.decode(&handle).unwrap();
                    let t = d.clone().resolve(false).unwrap();
                    assert_eq!(t.jid, j, "{handle} {d:?}");
                    let expected = node.filter(|n| !n.is_empty() && *n != DEFAULT_MICROBLOG_NODE);
                    assert_eq!(t.node.as_deref(), expected, "{handle}");
                    // The handle is a valid URL path segment of ours.
                    let layout = UrlLayout::new("https://ap.example.org/_ap").unwrap();
                    let url = layout.actor_url(ActorEndpoint::Outbox, &handle).unwrap();
                    assert_eq!(
                        layout.parse_url(&url).unwrap(),
                        ApPath::Actor {
                            endpoint: ActorEndpoint::Outbox,
                            handle: handle.clone()
                        }
                    );
                    checked += 1;
                }
            }
            // A pubsub service with a node as user part.
            if !name.is_empty() {
                let svc = jid("pubsub.example.org");
                let handle = m.encode(&svc, Some(name)).unwrap();
                let t = m.decode(&handle).unwrap().resolve(true).unwrap();
                assert_eq!(
                    (t.jid, t.node.as_deref()),
                    (svc, Some(name.as_str())),
                    "{handle}"
                );
                let remote = jid("pubsub.other.net");
                let handle = m.encode(&remote, Some(name)).unwrap();
                let t = m.decode(&handle).unwrap().resolve(false).unwrap();
                assert_eq!(
                    (t.jid, t.node.as_deref()),
                    (remote, Some(name.as_str())),
                    "{handle}"
                );
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn leading_dash_user_with_node() {
        let m = mapper();
        let h = m.encode(&jid("-bob@example.org"), Some("n")).unwrap();
        assert_eq!(h, "___n---.2dbob@example.org");
        let t = m.decode(&h).unwrap().resolve(false).unwrap();
        assert_eq!(t.jid, jid("-bob@example.org"));
        assert_eq!(t.node.as_deref(), Some("n"));
        assert_eq!(
            m.encode(&jid("-bob@example.org"), None).unwrap(),
            "-bob@example.org"
        );
    }

    #[test]
    fn url_layout() {
        let l = UrlLayout::new("https://ap.example.org/_ap/").unwrap();
        assert_eq!(
            l.actor_url(ActorEndpoint::Actor, "alice@example.org")
                .unwrap(),
            "https://ap.example.org/_ap/actor/alice@example.org"
        );
        assert_eq!(
            l.actor_url(
                ActorEndpoint::Inbox,
                "___toto.40example.2enet@ap.example.org"
            )
            .unwrap(),
            "https://ap.example.org/_ap/inbox/___toto.40example.2enet@ap.example.org"
        );
        assert_eq!(
            l.shared_inbox_url(),
            "https://ap.example.org/_ap/shared_inbox"
        );
        let item = l.item_url("alice@example.org", "my item/1").unwrap();
        assert_eq!(
            item,
            "https://ap.example.org/_ap/item/alice@example.org/___my.20item.2F1"
        );
        assert!(!item.contains('%'));
        assert_eq!(
            l.parse_url(&item).unwrap(),
            ApPath::Item {
                handle: "alice@example.org".into(),
                id: "my item/1".into()
            }
        );
        assert_eq!(
            l.parse_url("https://ap.example.org/_ap/item/alice@example.org/plain-id_1")
                .unwrap(),
            ApPath::Item {
                handle: "alice@example.org".into(),
                id: "plain-id_1".into()
            }
        );
        // Libervia's legacy percent-encoded URLs still parse.
        assert_eq!(
            l.parse_url("https://ap.example.org/_ap/actor/alice%40example.org")
                .unwrap(),
            ApPath::Actor {
                endpoint: ActorEndpoint::Actor,
                handle: "alice@example.org".into()
            }
        );
        assert_eq!(
            l.parse_url("https://ap.example.org/_ap/item/alice%40example.org/my%20item")
                .unwrap(),
            ApPath::Item {
                handle: "alice@example.org".into(),
                id: "my item".into()
            }
        );
        assert_eq!(
            l.parse_path("/_ap/shared_inbox?x=1").unwrap(),
            ApPath::SharedInbox
        );
        for e in ActorEndpoint::ALL {
            let url = l.actor_url(e, "a@b.c").unwrap();
            assert_eq!(
                l.parse_url(&url).unwrap(),
                ApPath::Actor {
                    endpoint: e,
                    handle: "a@b.c".into()
                }
            );
        }
    }

    #[test]
    fn url_errors() {
        let l = UrlLayout::new("https://ap.example.org/_ap").unwrap();
        assert_eq!(
            l.parse_url("https://evil.example/_ap/actor/a@b"),
            Err(HandleError::NotOurUrl)
        );
        assert_eq!(
            l.parse_url("http://ap.example.org/_ap/actor/a@b"),
            Err(HandleError::NotOurUrl)
        );
        assert_eq!(
            l.parse_url("https://ap.example.org/other/actor/a@b"),
            Err(HandleError::NotOurUrl)
        );
        assert_eq!(
            l.parse_url("https://ap.example.org/_apx/actor/a@b"),
            Err(HandleError::NotOurUrl)
        );
        assert_eq!(
            l.parse_url("https://ap.example.org/_ap/nope/a@b"),
            Err(HandleError::UnknownEndpoint("nope".into()))
        );
        assert_eq!(
            l.parse_url("https://ap.example.org/_ap/actor/a@b/extra"),
            Err(HandleError::SegmentCount("actor"))
        );
        assert_eq!(
            l.parse_url("https://ap.example.org/_ap/item/a@b"),
            Err(HandleError::SegmentCount("item"))
        );
        assert_eq!(
            l.parse_url("https://ap.example.org/_ap/shared_inbox/x"),
            Err(HandleError::SegmentCount("shared_inbox"))
        );
        assert_eq!(
            l.parse_url("https://ap.example.org/_ap/actor/ab"),
            Err(HandleError::AtCount(0))
        );
        assert_eq!(
            l.parse_url("https://ap.example.org/_ap/actor/a%4"),
            Err(HandleError::BadPercentEscape(1))
        );
        assert_eq!(
            l.parse_url("https://ap.example.org/_ap/actor/%FF@b"),
            Err(HandleError::InvalidUtf8)
        );
        assert!(matches!(
            l.parse_url("not a url"),
            Err(HandleError::InvalidUrl(_))
        ));
        assert_eq!(
            l.actor_url(ActorEndpoint::Actor, "a b@c"),
            Err(HandleError::ForbiddenChar(' '))
        );
        assert_eq!(
            l.actor_url(ActorEndpoint::Actor, "ab"),
            Err(HandleError::AtCount(0))
        );
        assert!(UrlLayout::new("ftp://x/_ap").is_err());
    }
}
