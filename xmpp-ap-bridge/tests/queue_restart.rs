//! The gateway is stopped while activities are queued: nothing is lost, and after the restart the
//! deliveries resume, signed, with backoff (a failed delivery is not retried before its delay).
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use tokio::net::TcpListener;
use xmpp_ap_bridge::fetch::{FetchConfig, Fetcher};
use xmpp_ap_bridge::http::{HttpConfig, HttpDeliverer, LocalKeys};
use xmpp_ap_bridge::queue::{enqueue_all, run_worker, Backoff, WorkerConfig};
use xmpp_ap_bridge::signature::prepare_verification;
use xmpp_ap_bridge::store::{GatewayStore, SqliteGatewayStore};

#[derive(Default)]
struct Inbox {
    up: AtomicBool,
    /// (when, signature verified with alice's key, body) of each POST.
    seen: Mutex<Vec<(Instant, bool, String)>>,
    key_pem: Mutex<Option<String>>,
}

async fn inbox(
    State(inbox): State<Arc<Inbox>>,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let verified =
        prepare_verification("POST", uri.path(), &headers, Some(&body), SystemTime::now())
            .ok()
            .and_then(|p| {
                let pem = inbox.key_pem.lock().unwrap().clone()?;
                let key = xmpp_ap_bridge::signature::PublicKey::from_pem(&pem).ok()?;
                p.verify(&key).ok().map(|_| ())
            })
            .is_some();
    inbox.seen.lock().unwrap().push((
        Instant::now(),
        verified,
        String::from_utf8_lossy(&body).into_owned(),
    ));
    if inbox.up.load(Ordering::SeqCst) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

fn worker_config() -> WorkerConfig {
    WorkerConfig {
        backoff: Backoff {
            base: 2,
            max: 4,
            max_attempts: 10,
        },
        concurrency: 2,
        lease: 30,
        idle: Duration::from_millis(100),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_deliveries_survive_a_restart() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gw.sqlite");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let inbox_url = format!(
        "http://127.0.0.1:{}/inbox",
        listener.local_addr().unwrap().port()
    );
    let state = Arc::new(Inbox::default());
    let app = axum::Router::new()
        .route("/inbox", axum::routing::post(inbox))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config =
        HttpConfig::new("http://127.0.0.1:1/_ap", "localhost", "ap.localhost", None).unwrap();
    let fetcher = Fetcher::new(FetchConfig {
        allow_private_addresses: true,
        allow_http: true,
        ..FetchConfig::default()
    })
    .unwrap();

    // First run: the peer is down; three activities are queued and fail once.
    {
        let store = Arc::new(SqliteGatewayStore::open(&db).unwrap());
        let dyn_store: Arc<dyn GatewayStore> = store.clone();
        let keys = Arc::new(LocalKeys::new(dyn_store.clone()));
        let key = keys.key("alice@localhost").await.unwrap();
        *state.key_pem.lock().unwrap() = Some(key.public_key_pem().to_owned());
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        for n in 0..3 {
            let body = format!(r#"{{"id":"https://ap.localhost/activity/{n}","type":"Create"}}"#);
            enqueue_all(
                &*store,
                "alice@localhost",
                &body,
                std::slice::from_ref(&inbox_url),
                now,
            )
            .unwrap();
        }
        let deliverer = Arc::new(HttpDeliverer::new(fetcher.clone(), keys, config.clone()));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::spawn(run_worker(
            store.clone(),
            deliverer,
            worker_config(),
            async {
                let _ = stop_rx.await;
            },
        ));
        for _ in 0..200 {
            if state.seen.lock().unwrap().len() >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Let the failures be recorded, then "crash".
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = stop_tx.send(());
        worker.await.unwrap();
        assert_eq!(
            store.pending_count().unwrap(),
            3,
            "a queued activity was lost"
        );
        assert!(store.dead_letters().unwrap().is_empty());
    }
    let first_round = state.seen.lock().unwrap().len();
    assert_eq!(first_round, 3);
    assert!(
        state.seen.lock().unwrap().iter().all(|(_, v, _)| *v),
        "a delivery was not signed with alice's key"
    );

    // Restart with the peer up: every activity arrives, after its backoff delay.
    state.up.store(true, Ordering::SeqCst);
    let store = Arc::new(SqliteGatewayStore::open(&db).unwrap());
    let dyn_store: Arc<dyn GatewayStore> = store.clone();
    assert_eq!(store.pending_count().unwrap(), 3);
    let keys = Arc::new(LocalKeys::new(dyn_store));
    // The key survived the restart too.
    assert_eq!(
        keys.key("alice@localhost").await.unwrap().public_key_pem(),
        state.key_pem.lock().unwrap().as_deref().unwrap()
    );
    let deliverer = Arc::new(HttpDeliverer::new(fetcher, keys, config));
    tokio::spawn(run_worker(
        store.clone(),
        deliverer,
        worker_config(),
        std::future::pending(),
    ));
    for _ in 0..200 {
        if store.pending_count().unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        store.pending_count().unwrap(),
        0,
        "deliveries did not resume"
    );
    let seen = state.seen.lock().unwrap().clone();
    let (first, retried) = seen.split_at(first_round);
    assert_eq!(retried.len(), 3);
    assert!(retried.iter().all(|(_, v, _)| *v));
    let mut bodies: Vec<&str> = retried.iter().map(|(_, _, b)| b.as_str()).collect();
    bodies.sort_unstable();
    bodies.dedup();
    assert_eq!(bodies.len(), 3, "an activity was lost or duplicated");
    // Backoff: no retry came before the base delay (2 s, due times are whole seconds) after the
    // first attempt.
    let earliest_first = first.iter().map(|(t, _, _)| *t).min().unwrap();
    let earliest_retry = retried.iter().map(|(t, _, _)| *t).min().unwrap();
    assert!(
        earliest_retry.duration_since(earliest_first) >= Duration::from_millis(900),
        "retried before the backoff delay"
    );
}
