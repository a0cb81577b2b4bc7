//! ActivityPub inbox: signed inbound `Create(Note)` activities accepted per second by the gateway's
//! inbox (xmpp-ap-bridge's real axum router: body cap, draft-cavage signature and `Digest` checks, key
//! from the store's actor cache, key-owner and origin checks, de-duplication in the SQLite store, hand-off
//! to the gateway's inbound queue, 202) and by Fedify's inbox (interop/fedify/bench-inbox.mjs: Fedify
//! 2.3.6's own inbox listeners, JSON-LD parsing, signature verification with its key cache, actor/key
//! check, de-duplication, `on(Create)` listener, 202), on this machine, in the same run.
//!
//! Setup, shared by both: one sender actor whose actor document and public key (RSA-2048) this bench
//! serves over HTTP on 127.0.0.1; both inboxes fetch the key from there the normal way and cache it
//! (a warm-up round, not timed, makes that first fetch). The gateway runs in this process on its own
//! tokio runtime (2 worker threads, what `#[tokio::main]` gives on this 2-core machine), with a SQLite
//! store in a temporary directory and a task draining its inbound queue (counting) the way the gateway
//! loop would; Fedify runs in its own Node 22 process with its in-memory key-value store.
//!
//! Client: one `reqwest` client, the same code for both, `CONCURRENCY` requests in flight. Every
//! activity is distinct (its own id) and **pre-signed before the clock starts** (draft-cavage
//! `rsa-sha256` over `(request-target) host date digest content-type`, `Digest: SHA-256`, `Date`,
//! `Host` with the port, this crate's `sign_request`): signing is excluded from both sides equally.
//! Only 2xx answers count, and each batch is checked against the inbox's own count of accepted
//! activities (the gateway's inbound queue; Fedify's `/_bench/count`, i.e. its `Create` listener):
//! a batch where not every activity was accepted aborts the bench.
//!
//! `cargo bench -p xmpp-social-benches --bench ap_inbox`: criterion groups, then interleaved rounds
//! (the order alternates) at 1 and `CONCURRENCY` in flight, printing accepted activities/s (median and
//! best round), the server's CPU time per activity (the gateway runtime's threads, the whole Node
//! process; from `/proc`, 10 ms ticks) and `gateway / fedify accepted-per-second ratio: X` (medians,
//! `CONCURRENCY` in flight). `AP_INBOX_STORE_DIR=/dev/shm` puts the gateway's SQLite store on a tmpfs
//! (what its durable commits cost shows as the difference).
//! Under `cargo test --benches` a quick smoke run of a few activities. Needs the Fedify peer
//! (`.ci/setup-fedify.sh`); without it the bench fails and says so.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use criterion::{Criterion, Throughput};
use reqwest::header::HeaderMap;
use reqwest::Url;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use xmpp_ap_bridge::fetch::{FetchConfig, Fetcher};
use xmpp_ap_bridge::http::{ApServer, HttpConfig, InboundActivity, LocalKeys, NoObjects};
use xmpp_ap_bridge::signature::{sign_request, KeyPair};
use xmpp_ap_bridge::store::{GatewayStore, SqliteGatewayStore};

/// Requests in flight for the headline figure.
const CONCURRENCY: usize = 4;
/// Capacity of the gateway's inbound queue (as in the `ap-gateway` example).
const INBOUND_QUEUE: usize = 1024;

/// A request ready to send: signed, not timed.
struct Signed {
    url: Url,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// The sender: an actor on a small HTTP server of ours, publishing its key.
struct Sender {
    key: Arc<KeyPair>,
    origin: String,
    actor: String,
    key_id: String,
    /// Requests the sender's server answered (key fetches): [by the gateway, by anyone else (Fedify)].
    hits: Arc<[AtomicU64; 2]>,
    next_id: AtomicU64,
}

impl Sender {
    async fn start(key: KeyPair) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the sender's server");
        let port = listener.local_addr().expect("local address").port();
        let origin = format!("http://127.0.0.1:{port}");
        let actor = format!("{origin}/users/sender");
        let key_id = format!("{actor}#main-key");
        let document = json!({
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": actor,
            "type": "Person",
            "preferredUsername": "sender",
            "inbox": format!("{actor}/inbox"),
            "outbox": format!("{actor}/outbox"),
            "endpoints": {"sharedInbox": format!("{origin}/inbox")},
            "publicKey": {"id": key_id, "owner": actor, "publicKeyPem": key.public_key_pem()},
        })
        .to_string();
        let hits: Arc<[AtomicU64; 2]> = Arc::default();
        let counter = hits.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
            let document = document.clone();
            let counter = counter.clone();
            async move {
                let agent = headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let who = usize::from(!agent.starts_with("xmpp-ap-bridge"));
                counter[who].fetch_add(1, Ordering::Relaxed);
                if uri.path() == "/users/sender" {
                    (
                        [(header::CONTENT_TYPE, "application/activity+json")],
                        document,
                    )
                        .into_response()
                } else {
                    StatusCode::NOT_FOUND.into_response()
                }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            key: Arc::new(key),
            origin,
            actor,
            key_id,
            hits,
            next_id: AtomicU64::new(0),
        }
    }

    /// A new, distinct Create(Note) by the sender.
    fn create_note(&self, to: &str) -> Vec<u8> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let public = "https://www.w3.org/ns/activitystreams#Public";
        json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{}/activities/{n}", self.origin),
            "type": "Create",
            "actor": self.actor,
            "published": "2026-01-01T12:00:00Z",
            "to": [public],
            "cc": [to],
            "object": {
                "id": format!("{}/notes/{n}", self.origin),
                "type": "Note",
                "attributedTo": self.actor,
                "content": format!("<p>Bench note number {n}, with a <a href=\"{}/tags/bench\">#bench</a> tag.</p>", self.origin),
                "published": "2026-01-01T12:00:00Z",
                "to": [public],
                "cc": [to],
            },
        })
        .to_string()
        .into_bytes()
    }

    /// `count` activities for `inbox`, signed now (before any timing).
    fn sign_batch(&self, inbox: &Url, recipient: &str, count: usize) -> Vec<Signed> {
        (0..count)
            .map(|_| {
                let body = self.create_note(recipient);
                let mut headers = HeaderMap::new();
                headers.insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/activity+json"),
                );
                sign_request(
                    &self.key,
                    &self.key_id,
                    "POST",
                    inbox,
                    &mut headers,
                    Some(&body),
                    SystemTime::now(),
                )
                .expect("sign a request");
                Signed {
                    url: inbox.clone(),
                    headers,
                    body,
                }
            })
            .collect()
    }
}

/// Which inbox, and how it counts what it accepted.
enum Counter {
    /// Activities that reached the gateway's inbound queue (drained by a task).
    Gateway(Arc<AtomicU64>),
    /// Fedify's `GET /_bench/count` (`created`).
    Fedify(Url),
}

/// Whose CPU time an inbox spends.
enum Cpu {
    /// This process's threads of that name (the gateway's runtime).
    Threads(&'static str),
    /// A whole process (Node: main thread, libuv pool, JIT and GC threads).
    Process(u32),
}

/// Ticks of user + system time in a `/proc/.../stat` line (fields 14 and 15, counted after `comm`).
fn stat_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

impl Cpu {
    /// CPU time so far (Linux `/proc`, in USER_HZ = 100 ticks/s); `None` where `/proc` is missing.
    fn used(&self) -> Option<Duration> {
        let ticks = match self {
            Cpu::Threads(name) => {
                let mut sum = 0;
                for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
                    let comm =
                        std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
                    if comm.trim_end() == *name {
                        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                        sum += stat_ticks(&stat)?;
                    }
                }
                sum
            }
            Cpu::Process(pid) => {
                stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?
            }
        };
        Some(Duration::from_millis(ticks * 10))
    }
}

/// One inbox under test.
struct Inbox {
    name: &'static str,
    url: Url,
    /// The local actor the activities are addressed to.
    recipient: String,
    counter: Counter,
    cpu: Cpu,
}

/// One timed batch.
struct Measure {
    /// Wall time of the posting.
    elapsed: Duration,
    /// CPU time the inbox's server spent meanwhile.
    cpu: Option<Duration>,
}

impl Inbox {
    async fn accepted(&self, client: &reqwest::Client) -> u64 {
        match &self.counter {
            Counter::Gateway(n) => n.load(Ordering::SeqCst),
            Counter::Fedify(url) => {
                let v: Value = client
                    .get(url.clone())
                    .send()
                    .await
                    .expect("Fedify's count endpoint answers")
                    .json()
                    .await
                    .expect("Fedify's count endpoint answers JSON");
                assert_eq!(
                    v["errors"], 0,
                    "the Fedify inbox reported errors (see its stderr): {v}"
                );
                v["created"].as_u64().expect("a count")
            }
        }
    }
}

/// The gateway's HTTP side on its own runtime.
struct Gateway {
    _runtime: Runtime,
    _dir: tempfile::TempDir,
    inbox: Inbox,
}

fn start_gateway() -> Gateway {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("gateway")
        .enable_all()
        .build()
        .expect("the gateway's runtime");
    // AP_INBOX_STORE_DIR puts the store on another file system (e.g. a tmpfs, to see what the
    // durable commits of the de-duplication cost); the system's temporary directory by default.
    let dir = match std::env::var_os("AP_INBOX_STORE_DIR") {
        Some(parent) => tempfile::tempdir_in(parent),
        None => tempfile::tempdir(),
    }
    .expect("a temporary directory for the gateway's store");
    println!("gateway store: {}", dir.path().display());
    let store: Arc<dyn GatewayStore> = Arc::new(
        SqliteGatewayStore::open(dir.path().join("gateway.sqlite")).expect("the gateway's store"),
    );
    let received = Arc::new(AtomicU64::new(0));
    let count = received.clone();
    let base = runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the gateway");
        let base = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("local address").port()
        );
        let config = HttpConfig::new(&format!("{base}/_ap"), "localhost", "ap.localhost", None)
            .expect("the gateway's HTTP settings");
        // Loopback peers: private addresses and plain http allowed, as in the tests.
        let fetcher = Fetcher::new(FetchConfig {
            allow_private_addresses: true,
            allow_http: true,
            ..FetchConfig::default()
        })
        .expect("the gateway's fetcher");
        let (tx, mut rx) = mpsc::channel::<InboundActivity>(INBOUND_QUEUE);
        let keys = Arc::new(LocalKeys::new(store.clone()));
        let server = ApServer::new(config, store, keys, fetcher, Arc::new(NoObjects), tx);
        tokio::spawn(async move { server.serve(listener, std::future::pending()).await });
        // What the gateway loop would do with each accepted activity is not part of the inbox: count.
        tokio::spawn(async move {
            while rx.recv().await.is_some() {
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        base
    });
    let url = Url::parse(&format!("{base}/_ap/inbox/alice@localhost")).expect("inbox URL");
    Gateway {
        _runtime: runtime,
        _dir: dir,
        inbox: Inbox {
            name: "gateway",
            url,
            recipient: format!("{base}/_ap/actor/alice@localhost"),
            counter: Counter::Gateway(received),
            cpu: Cpu::Threads("gateway"),
        },
    }
}

/// The Fedify bench inbox, killed on drop.
struct Fedify {
    _child: Child,
    inbox: Inbox,
}

fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), PathBuf::from)
}

async fn start_fedify() -> Fedify {
    let dir = repo_root().join("interop/fedify");
    let node = dir.join("node_modules/.bin/node");
    assert!(
        node.exists() && dir.join("node_modules/@fedify/fedify").exists(),
        "the Fedify peer is not installed ({} missing): run .ci/setup-fedify.sh \
         (Node 22 from npm and the pinned @fedify packages)",
        node.display()
    );
    let mut child = Command::new(&node)
        .arg(dir.join("bench-inbox.mjs"))
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", node.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["event"] == "ready" {
                    return Some(v);
                }
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("the Fedify bench inbox did not print its ready line (see its stderr above)");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let field = |name: &str| {
        Url::parse(ready[name].as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("bad {name} in the ready line {ready}: {e}"))
    };
    let mut count = field("origin");
    count.set_path("/_bench/count");
    let pid = child.id().expect("the Fedify process is running");
    Fedify {
        _child: child,
        inbox: Inbox {
            name: "fedify",
            url: field("inbox"),
            recipient: field("actor").to_string(),
            counter: Counter::Fedify(count),
            cpu: Cpu::Process(pid),
        },
    }
}

/// Posts `batch` with `concurrency` requests in flight; returns the 2xx answers and the elapsed time.
async fn post_all(
    client: &reqwest::Client,
    batch: Vec<Signed>,
    concurrency: usize,
) -> (u64, Duration) {
    let batch = Arc::new(batch);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (client, batch, next) = (client.clone(), batch.clone(), next.clone());
            tokio::spawn(async move {
                let mut ok = 0u64;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(req) = batch.get(i) else { break };
                    let response = client
                        .post(req.url.clone())
                        .headers(req.headers.clone())
                        .body(req.body.clone())
                        .send()
                        .await;
                    match response {
                        Ok(r) => {
                            let status = r.status();
                            // Read the answer to the end (keeps the connection reusable).
                            let text = r.text().await.unwrap_or_default();
                            if status.is_success() {
                                ok += 1;
                            } else {
                                eprintln!("refused with {status}: {text}");
                            }
                        }
                        Err(e) => eprintln!("request failed: {e}"),
                    }
                }
                ok
            })
        })
        .collect();
    let mut ok = 0;
    for w in workers {
        ok += w.await.expect("a sender task");
    }
    (ok, start.elapsed())
}

/// The bench's state: runtimes, sender, both inboxes.
struct Bench {
    client: reqwest::Client,
    sender: Sender,
    gateway: Gateway,
    fedify: Fedify,
    // Dropped last: the Fedify child is killed first.
    runtime: Runtime,
}

impl Bench {
    fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // The client side (and the sender's key server): its own runtime, the same for both inboxes.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("client")
            .enable_all()
            .build()
            .expect("the client's runtime");
        let key = KeyPair::generate().expect("an RSA key");
        let gateway = start_gateway();
        let (sender, fedify) =
            runtime.block_on(async { (Sender::start(key).await, start_fedify().await) });
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(64)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        Self {
            client,
            sender,
            gateway,
            fedify,
            runtime,
        }
    }

    fn inboxes(&self) -> [&Inbox; 2] {
        [&self.gateway.inbox, &self.fedify.inbox]
    }

    /// Signs `count` activities for `inbox` (untimed), posts them (timed), checks that every one was
    /// accepted (2xx and the inbox's own count); returns the posting's wall and CPU time.
    fn batch(&self, inbox: &Inbox, count: usize, concurrency: usize) -> Measure {
        let batch = self.sender.sign_batch(&inbox.url, &inbox.recipient, count);
        self.runtime.block_on(async {
            let before = inbox.accepted(&self.client).await;
            let cpu_before = inbox.cpu.used();
            let (ok, elapsed) = post_all(&self.client, batch, concurrency).await;
            let cpu = inbox
                .cpu
                .used()
                .zip(cpu_before)
                .map(|(a, b)| a.saturating_sub(b));
            // The gateway hands activities to its queue before answering 202; give the drain a moment.
            let mut after = inbox.accepted(&self.client).await;
            for _ in 0..100 {
                if after - before >= count as u64 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                after = inbox.accepted(&self.client).await;
            }
            assert_eq!(ok, count as u64, "{}: not every POST got 2xx", inbox.name);
            assert_eq!(
                after - before,
                count as u64,
                "{}: the inbox did not accept every activity",
                inbox.name
            );
            Measure { elapsed, cpu }
        })
    }
}

fn criterion_benches(c: &mut Criterion, bench: &Bench) {
    let mut group = c.benchmark_group("ap_inbox_create_note");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(8));
    for inbox in bench.inboxes() {
        group.bench_function(format!("{}_{CONCURRENCY}_in_flight", inbox.name), |b| {
            b.iter_custom(|iters| {
                bench
                    .batch(
                        inbox,
                        usize::try_from(iters).unwrap_or(usize::MAX),
                        CONCURRENCY,
                    )
                    .elapsed
            })
        });
    }
    group.finish();
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Interleaved rounds; returns the medians (gateway, fedify) in activities/s.
fn rounds(bench: &Bench, per_round: usize, rounds: usize, concurrency: usize) -> (f64, f64) {
    let mut rates = [Vec::new(), Vec::new()];
    let mut cpu = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        // Alternate who goes first, so neither always runs right after the other's load.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let m = bench.batch(bench.inboxes()[i], per_round, concurrency);
            rates[i].push(per_round as f64 / m.elapsed.as_secs_f64());
            if let Some(c) = m.cpu {
                cpu[i].push(c.as_secs_f64() * 1e6 / per_round as f64);
            }
        }
    }
    println!(
        "  {concurrency} in flight, {rounds} interleaved rounds of {per_round} activities each:"
    );
    let names = [
        "gateway (xmpp-ap-bridge: axum, ring, SQLite)",
        "fedify 2.3.6 (Node 22)",
    ];
    let mut medians = [0.0; 2];
    for i in 0..2 {
        let best = rates[i].iter().copied().fold(0.0, f64::max);
        medians[i] = median(&mut rates[i]);
        let cpu = if cpu[i].is_empty() {
            "n/a".to_owned()
        } else {
            format!("{:.0}", median(&mut cpu[i]))
        };
        println!(
            "    {:<46} {:>7.0} accepted/s median, {:>7.0} best; server CPU {cpu:>5} us/activity",
            names[i], medians[i], best
        );
    }
    (medians[0], medians[1])
}

fn fetches(bench: &Bench) -> [u64; 2] {
    let hits = &bench.sender.hits;
    [
        hits[0].load(Ordering::Relaxed),
        hits[1].load(Ordering::Relaxed),
    ]
}

fn print_ratio(bench: &Bench, full: bool, warm: [u64; 2]) {
    let (per_round, n_rounds) = if full { (1000, 5) } else { (20, 1) };
    println!("\nSigned inbound Create(Note) accepted per second (signing excluded: pre-signed):");
    let (g1, f1) = rounds(bench, per_round / 2, n_rounds, 1);
    let (g, f) = rounds(bench, per_round, n_rounds, CONCURRENCY);
    let now = fetches(bench);
    println!(
        "  sender's actor document fetched by the gateway {} times, by Fedify {} times \
         (during the warm-up; {} and {} after it: both cache the key)",
        warm[0],
        warm[1],
        now[0] - warm[0],
        now[1] - warm[1]
    );
    println!(
        "gateway / fedify accepted-per-second ratio, 1 in flight: {:.2}",
        g1 / f1
    );
    println!("gateway / fedify accepted-per-second ratio: {:.2}", g / f);
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (quick smoke run then).
    let full = std::env::args().any(|a| a == "--bench");
    let bench = Bench::start();
    // Warm-up (untimed): each inbox fetches and caches the sender's key, Node's JIT warms up.
    for inbox in bench.inboxes() {
        bench.batch(inbox, if full { 300 } else { 5 }, CONCURRENCY);
    }
    let warm = fetches(&bench);
    if full {
        let mut criterion = Criterion::default().configure_from_args();
        criterion_benches(&mut criterion, &bench);
        criterion.final_summary();
    }
    print_ratio(&bench, full, warm);
}
