//! SOCKS5 (XEP-0065 subset of RFC 1928) handshakes of xmpp-jingle, both sides, fed hostile bytes in
//! chunks of fuzzer-chosen sizes; and the XEP-0065 `<query/>` and XEP-0260 `<transport/>` parsers.
//! Typed errors only: no panic, the machines never ask for more than a reply's maximum size, a failed
//! machine stays failed, and every element that parses serialises and parses back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xmpp_jingle::socks5::bytestreams::Query;
use xmpp_jingle::socks5::proto::{ClientHandshake, ServerHandshake};
use xmpp_jingle::socks5::transport::Transport;

/// The largest SOCKS5 message either side reads at once (a reply with a 255-byte domain name).
const MAX_NEEDED: usize = 4 + 1 + 255 + 2;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => client(rest),
        1 => server(rest),
        _ => elements(rest),
    }
});

/// Splits `data` into chunks whose lengths come from the data itself (the first byte of each chunk).
fn chunks(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (&len, rest) = data.split_first()?;
        let n = (len as usize % 64).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        data = tail;
        Some(chunk)
    })
}

fn client(data: &[u8]) {
    let dst = xmpp_jingle::socks5::proto::dst_addr("sid-1", "alice@example.org/a", "bob@example.org/b");
    let (mut hs, greeting) = ClientHandshake::new(&dst).expect("valid DST.ADDR");
    assert!(!greeting.is_empty());
    let mut failed = false;
    for chunk in chunks(data) {
        assert!(hs.needed() <= MAX_NEEDED);
        let take = chunk.len().min(hs.needed());
        match hs.receive(&chunk[..take]) {
            Ok(_) => assert!(!failed, "a failed handshake went on"),
            Err(_) => failed = true,
        }
        if failed {
            assert_eq!(hs.needed(), 0);
            assert!(!hs.is_done());
        }
        if hs.is_done() {
            assert_eq!(hs.needed(), 0);
        }
    }
}

fn server(data: &[u8]) {
    let mut hs = ServerHandshake::new();
    let mut failed = false;
    for chunk in chunks(data) {
        assert!(hs.needed() <= MAX_NEEDED);
        let take = chunk.len().min(hs.needed());
        match hs.receive(&chunk[..take]) {
            Ok(_) => {}
            Err(e) => {
                failed = true;
                let _ = ServerHandshake::error_reply(&e);
            }
        }
        if let Some(requested) = hs.requested() {
            assert!(requested.len() <= 255);
            // Answer either way; neither may panic, whatever state the machine is in.
            if requested.len() % 2 == 0 {
                let _ = hs.accept();
            } else {
                let _ = hs.refuse();
            }
        }
        if failed {
            assert!(!hs.is_done());
        }
    }
}

fn elements(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(el) = xmpp_social::xml::parse_bounded(text, 64 * 1024) else {
        return;
    };
    if let Ok(q) = Query::from_element(&el) {
        let back = Query::from_element(&q.to_element()).expect("own query re-parses");
        assert_eq!(back, q);
    }
    if let Ok(t) = Transport::from_element(&el) {
        let back = Transport::from_element(&t.to_element()).expect("own transport re-parses");
        assert_eq!(back, t);
    }
}
