//! Helpers shared by the OMEMO examples (`omemo-bot`, `omemo-send`).

use std::path::Path;

use serde::Serialize;
use xmpp_e2ee::omemo::{DecryptedMessage, Encryption, Profile, SqliteStore};

/// The short name of a namespace in the examples' JSON output: `omemo2` or `legacy`.
pub fn profile_name(profile: Profile) -> &'static str {
    match profile {
        Profile::Omemo2 => "omemo2",
        Profile::Legacy => "legacy",
    }
}

/// Opens the OMEMO key store: the SQLite file at `path` (created if needed, so the device, its
/// sessions and trust decisions survive restarts), or a store in memory (a new device each run).
pub fn open_store(path: Option<&Path>) -> Result<SqliteStore, String> {
    match path {
        Some(p) => {
            SqliteStore::open(p).map_err(|e| format!("cannot open the store {}: {e}", p.display()))
        }
        None => SqliteStore::open_in_memory().map_err(|e| format!("in-memory store: {e}")),
    }
}

/// One decrypted message, as the examples print it.
#[derive(Debug, Serialize)]
pub struct ReceivedJson {
    /// Always `"received"`.
    pub event: &'static str,
    /// Sender (full JID when the server gave one).
    pub from: String,
    /// `omemo2` or `legacy`.
    pub ns: &'static str,
    /// Sending device id.
    pub device_id: u32,
    /// Trust in the sending device (`BlindTrusted`, `Verified`, `Undecided`).
    pub trust: String,
    /// Whether the message started a new session.
    pub new_session: bool,
    /// The text; `None` for an empty (key-transport, heartbeat) message.
    pub body: Option<String>,
}

impl ReceivedJson {
    /// The JSON view of a decrypted message.
    pub fn new(message: &DecryptedMessage) -> Self {
        ReceivedJson {
            event: "received",
            from: message.from.to_string(),
            ns: profile_name(message.profile),
            device_id: message.device_id,
            trust: format!("{:?}", message.trust),
            new_session: message.new_session,
            body: message.body.clone(),
        }
    }
}

/// One sent message, as the examples print it.
#[derive(Debug, Serialize)]
pub struct SentJson {
    /// Always `"sent"`.
    pub event: &'static str,
    /// The recipient's bare JID.
    pub to: String,
    /// `omemo2` or `legacy`.
    pub ns: &'static str,
    /// The text.
    pub body: String,
    /// The devices that got a key, as `jid/device id`.
    pub recipients: Vec<String>,
    /// The devices left out, as `jid/device id: reason`.
    pub skipped: Vec<String>,
}

impl SentJson {
    /// The JSON view of a sent message.
    pub fn new(to: &str, profile: Profile, body: &str, out: &Encryption) -> Self {
        SentJson {
            event: "sent",
            to: to.to_owned(),
            ns: profile_name(profile),
            body: body.to_owned(),
            recipients: out
                .recipients
                .iter()
                .map(|d| format!("{}/{}", d.jid, d.device_id))
                .collect(),
            skipped: out
                .skipped
                .iter()
                .map(|(d, why)| format!("{}/{}: {why:?}", d.jid, d.device_id))
                .collect(),
        }
    }

    /// Whether a device of `jid` got a key.
    pub fn reached(out: &Encryption, jid: &str) -> bool {
        out.recipients.iter().any(|d| d.jid == jid)
    }
}
