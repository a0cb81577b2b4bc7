//! Setup shared by the server tests of this crate (`mod support;` in each): a real Prosody or
//! ejabberd server with its accounts, clients logged in to it over plaintext loopback, OX and OMEMO
//! clients on them, and waiting for the next message of interest.
#![allow(dead_code)] // each test binary uses its own part of it

use std::time::Duration;

use jid::Jid;
use xmpp_e2ee::omemo::{DecryptedMessage, MemoryStore, OmemoClient, OmemoConfig};
use xmpp_e2ee::ox::{MemoryOxStore, OxClient};
use xmpp_parsers::message::Message;
use xmpp_parsers::stanza::Stanza;
use xmpp_social::client::{ClientConfig, Transport, XmppClient};
use xmpp_social::connection::Incoming;
use xmpp_social::Connection;
use xmpp_testkit::{Server, ServerKind};

/// The password of every account.
pub const PW: &str = "secret-pw";

/// How long a test waits for a message it expects.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(20);

/// An OX client of these tests: a real connection, keys in memory.
pub type OxTestClient = OxClient<XmppClient, MemoryOxStore>;

/// An OMEMO client of these tests: a real connection, keys in memory.
pub type OmemoTestClient = OmemoClient<XmppClient, MemoryStore>;

/// Starts a `kind` server with the account `alice`, and registers the accounts `others` (all with
/// the password [`PW`]).
pub async fn start(kind: ServerKind, others: &[&str]) -> Server {
    let others: Vec<String> = others.iter().map(|u| (*u).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let server = Server::start(kind, &[("alice", PW)])
            .unwrap_or_else(|e| panic!("{kind:?} did not start: {e}"));
        for user in &others {
            server
                .register(user, PW)
                .unwrap_or_else(|e| panic!("{kind:?}: could not register {user}: {e}"));
        }
        server
    })
    .await
    .expect("join")
}

/// Logs `jid` (a bare or full JID) in with [`PW`] over plaintext loopback, announcing the disco
/// `features` (none: the client's defaults).
pub async fn connect(server: &Server, jid: &str, features: &[&str]) -> XmppClient {
    let parsed: Jid = jid
        .parse()
        .unwrap_or_else(|e| panic!("bad test JID {jid}: {e}"));
    let mut config = ClientConfig::new(
        parsed,
        PW,
        Transport::PlaintextLoopback {
            addr: server.c2s_addr(),
        },
    );
    config.features = features.iter().map(|f| (*f).to_owned()).collect();
    XmppClient::connect(config)
        .await
        .unwrap_or_else(|e| panic!("{jid} could not log in: {e}\n{}", server.log_tail(30)))
}

/// Logs `user` (a local part of the server's domain) in and makes its OX client, with a new key
/// published on PEP; also gives the incoming stanzas, subscribed before anything was sent.
pub async fn ox_login(server: &Server, user: &str, features: &[&str]) -> (OxTestClient, Incoming) {
    let conn = connect(server, &format!("{user}@{}", server.domain()), features).await;
    let incoming = conn.incoming();
    let client = OxClient::new(conn, MemoryOxStore::new()).unwrap_or_else(|e| {
        panic!("{user}: no OX client: {e}");
    });
    client.publish_key().await.unwrap_or_else(|e| {
        panic!(
            "{user} could not publish its key: {e}\n{}",
            server.log_tail(30)
        )
    });
    (client, incoming)
}

/// Logs `jid` in and makes an OMEMO device with the default configuration, published (after
/// enabling XEP-0280 carbons when `carbons`); also gives the incoming stanzas.
pub async fn omemo_device(
    server: &Server,
    jid: &str,
    carbons: bool,
) -> (OmemoTestClient, Incoming) {
    let conn = connect(server, jid, &[]).await;
    let incoming = conn.incoming();
    let client = OmemoClient::new(conn, MemoryStore::new(), OmemoConfig::default())
        .unwrap_or_else(|e| panic!("{jid}: no OMEMO client: {e}"));
    if carbons {
        client
            .enable_carbons()
            .await
            .unwrap_or_else(|e| panic!("{jid}: enabling carbons: {e}"));
    }
    client
        .publish()
        .await
        .unwrap_or_else(|e| panic!("{jid}: publishing the device: {e}"));
    (client, incoming)
}

/// Gives the incoming messages to `handle` until it returns a value, which it returns; fails the
/// test after [`MESSAGE_TIMEOUT`], saying that no `what` came.
pub async fn next_message<T>(
    incoming: &mut Incoming,
    what: &str,
    mut handle: impl AsyncFnMut(&Message) -> Option<T>,
) -> T {
    tokio::time::timeout(MESSAGE_TIMEOUT, async {
        loop {
            let stanza = incoming.recv().await.expect("incoming");
            let Stanza::Message(m) = &*stanza else {
                continue;
            };
            if let Some(found) = handle(m).await {
                return found;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} arrived in time"))
}

/// The next OMEMO message with a body, handling the others (key exchanges, empty messages) on the
/// way; a message that fails to decrypt fails the test.
pub async fn next_text<C: Connection>(
    client: &OmemoClient<C, MemoryStore>,
    incoming: &mut Incoming,
) -> DecryptedMessage {
    next_message(incoming, "encrypted message", async |m| {
        match client.handle_message(m).await {
            Ok(Some(d)) if d.body.is_some() => Some(d),
            Ok(_) => None,
            Err(e) => panic!("decryption failed: {e}"),
        }
    })
    .await
}
