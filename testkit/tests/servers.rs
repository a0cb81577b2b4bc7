//! Starts real Prosody and ejabberd servers and talks raw XMPP to them.
//!
//! These tests need the Debian packages (see `.ci/install-servers.sh`); as root they install
//! them when missing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use xmpp_testkit::{ensure_installed, Server, ServerKind, TestkitError};

/// How many items the big-node check publishes.
const ITEMS: usize = 300;

fn installed(kind: ServerKind) {
    if let Err(e) = ensure_installed(kind) {
        panic!("{kind} is needed for these tests and could not be installed: {e}");
    }
}

fn start(kind: ServerKind, accounts: &[(&str, &str)]) -> Server {
    installed(kind);
    let t = Instant::now();
    match Server::start(kind, accounts) {
        Ok(server) => {
            eprintln!(
                "{kind}: ready in {:?}, with {} accounts in {:?}, c2s {}",
                server.startup_time(),
                accounts.len(),
                t.elapsed(),
                server.c2s_addr()
            );
            server
        }
        Err(e) => panic!("starting {kind} failed: {e}"),
    }
}

/// A minimal raw XMPP connection: write strings, read until a marker appears.
struct Raw {
    stream: TcpStream,
    buf: String,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Raw {
            stream,
            buf: String::new(),
        }
    }

    fn send(&mut self, data: &str) {
        self.stream.write_all(data.as_bytes()).expect("write");
    }

    /// Reads until one of `needles` is in the buffer; returns and consumes everything up to
    /// the end of the first needle found.
    fn read_until_any(&mut self, needles: &[&str]) -> String {
        let mut chunk = [0u8; 65536];
        loop {
            let found = needles
                .iter()
                .filter_map(|n| self.buf.find(n).map(|i| i + n.len()))
                .min();
            if let Some(end) = found {
                let rest = self.buf.split_off(end);
                return std::mem::replace(&mut self.buf, rest);
            }
            let n = match self.stream.read(&mut chunk) {
                Ok(n) => n,
                // Sockets with a read timeout return EINTR after the process was stopped and
                // continued (signal(7)), even without signal handlers.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => panic!(
                    "read failed ({e}) waiting for {needles:?}; got {}",
                    self.buf
                ),
            };
            assert!(n > 0, "EOF waiting for {needles:?}; got {}", self.buf);
            self.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    }

    fn read_until(&mut self, needle: &str) -> String {
        self.read_until_any(&[needle])
    }

    /// Reads up to the opening tag of the IQ with this id and returns that tag.
    fn read_iq_tag(&mut self, id: &str) -> String {
        let before = self.read_until_any(&[&format!("id='{id}'"), &format!("id=\"{id}\"")]);
        let start = before.rfind("<iq").expect("an <iq> around the id");
        let rest = self.read_until(">");
        format!("{}{}", &before[start..], rest)
    }

    fn open_stream(&mut self) -> String {
        self.send(
            "<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
        );
        self.read_until("</stream:features>")
    }
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Opens a stream, checks the SASL mechanisms, and logs in with PLAIN.
fn login(addr: SocketAddr, user: &str, password: &str) -> Raw {
    let mut c = Raw::connect(addr);
    let features = c.open_stream();
    assert!(
        features.contains(">PLAIN<") || features.contains(">SCRAM-SHA-1<"),
        "no PLAIN or SCRAM-SHA-1 offered: {features}"
    );
    assert!(
        !features.contains("<required"),
        "something is required before auth: {features}"
    );
    let token = base64(format!("\0{user}\0{password}").as_bytes());
    c.send(&format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
    ));
    let reply = c.read_until_any(&["<success", "<failure"]);
    assert!(reply.contains("<success"), "{user}: auth failed: {reply}");
    c
}

/// Logs in and binds a resource, ready for stanzas.
fn session(addr: SocketAddr, user: &str, password: &str) -> Raw {
    let mut c = login(addr, user, password);
    c.read_until(">"); // the rest of <success .../> or <success>...</success>
    c.open_stream();
    c.send(
        "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
         <resource>test</resource></bind></iq>",
    );
    let tag = c.read_iq_tag("bind");
    assert!(tag.contains("result"), "bind failed: {tag}");
    c.read_until("</iq>");
    c
}

/// Creates a pubsub node (room for 1,000 items), publishes `ITEMS` items one after the other,
/// and checks that all come back.
fn big_node(server: &Server, c: &mut Raw) {
    let service = server.pubsub_service();
    c.send(&format!(
        "<iq type='set' id='create' to='{service}'>\
         <pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='big'/>\
         <configure><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>\
         <field var='pubsub#max_items'><value>1000</value></field>\
         </x></configure></pubsub></iq>"
    ));
    let tag = c.read_iq_tag("create");
    assert!(
        tag.contains("'result'") || tag.contains("\"result\""),
        "{}: creating a node failed: {tag}{}",
        server.kind(),
        c.read_until("</iq>")
    );
    let started = Instant::now();
    let filler = "x".repeat(500);
    for i in 0..ITEMS {
        c.send(&format!(
            "<iq type='set' id='p{i}' to='{service}'>\
             <pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='big'>\
             <item id='item{i}'><entry xmlns='http://www.w3.org/2005/Atom'>\
             <title>item {i}</title><content>{filler}</content></entry></item>\
             </publish></pubsub></iq>"
        ));
        let tag = c.read_iq_tag(&format!("p{i}"));
        assert!(
            !tag.contains("error"),
            "{}: publish {i} failed: {tag}{}",
            server.kind(),
            c.read_until("</iq>")
        );
    }
    let publish = started.elapsed();
    let started = Instant::now();
    c.send(&format!(
        "<iq type='get' id='fetch' to='{service}'>\
         <pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='big'/></pubsub></iq>"
    ));
    c.read_iq_tag("fetch");
    let items = c.read_until("</iq>");
    let count = items.matches("<item ").count();
    eprintln!(
        "{}: {ITEMS} publishes in {publish:?} ({:.1} ms each), fetching {count} items in {:?}",
        server.kind(),
        publish.as_secs_f64() * 1000.0 / ITEMS as f64,
        started.elapsed()
    );
    assert_eq!(count, ITEMS, "{}: items kept", server.kind());
}

/// The external component listener knows `ap.localhost` (a wrong secret is refused with
/// not-authorized rather than host-unknown).
fn component_known(server: &Server) {
    let mut c = Raw::connect(server.component_addr());
    c.send(&format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{}'>",
        server.component_domain()
    ));
    let header = c.read_until_any(&["<stream:stream", "<stream:error"]);
    assert!(
        !header.contains("<stream:error"),
        "component refused: {header}"
    );
    c.read_until(">");
    c.send("<handshake>0000000000000000000000000000000000000000</handshake>");
    let reply = c.read_until_any(&["</stream:error>", "<handshake"]);
    assert!(
        reply.contains("not-authorized") && !reply.contains("host-unknown"),
        "{}: unexpected reply to a wrong handshake: {reply}",
        server.kind()
    );
    assert!(!server.component_secret().is_empty());
}

/// In-band registration (XEP-0077) is open on loopback.
fn register_in_band(addr: SocketAddr, user: &str, password: &str) {
    let mut c = Raw::connect(addr);
    c.open_stream();
    c.send(&format!(
        "<iq type='set' id='reg'><query xmlns='jabber:iq:register'>\
         <username>{user}</username><password>{password}</password></query></iq>"
    ));
    let tag = c.read_iq_tag("reg");
    assert!(
        tag.contains("result"),
        "in-band registration failed: {tag}{}",
        c.read_until("</iq>")
    );
}

fn end_to_end(kind: ServerKind) {
    let server = start(kind, &[("alice", "password"), ("bob", "b0b pass")]);
    assert_eq!(server.kind(), kind);
    assert_eq!(server.domain(), "localhost");
    assert_eq!(server.pubsub_service(), "pubsub.localhost");
    assert_eq!(server.component_domain(), "ap.localhost");
    assert!(server.c2s_addr().ip().is_loopback());
    let alice = server.account("alice").expect("alice");
    assert_eq!(alice.jid, "alice@localhost");
    assert!(server.account("nobody").is_none());

    login(server.c2s_addr(), "alice", "password");
    login(server.c2s_addr(), "bob", "b0b pass");
    component_known(&server);

    let mut c = session(server.c2s_addr(), "alice", "password");
    big_node(&server, &mut c);
    drop(c);

    let t = Instant::now();
    let carol = server.register("carol", "c4rol").expect("register carol");
    eprintln!("{kind}: registered carol in {:?}", t.elapsed());
    assert_eq!(carol.jid, "carol@localhost");
    login(server.c2s_addr(), "carol", "c4rol");
    register_in_band(server.c2s_addr(), "dave", "d4ve");
    login(server.c2s_addr(), "dave", "d4ve");

    assert!(server.log_tail(5).lines().count() <= 5);

    // Dropping the server stops it: the port closes and the directory goes away.
    let addr = server.c2s_addr();
    let dir = server.dir().to_path_buf();
    let t = Instant::now();
    drop(server);
    eprintln!("{kind}: stopped in {:?}", t.elapsed());
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "{kind} still accepts connections after drop"
    );
    if std::env::var_os("XMPP_TESTKIT_KEEP").is_none() {
        assert!(!dir.exists(), "{} still exists", dir.display());
    }
}

#[test]
fn prosody_end_to_end() {
    end_to_end(ServerKind::Prosody);
}

#[test]
fn ejabberd_end_to_end() {
    end_to_end(ServerKind::Ejabberd);
}

#[test]
fn both_kinds_at_once() {
    let handles: Vec<_> = [
        ServerKind::Prosody,
        ServerKind::Ejabberd,
        ServerKind::Prosody,
    ]
    .into_iter()
    .map(|kind| std::thread::spawn(move || start(kind, &[("alice", "password")])))
    .collect();
    let servers: Vec<Server> = handles
        .into_iter()
        .map(|h| h.join().expect("start thread"))
        .collect();
    let mut ports: Vec<u16> = servers
        .iter()
        .flat_map(|s| [s.c2s_addr().port(), s.component_addr().port()])
        .collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 2 * servers.len(), "ports are distinct");
    for server in &servers {
        login(server.c2s_addr(), "alice", "password");
    }
}

#[test]
fn bad_account_names_are_refused_before_starting() {
    for kind in ServerKind::ALL {
        match Server::start(kind, &[("Alice Smith", "pw")]) {
            Err(TestkitError::InvalidAccount { user, .. }) => assert_eq!(user, "Alice Smith"),
            other => panic!("expected InvalidAccount, got {other:?}"),
        }
    }
}
