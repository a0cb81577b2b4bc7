//! The inbox's rejections, each against the real HTTP server with a real signing client (this crate's
//! `signature` module) and a small "remote server" publishing actors and keys. Every rejection is
//! checked for its status AND for leaving the store and the gateway's inbound queue untouched.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use xmpp_ap_bridge::fetch::{FetchConfig, Fetcher};
use xmpp_ap_bridge::http::{ApServer, HttpConfig, InboundActivity, LocalKeys, NoObjects};
use xmpp_ap_bridge::signature::{sign_request, KeyPair};
use xmpp_ap_bridge::store::{GatewayStore, SqliteGatewayStore};

/// Two remote keys, generated once per test binary (slow in debug builds).
fn keys() -> &'static (KeyPair, KeyPair) {
    static KEYS: OnceLock<(KeyPair, KeyPair)> = OnceLock::new();
    KEYS.get_or_init(|| (KeyPair::generate().unwrap(), KeyPair::generate().unwrap()))
}

/// A plain HTTP client (rustls needs a provider installed even for http:// URLs).
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

type Docs = Arc<Mutex<HashMap<String, Value>>>;

/// The remote server: serves JSON documents by path, counts requests.
struct Remote {
    base: String,
    docs: Docs,
    hits: Arc<Mutex<usize>>,
}

async fn remote_get(
    State((docs, hits)): State<(Docs, Arc<Mutex<usize>>)>,
    uri: Uri,
) -> axum::response::Response {
    *hits.lock().unwrap() += 1;
    match docs.lock().unwrap().get(uri.path()) {
        Some(doc) => (
            [(header::CONTENT_TYPE, "application/activity+json")],
            doc.to_string(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start_remote() -> Remote {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let docs: Docs = Arc::default();
    let hits = Arc::new(Mutex::new(0));
    let app = axum::Router::new()
        .fallback(remote_get)
        .with_state((docs.clone(), hits.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (a, b) = keys();
    let remote = Remote { base, docs, hits };
    remote.actor("a", &format!("{}/users/a#main-key", remote.base), a);
    remote.actor("b", &format!("{}/users/b#main-key", remote.base), b);
    // Actor c publishes a key at a separate document, whose PEM is a's.
    remote.actor("c", &format!("{}/keys/x", remote.base), a);
    remote.put(
        "/keys/x",
        json!({"id": format!("{}/keys/x", remote.base), "type": "Key",
               "owner": format!("{}/users/c", remote.base), "publicKeyPem": a.public_key_pem()}),
    );
    remote
}

impl Remote {
    fn put(&self, path: &str, doc: Value) {
        self.docs.lock().unwrap().insert(path.to_owned(), doc);
    }

    fn actor(&self, name: &str, key_id: &str, key: &KeyPair) {
        let id = format!("{}/users/{name}", self.base);
        self.put(
            &format!("/users/{name}"),
            json!({
                "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
                "id": id, "type": "Person", "preferredUsername": name,
                "inbox": format!("{id}/inbox"),
                "endpoints": {"sharedInbox": format!("{}/inbox", self.base)},
                "publicKey": {"id": key_id, "owner": id, "publicKeyPem": key.public_key_pem()},
            }),
        );
    }

    fn user(&self, name: &str) -> String {
        format!("{}/users/{name}", self.base)
    }

    fn hits(&self) -> usize {
        *self.hits.lock().unwrap()
    }
}

/// The gateway's HTTP side with a SQLite store in a temporary directory.
struct Gateway {
    base: String,
    db: std::path::PathBuf,
    inbound: mpsc::Receiver<InboundActivity>,
    _dir: tempfile::TempDir,
}

async fn start_gateway(allow_private: bool) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gateway.sqlite");
    let store: Arc<dyn GatewayStore> = Arc::new(SqliteGatewayStore::open(&db).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let config =
        HttpConfig::new(&format!("{base}/_ap"), "localhost", "ap.localhost", None).unwrap();
    let fetcher = Fetcher::new(FetchConfig {
        allow_private_addresses: allow_private,
        allow_http: true,
        timeout: Duration::from_secs(5),
        ..FetchConfig::default()
    })
    .unwrap();
    let (tx, rx) = mpsc::channel(16);
    let keys = Arc::new(LocalKeys::new(store.clone()));
    let server = ApServer::new(config, store, keys, fetcher, Arc::new(NoObjects), tx);
    tokio::spawn(async move { server.serve(listener, std::future::pending()).await });
    Gateway {
        base,
        db,
        inbound: rx,
        _dir: dir,
    }
}

impl Gateway {
    fn inbox(&self) -> String {
        format!("{}/_ap/inbox/alice@localhost", self.base)
    }

    /// Every row of every table, as text.
    fn snapshot(&self) -> Vec<String> {
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        let mut out = Vec::new();
        for table in [
            "actor_keys",
            "remote_actors",
            "followers",
            "following",
            "seen_activities",
            "queue",
            "items",
        ] {
            let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
            let n = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let mut row = format!("{table}:");
                    for i in 0..n {
                        let v: rusqlite::types::Value = r.get(i)?;
                        row.push_str(&format!(" {v:?}"));
                    }
                    Ok(row)
                })
                .unwrap();
            out.extend(rows.map(Result::unwrap));
        }
        out
    }

    /// Asserts that nothing reached the gateway.
    fn assert_nothing_delivered(&mut self) {
        assert!(
            self.inbound.try_recv().is_err(),
            "a rejected activity reached the gateway"
        );
    }
}

fn create_note(remote: &Remote, actor: &str, n: u32, object_host: Option<&str>) -> Value {
    let object_base = object_host.map_or_else(|| remote.base.clone(), str::to_owned);
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/activities/{n}", remote.base),
        "type": "Create",
        "actor": actor,
        "object": {
            "id": format!("{object_base}/notes/{n}"),
            "type": "Note",
            "attributedTo": actor,
            "content": "<p>hello</p>",
            "to": "https://www.w3.org/ns/activitystreams#Public",
        },
    })
}

/// How to spoil a request.
#[derive(Default)]
struct Options {
    unsigned: bool,
    date: Option<SystemTime>,
    tamper_body: bool,
    rfc9421_only: bool,
}

async fn post(
    inbox: &str,
    key: &KeyPair,
    key_id: &str,
    body: Vec<u8>,
    options: Options,
) -> (StatusCode, String) {
    let url = url::Url::parse(inbox).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        "application/activity+json".parse().unwrap(),
    );
    if let Some(date) = options.date {
        headers.insert(header::DATE, httpdate::fmt_http_date(date).parse().unwrap());
    }
    if options.rfc9421_only {
        headers.insert(
            "signature-input",
            "sig1=(\"@method\" \"@target-uri\");keyid=\"x\";alg=\"rsa-v1_5-sha256\""
                .parse()
                .unwrap(),
        );
        headers.insert("signature", "sig1=:AAAA:".parse().unwrap());
    } else if !options.unsigned {
        sign_request(
            key,
            key_id,
            "POST",
            &url,
            &mut headers,
            Some(&body),
            SystemTime::now(),
        )
        .unwrap();
    }
    let mut body = body;
    if options.tamper_body {
        let last = body.len() - 2;
        body[last] = b' ';
    }
    let response = client()
        .post(url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

/// Runs one rejection: the request must get `expected` and change nothing.
async fn rejected(
    gateway: &mut Gateway,
    key: &KeyPair,
    key_id: &str,
    body: &Value,
    options: Options,
    expected: StatusCode,
    reason: &str,
) {
    let before = gateway.snapshot();
    let (status, text) = post(
        &gateway.inbox(),
        key,
        key_id,
        body.to_string().into_bytes(),
        options,
    )
    .await;
    assert_eq!(status, expected, "{text}");
    assert!(text.contains(reason), "unexpected reason {text:?}");
    assert_eq!(gateway.snapshot(), before, "the store changed");
    gateway.assert_nothing_delivered();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_then_replay_ignored() {
    let remote = start_remote().await;
    let mut gateway = start_gateway(true).await;
    let (a, _) = keys();
    let body = create_note(&remote, &remote.user("a"), 1, None);
    let key_id = format!("{}#main-key", remote.user("a"));
    let (status, _) = post(
        &gateway.inbox(),
        a,
        &key_id,
        body.to_string().into_bytes(),
        Options::default(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let got = gateway.inbound.recv().await.unwrap();
    assert_eq!(got.actor.id, remote.user("a"));
    assert_eq!(got.recipient.as_deref(), Some("alice@localhost"));
    // The replay: 202, nothing changes, nothing is delivered again.
    rejected(
        &mut gateway,
        a,
        &key_id,
        &body,
        Options::default(),
        StatusCode::ACCEPTED,
        "",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_post() {
    let remote = start_remote().await;
    let mut gateway = start_gateway(true).await;
    let (a, _) = keys();
    let body = create_note(&remote, &remote.user("a"), 2, None);
    let options = Options {
        unsigned: true,
        ..Options::default()
    };
    rejected(
        &mut gateway,
        a,
        "",
        &body,
        options,
        StatusCode::UNAUTHORIZED,
        "no Signature header",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9421_signature_gets_401_for_the_double_knock() {
    let remote = start_remote().await;
    let mut gateway = start_gateway(true).await;
    let (a, _) = keys();
    let body = create_note(&remote, &remote.user("a"), 3, None);
    let options = Options {
        rfc9421_only: true,
        ..Options::default()
    };
    rejected(
        &mut gateway,
        a,
        "",
        &body,
        options,
        StatusCode::UNAUTHORIZED,
        "keyId",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signature() {
    let remote = start_remote().await;
    let mut gateway = start_gateway(true).await;
    // Signed with b's key but claiming a's key.
    let (_, b) = keys();
    let body = create_note(&remote, &remote.user("a"), 4, None);
    let key_id = format!("{}#main-key", remote.user("a"));
    rejected(
        &mut gateway,
        b,
        &key_id,
        &body,
        Options::default(),
        StatusCode::UNAUTHORIZED,
        "does not verify",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_date() {
    let remote = start_remote().await;
    let mut gateway = start_gateway(true).await;
    let (a, _) = keys();
    let body = create_note(&remote, &remote.user("a"), 5, None);
    let key_id = format!("{}#main-key", remote.user("a"));
    let options = Options {
        date: Some(SystemTime::now() - Duration::from_secs(2 * 3600)),
        ..Options::default()
    };
    rejected(
        &mut gateway,
        a,
        &key_id,
        &body,
        options,
        StatusCode::UNAUTHORIZED,
        "Date too old",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_mismatch() {
    let remote = start_remote().await;
    let mut gateway = start_gateway(true).await;
    let (a, _) = keys();
    let body = create_note(&remote, &remote.user("a"), 6, None);
    let key_id = format!("{}#main-key", remote.user("a"));
    let options = Options {
        tamper_body: true,
        ..Options::default()
    };
    rejected(
        &mut gateway,
        a,
        &key_id,
        &body,
        options,
        StatusCode::UNAUTHORIZED,
        "Digest",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_owner_not_the_actor() {
    let remote = start_remote().await;
    let mut gateway = start_gateway(true).await;
    // keys/x holds a's PEM but its owner is c: a signature with it does not speak for a.
    let (a, _) = keys();
    let body = create_note(&remote, &remote.user("a"), 7, None);
    let key_id = format!("{}/keys/x", remote.base);
    rejected(
        &mut gateway,
        a,
        &key_id,
        &body,
        Options::default(),
        StatusCode::UNAUTHORIZED,
        "does not belong",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signer_not_the_activity_actor() {
    let remote = start_remote().await;
    let mut gateway = start_gateway(true).await;
    // b signs (validly, with its own key) an activity claiming to be a's.
    let (_, b) = keys();
    let body = create_note(&remote, &remote.user("a"), 8, None);
    let key_id = format!("{}#main-key", remote.user("b"));
    rejected(
        &mut gateway,
        b,
        &key_id,
        &body,
        Options::default(),
        StatusCode::UNAUTHORIZED,
        "does not belong",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_id_on_another_host() {
    let remote = start_remote().await;
    let mut gateway = start_gateway(true).await;
    let (a, _) = keys();
    let body = create_note(
        &remote,
        &remote.user("a"),
        9,
        Some("https://victim.example"),
    );
    let key_id = format!("{}#main-key", remote.user("a"));
    rejected(
        &mut gateway,
        a,
        &key_id,
        &body,
        Options::default(),
        StatusCode::BAD_REQUEST,
        "object id not on the actor's origin",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_address_fetch_refused() {
    let remote = start_remote().await;
    // A production gateway: the key on 127.0.0.1 must not be fetched.
    let mut gateway = start_gateway(false).await;
    let (a, _) = keys();
    let body = create_note(&remote, &remote.user("a"), 10, None);
    let key_id = format!("{}#main-key", remote.user("a"));
    rejected(
        &mut gateway,
        a,
        &key_id,
        &body,
        Options::default(),
        StatusCode::UNAUTHORIZED,
        "not allowed",
    )
    .await;
    assert_eq!(
        remote.hits(),
        0,
        "the gateway connected to a private address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body() {
    let remote = start_remote().await;
    let mut gateway = start_gateway(true).await;
    let (a, _) = keys();
    let mut body = create_note(&remote, &remote.user("a"), 11, None);
    body["object"]["content"] = json!("x".repeat(1024 * 1024 + 1));
    let key_id = format!("{}#main-key", remote.user("a"));
    rejected(
        &mut gateway,
        a,
        &key_id,
        &body,
        Options::default(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "too large",
    )
    .await;
    assert_eq!(remote.hits(), 0, "an oversized body made the gateway fetch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webfinger_and_actor_document() {
    let gateway = start_gateway(true).await;
    let client = client();
    let wf = client
        .get(format!(
            "{}/.well-known/webfinger?resource=acct:alice@localhost",
            gateway.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(wf.status(), StatusCode::OK);
    assert_eq!(wf.headers()[header::CONTENT_TYPE], "application/jrd+json");
    let jrd: Value = serde_json::from_str(&wf.text().await.unwrap()).unwrap();
    assert_eq!(jrd["subject"], "acct:alice@localhost");
    let actor_url = format!("{}/_ap/actor/alice@localhost", gateway.base);
    assert_eq!(jrd["links"][0]["href"], actor_url.as_str());
    assert_eq!(jrd["links"][0]["type"], "application/activity+json");
    // The same subject through the public host alias and the actor URL.
    for resource in [
        format!("acct:alice@{}", &gateway.base["http://".len()..]),
        actor_url.clone(),
    ] {
        let jrd: Value = client
            .get(
                url::Url::parse_with_params(
                    &format!("{}/.well-known/webfinger", gateway.base),
                    [("resource", resource)],
                )
                .unwrap(),
            )
            .send()
            .await
            .unwrap()
            .text()
            .await
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap();
        assert_eq!(jrd["subject"], "acct:alice@localhost");
    }
    let actor = client
        .get(&actor_url)
        .header(header::ACCEPT, "application/activity+json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        actor.headers()[header::CONTENT_TYPE],
        "application/activity+json"
    );
    let doc: Value = serde_json::from_str(&actor.text().await.unwrap()).unwrap();
    assert_eq!(doc["id"], actor_url.as_str());
    assert_eq!(doc["preferredUsername"], "alice");
    assert_eq!(doc["publicKey"]["id"], format!("{actor_url}#main-key"));
    let pem = doc["publicKey"]["publicKeyPem"]
        .as_str()
        .unwrap()
        .to_owned();
    // The key is kept: a second fetch (ld+json) shows the same one.
    let again = client
        .get(&actor_url)
        .header(
            header::ACCEPT,
            "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"",
        )
        .send()
        .await
        .unwrap();
    assert!(again.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("application/ld+json"));
    let doc: Value = serde_json::from_str(&again.text().await.unwrap()).unwrap();
    assert_eq!(doc["publicKey"]["publicKeyPem"], pem.as_str());
    let followers: Value = client
        .get(format!("{}/_ap/followers/alice@localhost", gateway.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    assert_eq!(followers["type"], "OrderedCollection");
    assert_eq!(followers["totalItems"], 0);
}
