//! `ComponentConnection` (XEP-0114) against the real component ports of Prosody and ejabberd: handshake,
//! disco, messages to and from virtual JIDs, IQs both ways, refusal of unhandled IQs, a wrong secret, and
//! reconnection after the TCP connection is cut (through a small proxy: the one fault no real server
//! gives on demand).
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

#[macro_use]
mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jid::{BareJid, Jid};
use minidom::Element;
use tokio::net::{TcpListener, TcpStream};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::Message;
use xmpp_parsers::stanza::Stanza;
use xmpp_social::component::{ComponentConfig, ComponentConnection};
use xmpp_social::connection::{Connection, Incoming, IqRequest};
use xmpp_social::error::Error;
use xmpp_testkit::{Server, ServerKind};

const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

fn config(server: &Server, addr: SocketAddr) -> ComponentConfig {
    let mut c = ComponentConfig::new(
        BareJid::new(server.component_domain()).unwrap(),
        addr,
        server.component_secret(),
    );
    c.iq_namespaces = vec!["urn:example:echo".to_owned()];
    c.identity = (
        "gateway".into(),
        "activitypub".into(),
        "test gateway".into(),
    );
    c
}

async fn next_message(rx: &mut Incoming) -> Message {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Stanza::Message(m) = &*rx.recv().await.unwrap() {
                if !m.bodies.is_empty() {
                    return m.clone();
                }
            }
        }
    })
    .await
    .expect("no message in time")
}

async fn next_iq(rx: &mut Incoming) -> Iq {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Stanza::Iq(iq) = &*rx.recv().await.unwrap() {
                return iq.clone();
            }
        }
    })
    .await
    .expect("no IQ in time")
}

async fn exchange(c: &ComponentConnection, alice: &xmpp_social::client::XmppClient, domain: &str) {
    let mut c_in = c.incoming();
    let mut a_in = alice.incoming();
    let virtual_jid = Jid::new(&format!("bob\\40fedi.example@{domain}")).unwrap();

    // The client reaches a virtual JID of the component...
    let mut m = Message::chat(Some(virtual_jid.clone()));
    m.bodies.insert(Default::default(), "hello gateway".into());
    alice.send_stanza(m.into()).await.unwrap();
    let got = next_message(&mut c_in).await;
    assert_eq!(got.to.as_ref(), Some(&virtual_jid));
    assert_eq!(got.from.unwrap().to_bare(), alice.jid().to_bare());
    assert_eq!(got.bodies.values().next().unwrap(), "hello gateway");

    // ...and the virtual JID answers.
    let mut answer = Message::chat(Some(alice.jid()));
    answer.from = Some(virtual_jid.clone());
    answer
        .bodies
        .insert(Default::default(), "hello from the fediverse".into());
    c.send_stanza(answer.into()).await.unwrap();
    let got = next_message(&mut a_in).await;
    assert_eq!(got.from.as_ref(), Some(&virtual_jid));
    assert_eq!(
        got.bodies.values().next().unwrap(),
        "hello from the fediverse"
    );

    // A request from the component (its own JID, then a virtual one) to the client's server.
    let server_jid = Jid::new(alice.jid().domain().as_str()).unwrap();
    let info = c
        .send_iq(IqRequest::get(
            Some(server_jid.clone()),
            Element::builder("query", DISCO_INFO).build(),
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(info.children().any(|c| c.name() == "identity"));
    c.send_iq_from(
        virtual_jid.clone(),
        IqRequest::get(
            Some(server_jid),
            Element::builder("ping", "urn:xmpp:ping").build(),
        ),
    )
    .await
    .unwrap();

    // The client asks the component: disco is answered, a handled namespace is delivered, the rest
    // refused.
    let info = alice
        .send_iq(IqRequest::get(
            Some(Jid::new(domain).unwrap()),
            Element::builder("query", DISCO_INFO).build(),
        ))
        .await
        .unwrap()
        .unwrap();
    let identity = info.children().find(|c| c.name() == "identity").unwrap();
    assert_eq!(identity.attr("type"), Some("activitypub"));
    assert!(info
        .children()
        .any(|c| c.attr("var") == Some("urn:example:echo")));
    let refused = alice
        .send_iq(IqRequest::get(
            Some(virtual_jid.clone()),
            Element::builder("query", "urn:example:unknown").build(),
        ))
        .await
        .unwrap_err();
    assert!(refused.stanza_error().is_some(), "{refused:?}");
    let asking = tokio::spawn({
        let alice = alice.clone();
        let to = virtual_jid.clone();
        async move {
            alice
                .send_iq(IqRequest::get(
                    Some(to),
                    Element::builder("echo", "urn:example:echo").build(),
                ))
                .await
        }
    });
    let request = next_iq(&mut c_in).await;
    let Iq::Get { from, to, id, .. } = request else {
        panic!("not a get: {request:?}")
    };
    assert_eq!(to.as_ref(), Some(&virtual_jid));
    c.send_stanza(
        Iq::Result {
            from: to,
            to: from,
            id,
            payload: Some(
                Element::builder("echo", "urn:example:echo")
                    .append("pong")
                    .build(),
            ),
        }
        .into(),
    )
    .await
    .unwrap();
    let answer = asking.await.unwrap().unwrap().unwrap();
    assert_eq!(answer.text(), "pong");
}

async fn component_exchanges(kind: ServerKind) {
    let server = common::start(kind).await;
    let alice = common::login(&server, "alice").await;
    let c = ComponentConnection::connect(config(&server, server.component_addr()))
        .await
        .unwrap_or_else(|e| panic!("{kind:?}: {e}\n{}", server.log_tail(30)));
    exchange(&c, &alice, server.component_domain()).await;

    // A wrong secret is a typed connection error.
    let mut bad = config(&server, server.component_addr());
    bad.secret = "not the secret".into();
    assert!(matches!(
        ComponentConnection::connect(bad).await,
        Err(Error::Connection(_))
    ));
}

/// Forwards TCP connections to `target`; `cut()` closes every connection open so far.
struct Proxy {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let list = conns.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                list.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { addr, conns }
    }

    fn cut(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

async fn component_reconnects(kind: ServerKind) {
    let server = common::start(kind).await;
    let alice = common::login(&server, "alice").await;
    let proxy = Proxy::start(server.component_addr()).await;
    let c = ComponentConnection::connect(config(&server, proxy.addr))
        .await
        .unwrap();
    exchange(&c, &alice, server.component_domain()).await;
    proxy.cut();
    // The server notices the component is gone; the component reconnects by itself and works again.
    let mut ok = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let ping = c
            .send_iq(IqRequest::get(
                Some(Jid::new(server.domain()).unwrap()),
                Element::builder("ping", "urn:xmpp:ping").build(),
            ))
            .await;
        if ping.is_ok() {
            ok = true;
            break;
        }
    }
    assert!(ok, "{kind:?}: no reconnection\n{}", server.log_tail(30));
    exchange(&c, &alice, server.component_domain()).await;
}

on_both_servers!(component_exchanges, component_reconnects);
