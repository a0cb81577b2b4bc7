//! Feeds arbitrary text to the ActivityPub gateway's parsers of remote input: the `Signature` header
//! (and a whole signed-request check), `Digest`, actor handles and `/_ap/...` URLs, XEP-0106 unescaping.
//! Typed errors only; what parses must format and parse back the same.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use xmpp_ap_bridge::escape::{escape_localpart, unescape_localpart};
use xmpp_ap_bridge::handles::{
    decode_item_id, encode_item_id, period_decode, period_encode, HandleMapper, UrlLayout,
};
use xmpp_ap_bridge::signature::{prepare_verification, verify_digest, SignatureHeader};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    // Signature header: parse, format, parse again.
    if let Ok(h) = SignatureHeader::parse(text) {
        let again = SignatureHeader::parse(&h.to_header_value()).expect("formatted header re-parses");
        assert_eq!(again, h);
    }
    // A whole incoming request check (everything but the RSA operation).
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_262_400);
    let mut headers = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::from_str(text) {
        headers.insert("signature", v.clone());
        headers.insert("digest", v);
        headers.insert("host", http::HeaderValue::from_static("ap.example.org"));
        headers.insert(
            "date",
            http::HeaderValue::from_static("Sat, 21 Nov 2026 12:00:00 GMT"),
        );
        let _ = prepare_verification("POST", "/_ap/inbox/a@b", &headers, Some(data), now);
        let _ = prepare_verification("GET", text, &headers, None, now);
    }
    let _ = verify_digest(text, data);

    // Handles.
    let mapper = HandleMapper::new("example.org", "ap.example.org");
    if let Ok(d) = mapper.decode(text) {
        let _ = d.clone().resolve(false);
        let _ = d.resolve(true);
    }
    if let Ok(s) = period_decode(text) {
        assert_eq!(period_decode(&period_encode(&s)).expect("period round trip"), s);
    }
    if let Ok(id) = decode_item_id(text) {
        assert_eq!(decode_item_id(&encode_item_id(&id)).expect("item id round trip"), id);
    }

    // Gateway URLs.
    let layout = UrlLayout::new("https://ap.example.org/_ap").expect("valid base");
    for parsed in [layout.parse_url(text), layout.parse_path(text)] {
        if let Ok(path) = parsed {
            if let Ok(url) = layout.url(&path) {
                assert_eq!(layout.parse_url(&url).expect("our URL parses"), path);
            }
        }
    }

    // XEP-0106.
    let _ = unescape_localpart(text);
    if let Ok(e) = escape_localpart(text) {
        assert_eq!(unescape_localpart(&e).expect("escaped unescapes"), text);
    }
});
