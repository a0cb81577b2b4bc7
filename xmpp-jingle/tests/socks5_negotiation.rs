//! The XEP-0260 candidate negotiation over real sockets: two negotiation machines exchange their
//! transport elements (serialised and parsed back, as the Jingle session would carry them), connect to
//! each other's candidates on loopback and through Prosody's mod_proxy65, nominate a pair, activate a
//! proxy when one wins (with the XEP-0260 DST.ADDR of whoever offered it), and move 1 MiB checked with
//! SHA-256.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::time::Duration;

use jid::Jid;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use xmpp_jingle::socks5::bytestreams::{self, StreamHost};
use xmpp_jingle::socks5::negotiation::{Event, Negotiation, Nomination, Role};
use xmpp_jingle::socks5::net;
use xmpp_jingle::socks5::transport::{Candidate, CandidateType, Transport};
use xmpp_jingle::socks5::Socks5Error;
use xmpp_social::client::XmppClient;
use xmpp_social::Connection;
use xmpp_testkit::{Server, ServerKind};

const SIZE: usize = 1024 * 1024;
const LIMIT: Duration = Duration::from_secs(20);

/// What each side offers.
#[derive(Clone, Copy)]
struct Offer {
    direct: bool,
    /// A direct candidate nobody listens on.
    dead: bool,
    proxy: bool,
}

struct Side {
    conn: XmppClient,
    neg: Negotiation,
    accepting: Option<JoinHandle<Result<(TcpStream, String), Socks5Error>>>,
    outgoing: Option<(String, TcpStream)>,
    nomination: Option<Nomination>,
    ready: bool,
    failed: bool,
}

fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn side(
    conn: XmppClient,
    role: Role,
    peer: &Jid,
    offer: Offer,
    proxy: &StreamHost,
    tag: &str,
) -> Side {
    let me = conn.jid();
    let mut candidates = Vec::new();
    let mut listener = None;
    if offer.direct {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        candidates.push(Candidate::local(
            format!("{tag}-direct"),
            me.clone(),
            "127.0.0.1",
            port,
            CandidateType::Direct,
            100,
        ));
        listener = Some(l);
    }
    if offer.dead {
        candidates.push(Candidate::local(
            format!("{tag}-dead"),
            me.clone(),
            "127.0.0.1",
            dead_port(),
            CandidateType::Direct,
            200,
        ));
    }
    if offer.proxy {
        candidates.push(Candidate::proxy(format!("{tag}-proxy"), proxy, 0));
    }
    let neg = Negotiation::new(
        role,
        "s5b-sid-1",
        me.to_string(),
        peer.to_string(),
        candidates,
    );
    let accepting = listener.map(|l| {
        let expected = vec![neg.local_dst_addr()];
        tokio::spawn(async move { net::accept(&l, &expected, LIMIT).await })
    });
    Side {
        conn,
        neg,
        accepting,
        outgoing: None,
        nomination: None,
        ready: false,
        failed: false,
    }
}

/// Hands `from`'s queued transport-info payloads to `to` (through XML) and records `from`'s other
/// events.
fn deliver(from: &mut Side, to: &mut Side) {
    while let Some(e) = from.neg.poll_event() {
        match e {
            Event::Send(t) => {
                let t = Transport::from_element(&t.to_element()).unwrap();
                to.neg.receive(&t).unwrap();
            }
            Event::Nominated(n) => from.nomination = Some(n),
            Event::Ready => from.ready = true,
            Event::Failed(_) => from.failed = true,
        }
    }
}

/// The socket that carries the bytestream for this side, once nominated.
async fn stream_of(s: &mut Side, peer: &Jid) -> TcpStream {
    let n = s.nomination.clone().unwrap();
    if n.must_activate {
        let dst = s.neg.local_dst_addr();
        let stream = bytestreams::connect_and_activate(
            &s.conn,
            &n.candidate.streamhost(),
            &dst,
            s.neg.sid(),
            peer,
            LIMIT,
        )
        .await
        .unwrap();
        s.neg.activated().unwrap();
        return stream;
    }
    if n.offered_by_us {
        // Someone connected to our direct candidate (or our proxy, which the peer activates: not
        // possible, proxies are activated by their offerer).
        let task = s.accepting.take().unwrap();
        return task.await.unwrap().unwrap().0;
    }
    let (cid, stream) = s.outgoing.take().unwrap();
    assert_eq!(cid, n.candidate.cid);
    stream
}

async fn run(server: &Server, a_offer: Offer, b_offer: Offer) -> (Nomination, Nomination) {
    let a_conn =
        XmppClient::connect_plaintext_loopback("alice@localhost/neg", "alicepw", server.c2s_addr())
            .await
            .unwrap();
    let b_conn =
        XmppClient::connect_plaintext_loopback("bob@localhost/neg", "bobpw", server.c2s_addr())
            .await
            .unwrap();
    let proxies = bytestreams::discover_proxies(&a_conn, None).await.unwrap();
    let proxy = proxies.first().unwrap().clone();
    let (a_jid, b_jid) = (a_conn.jid(), b_conn.jid());
    let mut a = side(a_conn, Role::Initiator, &b_jid, a_offer, &proxy, "a").await;
    let mut b = side(b_conn, Role::Responder, &a_jid, b_offer, &proxy, "b").await;

    // session-initiate and session-accept carry the candidates.
    let a_transport = Transport::from_element(&a.neg.local_transport().to_element()).unwrap();
    b.neg.set_remote(&a_transport).unwrap();
    let b_transport = Transport::from_element(&b.neg.local_transport().to_element()).unwrap();
    a.neg.set_remote(&b_transport).unwrap();

    // Both try the other's candidates at once.
    let (na, nb) = (&mut a.neg, &mut b.neg);
    let (ra, rb) = tokio::join!(
        net::try_candidates(na, Duration::from_secs(3)),
        net::try_candidates(nb, Duration::from_secs(3)),
    );
    a.outgoing = ra;
    b.outgoing = rb;
    deliver(&mut a, &mut b);
    deliver(&mut b, &mut a);
    deliver(&mut a, &mut b);
    assert!(!a.failed && !b.failed);
    let (an, bn) = (a.nomination.clone().unwrap(), b.nomination.clone().unwrap());
    assert_eq!(
        an.candidate.cid, bn.candidate.cid,
        "both sides nominate the same"
    );

    // The socket each side uses; the proxy offerer activates.
    let (sa, sb) = tokio::join!(stream_of(&mut a, &b_jid), stream_of(&mut b, &a_jid));
    deliver(&mut a, &mut b);
    deliver(&mut b, &mut a);
    deliver(&mut a, &mut b);
    assert!(a.ready && b.ready, "both ready");

    // 1 MiB from the initiator to the responder.
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 7 % 251) as u8).collect();
    let want = Sha256::digest(&data);
    let writer = tokio::spawn(async move {
        let mut sa = sa;
        sa.write_all(&data).await.unwrap();
        sa.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    let mut sb = sb;
    tokio::time::timeout(LIMIT, sb.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    writer.await.unwrap();
    assert_eq!(got.len(), SIZE);
    assert_eq!(Sha256::digest(&got), want);
    for s in [a, b] {
        if let Some(t) = s.accepting {
            t.abort();
        }
        s.conn.close().await.unwrap();
    }
    (an, bn)
}

fn server() -> Server {
    xmpp_testkit::ensure_installed(ServerKind::Prosody).unwrap();
    Server::start(
        ServerKind::Prosody,
        &[("alice", "alicepw"), ("bob", "bobpw")],
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_beats_proxy() {
    let server = server();
    let (an, bn) = run(
        &server,
        Offer {
            direct: true,
            dead: false,
            proxy: false,
        },
        Offer {
            direct: false,
            dead: false,
            proxy: true,
        },
    )
    .await;
    assert_eq!(an.candidate.cid, "a-direct");
    assert!(an.offered_by_us && !bn.offered_by_us && !an.must_activate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initiator_proxy_is_activated_by_the_initiator() {
    let server = server();
    let (an, bn) = run(
        &server,
        Offer {
            direct: false,
            dead: true,
            proxy: true,
        },
        Offer {
            direct: false,
            dead: true,
            proxy: false,
        },
    )
    .await;
    assert_eq!(an.candidate.cid, "a-proxy");
    assert!(an.must_activate && !bn.must_activate);
}

/// The case XEP-0065 does not cover: the responder's proxy, DST.ADDR = SHA1(SID + responder +
/// initiator), activated by the responder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responder_proxy_is_activated_by_the_responder() {
    let server = server();
    let (an, bn) = run(
        &server,
        Offer {
            direct: false,
            dead: true,
            proxy: false,
        },
        Offer {
            direct: false,
            dead: false,
            proxy: true,
        },
    )
    .await;
    assert_eq!(bn.candidate.cid, "b-proxy");
    assert!(bn.must_activate && !an.must_activate);
}
