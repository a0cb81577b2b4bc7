#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::OnceLock;

use super::*;

/// One generated key per test binary (generation is slow in debug builds).
pub(crate) fn key() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(|| KeyPair::generate().unwrap())
}

const KEY_ID: &str = "https://ap.example.org/_ap/actor/alice@example.org#main-key";

fn now() -> SystemTime {
    // 2026-11-21T12:00:00Z, whole seconds (HTTP dates have no sub-second part).
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_262_400)
}

fn signed_post(body: &[u8]) -> (url::Url, HeaderMap) {
    let url = url::Url::parse("https://mastodon.example:8443/users/bob/inbox?x=1").unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/activity+json".parse().unwrap());
    sign_request(key(), KEY_ID, "POST", &url, &mut headers, Some(body), now()).unwrap();
    (url, headers)
}

fn verify_post(
    url: &url::Url,
    headers: &HeaderMap,
    body: &[u8],
    at: SystemTime,
) -> Result<(), SignatureError> {
    let pending = prepare_verification("POST", &path_and_query(url), headers, Some(body), at)?;
    pending.verify(&key().public_key().unwrap()).map(|_| ())
}

#[test]
fn sign_then_verify_post() {
    let body = br#"{"type":"Create"}"#;
    let (url, headers) = signed_post(body);
    assert_eq!(headers["host"], "mastodon.example:8443");
    assert_eq!(headers["date"], httpdate::fmt_http_date(now()).as_str());
    assert_eq!(headers["digest"], digest_header(body).as_str());
    let sig = SignatureHeader::parse(headers["signature"].to_str().unwrap()).unwrap();
    assert_eq!(sig.key_id, KEY_ID);
    assert_eq!(sig.algorithm, Some(Algorithm::RsaSha256));
    assert_eq!(
        sig.headers,
        ["(request-target)", "host", "date", "digest", "content-type"]
    );
    let pending =
        prepare_verification("POST", &path_and_query(&url), &headers, Some(body), now()).unwrap();
    assert_eq!(
        pending.key_document_url(),
        "https://ap.example.org/_ap/actor/alice@example.org"
    );
    assert!(pending.signing_string().starts_with(
        "(request-target): post /users/bob/inbox?x=1\nhost: mastodon.example:8443\ndate: "
    ));
    assert_eq!(
        pending.verify(&key().public_key().unwrap()).unwrap(),
        KEY_ID
    );
    // Within the window both ways.
    verify_post(&url, &headers, body, now() + Duration::from_secs(3500)).unwrap();
    verify_post(&url, &headers, body, now() - Duration::from_secs(3500)).unwrap();
}

#[test]
fn sign_then_verify_get_and_default_port() {
    let url = url::Url::parse("https://example.net:443/users/bob").unwrap();
    let mut headers = HeaderMap::new();
    sign_request(key(), KEY_ID, "GET", &url, &mut headers, None, now()).unwrap();
    assert_eq!(headers["host"], "example.net");
    assert!(!headers.contains_key("digest"));
    let pending = prepare_verification("GET", "/users/bob", &headers, None, now()).unwrap();
    assert_eq!(
        pending.header().headers,
        ["(request-target)", "host", "date"]
    );
    pending.verify(&key().public_key().unwrap()).unwrap();
}

#[test]
fn rejections_are_distinct_and_unauthorized() {
    let body = br#"{"type":"Follow"}"#;
    let (url, headers) = signed_post(body);
    let pk = key().public_key().unwrap();
    let path = path_and_query(&url);
    let mut errors = Vec::new();

    // No signature.
    let mut h = headers.clone();
    h.remove("signature");
    errors.push(prepare_verification("POST", &path, &h, Some(body), now()).unwrap_err());

    // Bad signature: a signed header changed after signing.
    let mut h = headers.clone();
    h.insert("content-type", "text/plain".parse().unwrap());
    let e = prepare_verification("POST", &path, &h, Some(body), now())
        .unwrap()
        .verify(&pk)
        .unwrap_err();
    errors.push(e);

    // Expired and future Date.
    errors.push(verify_post(&url, &headers, body, now() + Duration::from_secs(3601)).unwrap_err());
    errors.push(verify_post(&url, &headers, body, now() - Duration::from_secs(3601)).unwrap_err());

    // Digest mismatch (body changed).
    errors.push(verify_post(&url, &headers, b"{\"type\":\"Delete\"}", now()).unwrap_err());

    // A signed header absent from the request.
    let mut h = headers.clone();
    h.remove("content-type");
    errors.push(prepare_verification("POST", &path, &h, Some(body), now()).unwrap_err());

    // A POST whose signature does not cover the digest.
    let mut h = HeaderMap::new();
    sign_request(key(), KEY_ID, "POST", &url, &mut h, None, now()).unwrap();
    h.insert("digest", digest_header(body).parse().unwrap());
    errors.push(prepare_verification("POST", &path, &h, Some(body), now()).unwrap_err());

    // Unsupported algorithm.
    let mut h = headers.clone();
    let sig = h["signature"]
        .to_str()
        .unwrap()
        .replace("rsa-sha256", "hmac-sha256");
    h.insert("signature", sig.parse().unwrap());
    errors.push(prepare_verification("POST", &path, &h, Some(body), now()).unwrap_err());

    // Malformed Date.
    let mut h = headers.clone();
    h.insert("date", "yesterday".parse().unwrap());
    errors.push(prepare_verification("POST", &path, &h, Some(body), now()).unwrap_err());

    // Missing Digest header on a POST.
    let mut h = headers.clone();
    h.remove("digest");
    errors.push(prepare_verification("POST", &path, &h, Some(body), now()).unwrap_err());

    let expected = [
        "Missing",
        "BadSignature",
        "Expired",
        "InFuture",
        "DigestMismatch",
        "SignedHeaderAbsent",
        "HeaderNotSigned",
        "UnsupportedAlgorithm",
        "BadDate",
        "DigestMissing",
    ];
    for (e, name) in errors.iter().zip(expected) {
        assert!(format!("{e:?}").starts_with(name), "{e:?} should be {name}");
        assert!(e.is_unauthorized(), "{e:?}");
    }
    assert_eq!(errors.len(), expected.len());
}

#[test]
fn hs2019_and_missing_algorithm_accepted() {
    let body = b"{}";
    let (url, headers) = signed_post(body);
    for replacement in ["hs2019", "HS2019"] {
        let mut h = headers.clone();
        let sig = h["signature"]
            .to_str()
            .unwrap()
            .replace("rsa-sha256", replacement);
        h.insert("signature", sig.parse().unwrap());
        verify_post(&url, &h, body, now()).unwrap();
    }
    let mut h = headers.clone();
    let sig = h["signature"]
        .to_str()
        .unwrap()
        .replace("algorithm=\"rsa-sha256\",", "");
    h.insert("signature", sig.parse().unwrap());
    verify_post(&url, &h, body, now()).unwrap();
    // The Authorization: Signature form.
    let mut h = headers.clone();
    let sig = format!("Signature {}", h["signature"].to_str().unwrap());
    h.remove("signature");
    h.insert("authorization", sig.parse().unwrap());
    verify_post(&url, &h, body, now()).unwrap();
}

#[test]
fn required_headers() {
    let url = url::Url::parse("https://example.net/inbox").unwrap();
    let text = "(request-target): get /inbox";
    let sig = key().sign(text.as_bytes()).unwrap();
    for (list, missing) in [
        ("host date", "(request-target)"),
        ("(request-target) date", "host"),
        ("(request-target) host", "date"),
    ] {
        let mut h = HeaderMap::new();
        h.insert("host", "example.net".parse().unwrap());
        h.insert("date", httpdate::fmt_http_date(now()).parse().unwrap());
        let header = SignatureHeader {
            key_id: KEY_ID.into(),
            algorithm: Some(Algorithm::RsaSha256),
            headers: list.split(' ').map(str::to_owned).collect(),
            signature: sig.clone(),
            created: None,
            expires: None,
        };
        h.insert("signature", header.to_header_value().parse().unwrap());
        assert_eq!(
            prepare_verification("GET", url.path(), &h, None, now()),
            Err(SignatureError::HeaderNotSigned(missing.into()))
        );
    }
}

#[test]
fn created_and_expires() {
    let url = url::Url::parse("https://example.net/x").unwrap();
    let created = now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut h = HeaderMap::new();
    h.insert("host", "example.net".parse().unwrap());
    let headers: Vec<String> = ["(request-target)", "host", "(created)", "(expires)"]
        .map(str::to_owned)
        .to_vec();
    let text = signing_string(
        "GET",
        "/x",
        &h,
        &headers,
        Some(created),
        Some(created + 300),
    )
    .unwrap();
    assert_eq!(
        text,
        format!(
            "(request-target): get /x\nhost: example.net\n(created): {created}\n(expires): {}",
            created + 300
        )
    );
    let header = SignatureHeader {
        key_id: KEY_ID.into(),
        algorithm: Some(Algorithm::Hs2019),
        headers,
        signature: key().sign(text.as_bytes()).unwrap(),
        created: Some(created),
        expires: Some(created + 300),
    };
    h.insert("signature", header.to_header_value().parse().unwrap());
    let pk = key().public_key().unwrap();
    prepare_verification("GET", url.path(), &h, None, now())
        .unwrap()
        .verify(&pk)
        .unwrap();
    assert!(matches!(
        prepare_verification(
            "GET",
            url.path(),
            &h,
            None,
            now() + Duration::from_secs(301)
        ),
        Err(SignatureError::Expired { .. })
    ));
}

#[test]
fn header_parse_and_format() {
    let v = r#"keyId="https://a.example/u#main-key",algorithm="rsa-sha256",headers="(request-target) Host date",signature="AAEC""#;
    let h = SignatureHeader::parse(v).unwrap();
    assert_eq!(h.key_id, "https://a.example/u#main-key");
    assert_eq!(h.headers, ["(request-target)", "host", "date"]);
    assert_eq!(h.signature, [0, 1, 2]);
    assert_eq!(SignatureHeader::parse(&h.to_header_value()).unwrap(), h);
    // Spaces after commas, reordered parameters, unknown parameters ignored.
    let h2 = SignatureHeader::parse(
        r#"signature="AAEC", headers="(request-target) host date", foo="bar", keyId="https://a.example/u#main-key", algorithm="rsa-sha256""#,
    )
    .unwrap();
    assert_eq!(h2, h);
    // Default headers.
    let h3 = SignatureHeader::parse(r#"keyId="k",signature="AAEC""#).unwrap();
    assert_eq!(h3.headers, ["date"]);
    assert_eq!(h3.algorithm, None);

    let bad = [
        (
            r#"keyId="k""#,
            SignatureError::MissingParameter("signature"),
        ),
        (
            r#"signature="AAEC""#,
            SignatureError::MissingParameter("keyId"),
        ),
        (
            r#"keyId="",signature="AAEC""#,
            SignatureError::MissingParameter("keyId"),
        ),
        (r#"keyId="k",signature="!!""#, SignatureError::BadBase64),
        (r#"keyId="k",signature="""#, SignatureError::BadBase64),
        (
            r#"signature="AAEC",keyId="k"#,
            SignatureError::Malformed("unterminated quoted string"),
        ),
        (
            r#"keyId="k"x,signature="AAEC""#,
            SignatureError::Malformed("garbage after a parameter value"),
        ),
        (
            r#"keyId="k",keyId="j",signature="AAEC""#,
            SignatureError::Malformed("duplicate parameter"),
        ),
        (
            r#"keyId"#,
            SignatureError::Malformed("parameter without '='"),
        ),
        (r#"=x"#, SignatureError::Malformed("bad parameter name")),
        (
            r#"keyId="k",headers="",signature="AAEC""#,
            SignatureError::Malformed("empty headers parameter"),
        ),
        (
            r#"keyId="k",created=abc,signature="AAEC""#,
            SignatureError::Malformed("created/expires not an integer"),
        ),
        (
            r#"keyId="k",algorithm="ed25519",signature="AAEC""#,
            SignatureError::UnsupportedAlgorithm("ed25519".into()),
        ),
    ];
    for (v, e) in bad {
        assert_eq!(SignatureHeader::parse(v), Err(e), "{v}");
    }
    let many: String = (0..20).map(|i| format!("p{i}=\"x\",")).collect();
    assert_eq!(
        SignatureHeader::parse(&many),
        Err(SignatureError::Malformed("too many parameters"))
    );
    let long = format!("keyId=\"{}\"", "a".repeat(MAX_SIGNATURE_HEADER_LEN));
    assert!(matches!(
        SignatureHeader::parse(&long),
        Err(SignatureError::HeaderTooLong { .. })
    ));
    let hs: String = (0..40).map(|i| format!("h{i} ")).collect();
    assert_eq!(
        SignatureHeader::parse(&format!("keyId=\"k\",headers=\"{hs}\",signature=\"AAEC\"")),
        Err(SignatureError::Malformed("too many signed headers"))
    );
}

#[test]
fn bad_key_id_refused() {
    let (url, mut headers) = signed_post(b"{}");
    let sig = headers["signature"]
        .to_str()
        .unwrap()
        .replace(KEY_ID, "main-key");
    headers.insert("signature", sig.parse().unwrap());
    assert_eq!(
        verify_post(&url, &headers, b"{}", now()),
        Err(SignatureError::BadKeyId)
    );
}

#[test]
fn digest_checks() {
    assert_eq!(
        digest_header(b""),
        "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    );
    verify_digest("SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", b"").unwrap();
    verify_digest(
        "sha-512=abc, sha-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        b"",
    )
    .unwrap();
    assert_eq!(
        verify_digest("SHA-512=abc", b""),
        Err(SignatureError::DigestMissing)
    );
    assert_eq!(
        verify_digest("SHA-256=abc", b""),
        Err(SignatureError::DigestMalformed)
    );
    assert_eq!(
        verify_digest("SHA-256=AAEC", b""),
        Err(SignatureError::DigestMalformed)
    );
    assert_eq!(
        verify_digest("SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", b"x"),
        Err(SignatureError::DigestMismatch)
    );
}

#[test]
fn key_round_trips_and_debug() {
    let k = key();
    let again = KeyPair::from_pkcs8_der(&k.to_pkcs8_der()).unwrap();
    assert_eq!(again.public_key_pem(), k.public_key_pem());
    let again = KeyPair::from_pkcs8_pem(&k.to_pkcs8_pem()).unwrap();
    assert_eq!(again.public_key_pem(), k.public_key_pem());
    assert!(k
        .public_key_pem()
        .starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let pk = PublicKey::from_pem(k.public_key_pem()).unwrap();
    assert_eq!(PublicKey::from_pem(&pk.to_pem().unwrap()).unwrap(), pk);
    let dbg = format!("{k:?}");
    assert!(!dbg.contains("PRIVATE"), "{dbg}");
    let pem = k.to_pkcs8_pem();
    let b64_line = pem.lines().nth(1).unwrap();
    assert!(!dbg.contains(b64_line));
    assert!(KeyPair::from_pkcs8_der(b"junk").is_err());
    assert!(PublicKey::from_pem("junk").is_err());
    assert!(KeyPair::generate_with_bits(1024).is_err());
}

#[test]
fn key_owner_link() {
    let actor = "https://mastodon.example/users/bob";
    let key_id = "https://mastodon.example/users/bob#main-key";
    check_key_owner(key_id, actor, actor).unwrap();
    assert_eq!(
        check_key_owner(key_id, actor, "https://mastodon.example/users/eve"),
        Err(SignatureError::KeyOwnerMismatch)
    );
    assert_eq!(
        check_key_owner("https://evil.example/k", actor, actor),
        Err(SignatureError::KeyOwnerMismatch)
    );
}

// ---- Cross-check with an independent implementation: the OpenSSL command line. ----

fn openssl(args: &[&str], dir: &std::path::Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("the `openssl` command is needed for this test ({e}); install it with `apt-get install openssl`")
        });
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn openssl_cross_check() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A key made by OpenSSL, loaded by us.
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "key.pem",
        ],
        d,
    );
    openssl(&["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"], d);
    let ours =
        KeyPair::from_pkcs8_pem(&std::fs::read_to_string(d.join("key.pem")).unwrap()).unwrap();
    assert_eq!(
        ours.public_key_pem().trim(),
        std::fs::read_to_string(d.join("pub.pem")).unwrap().trim()
    );

    // A signing string built by us, signed by both: PKCS#1 v1.5 is deterministic, so byte-identical.
    let url = url::Url::parse("http://127.0.0.1:8080/inbox").unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/activity+json".parse().unwrap());
    sign_request(
        &ours,
        KEY_ID,
        "POST",
        &url,
        &mut headers,
        Some(b"{}"),
        now(),
    )
    .unwrap();
    let sig = SignatureHeader::parse(headers["signature"].to_str().unwrap()).unwrap();
    let text = signing_string("POST", "/inbox", &headers, &sig.headers, None, None).unwrap();
    assert_eq!(
        text,
        format!(
            "(request-target): post /inbox\nhost: 127.0.0.1:8080\ndate: {}\ndigest: SHA-256=RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o=\ncontent-type: application/activity+json",
            httpdate::fmt_http_date(now())
        )
    );
    std::fs::write(d.join("data"), text.as_bytes()).unwrap();
    let theirs = openssl(&["dgst", "-sha256", "-sign", "key.pem", "data"], d);
    assert_eq!(theirs, sig.signature);
    // OpenSSL verifies our signature with the PEM we publish, and we verify OpenSSL's.
    std::fs::write(d.join("sig"), &sig.signature).unwrap();
    std::fs::write(d.join("ours.pem"), ours.public_key_pem()).unwrap();
    let ok = openssl(
        &[
            "dgst",
            "-sha256",
            "-verify",
            "ours.pem",
            "-signature",
            "sig",
            "data",
        ],
        d,
    );
    assert_eq!(String::from_utf8_lossy(&ok).trim(), "Verified OK");
    PublicKey::from_pem(&std::fs::read_to_string(d.join("pub.pem")).unwrap())
        .unwrap()
        .verify(text.as_bytes(), &theirs)
        .unwrap();

    // A key generated by us is a valid PKCS#8 key for OpenSSL, and signs identically.
    std::fs::write(d.join("gen.pem"), key().to_pkcs8_pem().as_bytes()).unwrap();
    let theirs = openssl(&["dgst", "-sha256", "-sign", "gen.pem", "data"], d);
    assert_eq!(theirs, key().sign(text.as_bytes()).unwrap());

    // A 1024-bit key is refused.
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            "small.pem",
        ],
        d,
    );
    openssl(
        &[
            "pkey",
            "-in",
            "small.pem",
            "-pubout",
            "-out",
            "small_pub.pem",
        ],
        d,
    );
    assert_eq!(
        PublicKey::from_pem(&std::fs::read_to_string(d.join("small_pub.pem")).unwrap()),
        Err(SignatureError::InvalidKey("RSA key smaller than 2048 bits"))
    );
}
