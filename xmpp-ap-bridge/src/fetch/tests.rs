#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::signature::{prepare_verification, KeyPair};

/// What the fake remote server answers on a path.
#[derive(Clone)]
struct Reply {
    status: u16,
    content_type: &'static str,
    /// `{id}` is replaced by the URL requested.
    body: String,
    content_length: bool,
    delay: Duration,
    extra_headers: &'static str,
}

fn object_reply(content_type: &'static str) -> Reply {
    Reply {
        status: 200,
        content_type,
        body: r#"{"@context":"https://www.w3.org/ns/activitystreams","id":"{id}","type":"Note"}"#
            .into(),
        content_length: true,
        delay: Duration::ZERO,
        extra_headers: "",
    }
}

type Seen = Arc<Mutex<Vec<(String, String, http::HeaderMap)>>>;

/// A tiny HTTP/1.1 server standing for a remote fediverse server serving fixed documents.
async fn serve(routes: HashMap<&'static str, Reply>) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let routes = routes.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut tmp).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&tmp[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let mut lines = head.split("\r\n");
                let mut request_line = lines.next().unwrap().split(' ');
                let method = request_line.next().unwrap().to_owned();
                let target = request_line.next().unwrap().to_owned();
                let mut headers = http::HeaderMap::new();
                for line in lines.take_while(|l| !l.is_empty()) {
                    let (k, v) = line.split_once(':').unwrap();
                    headers.append(
                        http::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                        v.trim().parse().unwrap(),
                    );
                }
                let host = headers["host"].to_str().unwrap().to_owned();
                seen.lock().unwrap().push((method, target.clone(), headers));
                let path = target.split('?').next().unwrap().to_owned();
                let reply = routes.get(path.as_str()).cloned().unwrap_or(Reply {
                    status: 404,
                    content_type: "text/plain",
                    body: "not found".into(),
                    content_length: true,
                    delay: Duration::ZERO,
                    extra_headers: "",
                });
                tokio::time::sleep(reply.delay).await;
                let body = reply
                    .body
                    .replace("{id}", &format!("http://{host}{target}"));
                let mut head = format!(
                    "HTTP/1.1 {} X\r\ncontent-type: {}\r\nconnection: close\r\n{}",
                    reply.status, reply.content_type, reply.extra_headers
                );
                if reply.content_length {
                    head.push_str(&format!("content-length: {}\r\n", body.len()));
                }
                head.push_str("\r\n");
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (port, seen)
}

fn test_config() -> FetchConfig {
    FetchConfig {
        allow_private_addresses: true,
        allow_http: true,
        ..FetchConfig::default()
    }
}

fn routes() -> HashMap<&'static str, Reply> {
    let big = "x".repeat(DEFAULT_MAX_BODY);
    let mut r = HashMap::new();
    r.insert(
        "/ok",
        object_reply("application/activity+json; charset=utf-8"),
    );
    r.insert(
        "/ld",
        object_reply("application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\""),
    );
    r.insert("/html", object_reply("text/html"));
    r.insert("/json", object_reply("application/json"));
    r.insert("/ld-noprofile", object_reply("application/ld+json"));
    r.insert(
        "/big",
        Reply {
            body: format!(r#"{{"id":"{{id}}","pad":"{big}"}}"#),
            ..object_reply("application/activity+json")
        },
    );
    r.insert(
        "/big-streamed",
        Reply {
            body: format!(r#"{{"id":"{{id}}","pad":"{big}"}}"#),
            content_length: false,
            ..object_reply("application/activity+json")
        },
    );
    r.insert(
        "/other-id",
        Reply {
            body: r#"{"id":"https://elsewhere.example/objects/1","type":"Note"}"#.into(),
            ..object_reply("application/activity+json")
        },
    );
    r.insert(
        "/no-id",
        Reply {
            body: r#"{"type":"Note"}"#.into(),
            ..object_reply("application/activity+json")
        },
    );
    r.insert(
        "/array",
        Reply {
            body: "[1,2]".into(),
            ..object_reply("application/activity+json")
        },
    );
    r.insert(
        "/slow",
        Reply {
            delay: Duration::from_secs(5),
            ..object_reply("application/activity+json")
        },
    );
    r.insert(
        "/redirect",
        Reply {
            status: 302,
            extra_headers: "location: /ok\r\n",
            ..object_reply("application/activity+json")
        },
    );
    r
}

#[tokio::test]
async fn private_addresses_refused_by_default() {
    let (port, seen) = serve(routes()).await;
    let fetcher = Fetcher::new(FetchConfig {
        allow_http: true,
        ..FetchConfig::default()
    })
    .unwrap();
    for (url, ip) in [
        (format!("http://127.0.0.1:{port}/ok"), "127.0.0.1"),
        // A name resolving to loopback: refused by the resolver, at connect time.
        (format!("http://localhost:{port}/ok"), ""),
        (format!("http://[::1]:{port}/ok"), "::1"),
        (
            format!("http://[::ffff:127.0.0.1]:{port}/ok"),
            "::ffff:127.0.0.1",
        ),
        (format!("http://0.0.0.0:{port}/ok"), "0.0.0.0"),
    ] {
        match fetcher.fetch_object(&url).await {
            Err(FetchError::ForbiddenAddress(found)) => {
                assert!(is_forbidden_address(found));
                if !ip.is_empty() {
                    assert_eq!(found, ip.parse::<IpAddr>().unwrap());
                }
            }
            other => panic!("{url}: {other:?}"),
        }
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "no request may reach the server"
    );
}

#[tokio::test]
async fn allowed_with_the_flag() {
    let (port, _) = serve(routes()).await;
    let fetcher = Fetcher::new(test_config()).unwrap();
    for path in ["/ok", "/ld", "/ok?page=1"] {
        let url = format!("http://127.0.0.1:{port}{path}");
        let obj = fetcher.fetch_object(&url).await.unwrap();
        assert_eq!(obj["id"], url.as_str());
        assert_eq!(obj["type"], "Note");
    }
    let url = format!("http://localhost:{port}/ok");
    assert_eq!(
        fetcher.fetch_object(&url).await.unwrap()["id"],
        url.as_str()
    );
}

#[tokio::test]
async fn https_only_by_default() {
    let fetcher = Fetcher::new(FetchConfig::default()).unwrap();
    for (url, scheme) in [
        ("http://example.org/x", "http"),
        ("ftp://example.org/x", "ftp"),
        ("file:///etc/passwd", "file"),
    ] {
        match fetcher.fetch_object(url).await {
            Err(FetchError::SchemeNotAllowed(s)) => assert_eq!(s, scheme),
            other => panic!("{url}: {other:?}"),
        }
    }
    assert!(matches!(
        fetcher.fetch_object("not a url").await,
        Err(FetchError::InvalidUrl(_))
    ));
    assert!(matches!(
        fetcher.fetch_object("https://user:pw@example.org/x").await,
        Err(FetchError::InvalidUrl(_))
    ));
}

#[tokio::test]
async fn oversize_bodies_refused() {
    let (port, _) = serve(routes()).await;
    let fetcher = Fetcher::new(test_config()).unwrap();
    for path in ["/big", "/big-streamed"] {
        match fetcher
            .fetch_object(&format!("http://127.0.0.1:{port}{path}"))
            .await
        {
            Err(FetchError::TooLarge { max }) => assert_eq!(max, DEFAULT_MAX_BODY),
            other => panic!("{path}: {other:?}"),
        }
    }
    let small = Fetcher::new(FetchConfig {
        max_body: 40,
        ..test_config()
    })
    .unwrap();
    assert!(matches!(
        small
            .fetch_object(&format!("http://127.0.0.1:{port}/ok"))
            .await,
        Err(FetchError::TooLarge { max: 40 })
    ));
}

#[tokio::test]
async fn wrong_content_type_refused() {
    let (port, _) = serve(routes()).await;
    let fetcher = Fetcher::new(test_config()).unwrap();
    for path in ["/html", "/json", "/ld-noprofile"] {
        match fetcher
            .fetch_object(&format!("http://127.0.0.1:{port}{path}"))
            .await
        {
            Err(FetchError::WrongContentType(_)) => {}
            other => panic!("{path}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn id_mismatch_refused() {
    let (port, _) = serve(routes()).await;
    let fetcher = Fetcher::new(test_config()).unwrap();
    for (path, found) in [
        ("/other-id", "https://elsewhere.example/objects/1"),
        ("/no-id", ""),
    ] {
        match fetcher
            .fetch_object(&format!("http://127.0.0.1:{port}{path}"))
            .await
        {
            Err(FetchError::IdMismatch { found: f, .. }) => assert_eq!(f, found),
            other => panic!("{path}: {other:?}"),
        }
    }
    assert!(matches!(
        fetcher
            .fetch_object(&format!("http://127.0.0.1:{port}/array"))
            .await,
        Err(FetchError::Json(_))
    ));
}

#[tokio::test]
async fn timeout_redirect_and_status() {
    let (port, _) = serve(routes()).await;
    let fetcher = Fetcher::new(FetchConfig {
        timeout: Duration::from_millis(300),
        ..test_config()
    })
    .unwrap();
    assert!(matches!(
        fetcher
            .fetch_object(&format!("http://127.0.0.1:{port}/slow"))
            .await,
        Err(FetchError::Timeout)
    ));
    assert!(matches!(
        fetcher
            .fetch_object(&format!("http://127.0.0.1:{port}/redirect"))
            .await,
        Err(FetchError::Redirect { status: 302 })
    ));
    assert!(matches!(
        fetcher
            .fetch_object(&format!("http://127.0.0.1:{port}/missing"))
            .await,
        Err(FetchError::Status(404))
    ));
}

#[tokio::test]
async fn connection_refused_is_transport() {
    // Bind then drop to get a port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let fetcher = Fetcher::new(test_config()).unwrap();
    assert!(matches!(
        fetcher
            .fetch_object(&format!("http://127.0.0.1:{port}/ok"))
            .await,
        Err(FetchError::Transport(_))
    ));
}

#[tokio::test]
async fn signed_get() {
    let (port, seen) = serve(routes()).await;
    let key = crate::signature::tests::key();
    let key_id = "https://ap.example.org/_ap/actor/gateway@ap.example.org#main-key";
    let fetcher = Fetcher::new(test_config()).unwrap().with_signing_key(
        Arc::new(KeyPair::from_pkcs8_der(&key.to_pkcs8_der()).unwrap()),
        key_id,
    );
    assert!(!format!("{fetcher:?}").contains("PRIVATE"));
    let url = format!("http://127.0.0.1:{port}/ok?x=1");
    fetcher.fetch_object(&url).await.unwrap();
    let (method, target, headers) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(headers["host"], format!("127.0.0.1:{port}").as_str());
    assert_eq!(headers["accept"], ACCEPT);
    let pending =
        prepare_verification(&method, &target, &headers, None, SystemTime::now()).unwrap();
    assert_eq!(pending.key_id(), key_id);
    pending.verify(&key.public_key().unwrap()).unwrap();
}

#[test]
fn forbidden_address_table() {
    let forbidden = [
        "0.0.0.0",
        "0.1.2.3",
        "10.0.0.1",
        "100.64.0.1",
        "100.127.255.255",
        "127.0.0.1",
        "127.255.0.1",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "192.168.1.1",
        "198.18.0.1",
        "198.19.255.255",
        "198.51.100.7",
        "203.0.113.9",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:8.8.8.8",
        "::127.0.0.1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "febf::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "2001::1",
        "3fff::1",
        "100::1",
        "64:ff9b::7f00:1",
        "64:ff9b::a00:1",
        "64:ff9b:1::1",
        "2002:7f00:1::",
        "2002:c0a8:101::",
    ];
    for a in forbidden {
        assert!(
            is_forbidden_address(a.parse().unwrap()),
            "{a} should be forbidden"
        );
    }
    let allowed = [
        "1.1.1.1",
        "8.8.8.8",
        "100.63.255.255",
        "100.128.0.1",
        "172.15.255.255",
        "172.32.0.1",
        "192.0.1.1",
        "192.169.0.1",
        "198.17.255.255",
        "198.20.0.1",
        "223.255.255.255",
        "2606:4700::1111",
        "2001:4860:4860::8888",
        "64:ff9b::808:808",
        "2002:808:808::",
        "2a01:4f8::1",
    ];
    for a in allowed {
        assert!(
            !is_forbidden_address(a.parse().unwrap()),
            "{a} should be allowed"
        );
    }
}

#[test]
fn content_types() {
    for ok in [
        "application/activity+json",
        "Application/Activity+JSON; charset=utf-8",
        "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"",
        "application/ld+json;profile=https://www.w3.org/ns/activitystreams",
        "application/ld+json; charset=utf-8; profile=\"http://example.org/x https://www.w3.org/ns/activitystreams\"",
    ] {
        assert!(is_activitypub_content_type(ok), "{ok}");
    }
    for bad in [
        "",
        "application/json",
        "text/html",
        "application/ld+json",
        "application/ld+json; profile=\"https://example.org\"",
        "application/activity+jsonx",
    ] {
        assert!(!is_activitypub_content_type(bad), "{bad}");
    }
}
