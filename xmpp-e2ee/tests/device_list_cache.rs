//! `OmemoClient`'s device-list reuse (`OmemoConfig::device_list_ttl`) and PEP device-list pushes, over
//! real Prosody and ejabberd: with a TTL, repeated messages to the same contact fetch the device lists
//! once; a new device of the contact, announced by a PEP notification, gets keys without a fetch.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_e2ee::omemo::pep::devices_node;
use xmpp_e2ee::omemo::{MemoryStore, OmemoClient, OmemoConfig, Profile};
use xmpp_parsers::stanza::Stanza;
use xmpp_social::client::XmppClient;
use xmpp_social::connection::{Incoming, IqRequest};
use xmpp_social::error::Result;
use xmpp_social::pubsub::PubSubExt;
use xmpp_social::Connection;
use xmpp_testkit::{Server, ServerKind};

use support::{connect, next_message, next_text, omemo_device, OmemoTestClient};

const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";

/// A real connection that counts the device-list fetches going through it.
#[derive(Clone)]
struct Counting {
    inner: XmppClient,
    fetches: Arc<AtomicUsize>,
}

impl Connection for Counting {
    fn jid(&self) -> Jid {
        self.inner.jid()
    }

    async fn send_stanza(&self, stanza: Stanza) -> Result<()> {
        self.inner.send_stanza(stanza).await
    }

    async fn send_iq(&self, request: IqRequest) -> Result<Option<Element>> {
        let is_device_list = request.payload.is("pubsub", NS_PUBSUB)
            && request
                .payload
                .get_child("items", NS_PUBSUB)
                .and_then(|i| i.attr("node"))
                .is_some_and(|n| {
                    n == devices_node(Profile::Omemo2) || n == devices_node(Profile::Legacy)
                });
        if is_device_list {
            self.fetches.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.send_iq(request).await
    }

    fn incoming(&self) -> Incoming {
        self.inner.incoming()
    }
}

/// One more device of Bob, published.
async fn bob_device(server: &Server, resource: &str) -> (OmemoTestClient, Incoming) {
    omemo_device(server, &format!("bob@localhost/{resource}"), false).await
}

async fn reuse_and_push(kind: ServerKind, profile: Profile) {
    let server = support::start(kind, &["bob"]).await;
    let (bob1, mut bob1_in) = bob_device(&server, "one").await;
    let bob = BareJid::new("bob@localhost").unwrap();

    let fetches = Arc::new(AtomicUsize::new(0));
    let conn = Counting {
        inner: connect(&server, "alice@localhost/desk", &[]).await,
        fetches: Arc::clone(&fetches),
    };
    let mut alice_in = conn.incoming();
    let config = OmemoConfig {
        profiles: vec![profile],
        device_list_ttl: Duration::from_secs(600),
        ..OmemoConfig::default()
    };
    let alice = OmemoClient::new(conn, MemoryStore::new(), config).unwrap();
    alice.publish().await.unwrap();
    let after_publish = fetches.load(Ordering::SeqCst);

    // Three messages: Bob's and Alice's own lists are fetched once (Alice's was learnt when publishing).
    for i in 0..3 {
        let out = alice
            .send_chat(&bob, profile, &format!("m{i}"))
            .await
            .unwrap();
        assert_eq!(out.recipients.len(), 1, "{kind} {profile:?}: {out:?}");
        assert_eq!(
            next_text(&bob1, &mut bob1_in).await.body,
            Some(format!("m{i}"))
        );
    }
    assert_eq!(
        fetches.load(Ordering::SeqCst) - after_publish,
        1,
        "{kind} {profile:?}"
    );

    // Alice follows Bob's device list; Bob's second device appears and the push brings it.
    alice
        .connection()
        .subscribe(Some(&Jid::from(bob.clone())), devices_node(profile))
        .await
        .unwrap_or_else(|e| panic!("{kind}: subscribing to Bob's device list: {e}"));
    let (bob2, mut bob2_in) = bob_device(&server, "two").await;
    let bob2_id = bob2.device_id().unwrap();
    let what = format!("device-list notification with Bob's new device ({kind} {profile:?})");
    next_message(&mut alice_in, &what, async |m| {
        if !alice.handle_device_list_push(m).unwrap() {
            return None;
        }
        let known = alice
            .manager()
            .unwrap()
            .devices(profile, "bob@localhost")
            .unwrap();
        known.iter().any(|(id, _)| *id == bob2_id).then_some(())
    })
    .await;

    let before = fetches.load(Ordering::SeqCst);
    let out = alice.send_chat(&bob, profile, "both").await.unwrap();
    assert_eq!(out.recipients.len(), 2, "{kind} {profile:?}: {out:?}");
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        before,
        "no fetch: the push was enough"
    );
    assert_eq!(
        next_text(&bob1, &mut bob1_in).await.body.as_deref(),
        Some("both")
    );
    assert_eq!(
        next_text(&bob2, &mut bob2_in).await.body.as_deref(),
        Some("both")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prosody_device_lists_reused_and_pushed() {
    reuse_and_push(ServerKind::Prosody, Profile::Omemo2).await;
    reuse_and_push(ServerKind::Prosody, Profile::Legacy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejabberd_device_lists_reused_and_pushed() {
    reuse_and_push(ServerKind::Ejabberd, Profile::Omemo2).await;
}
