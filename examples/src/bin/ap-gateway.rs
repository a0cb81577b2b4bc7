//! `ap-gateway --config FILE`: the XMPP <-> ActivityPub gateway of `xmpp-ap-bridge` as a service.
//!
//! FILE is TOML:
//!
//! ```toml
//! [xmpp]
//! component_jid = "ap.example.org"     # the component's domain, declared on the XMPP server
//! server = "127.0.0.1:5347"            # the server's component port (XEP-0114)
//! secret = "..."                       # the component's shared secret
//! xmpp_domain = "example.org"          # the XMPP domain whose blogs are federated
//! pubsub_service = "pubsub.example.org" # optional: a pubsub service whose nodes are actors
//!
//! [http]
//! bind = "127.0.0.1:8080"              # where the HTTP side listens
//! public_url = "https://ap.example.org" # how the fediverse reaches it (the /_ap base is under it)
//!
//! [store]
//! path = "/var/lib/ap-gateway/gateway.sqlite"
//!
//! [federation]
//! allow_private_addresses = false      # true only for tests on loopback (also allows http://)
//! ```
//!
//! The web server in front must route `/.well-known/webfinger` and `/_ap/` to `bind`. Prints
//! `ready` on stdout once both sides are up; stops on Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use jid::BareJid;
use serde::Deserialize;
use xmpp_ap_bridge::fetch::{FetchConfig, Fetcher};
use xmpp_ap_bridge::gateway::{Gateway, GatewayScheme, XmppObjects, IQ_NAMESPACES};
use xmpp_ap_bridge::http::{ApServer, HttpConfig, HttpDeliverer, LocalKeys};
use xmpp_ap_bridge::queue::{run_worker, WorkerConfig};
use xmpp_ap_bridge::store::{GatewayStore, SqliteGatewayStore};
use xmpp_social::component::{ComponentConfig, ComponentConnection};

#[derive(Parser)]
#[command(about = "XMPP <-> ActivityPub gateway")]
struct Args {
    /// The TOML configuration file.
    #[arg(long)]
    config: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    xmpp: XmppSection,
    http: HttpSection,
    store: StoreSection,
    #[serde(default)]
    federation: FederationSection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct XmppSection {
    component_jid: String,
    server: String,
    secret: String,
    xmpp_domain: String,
    pubsub_service: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    bind: String,
    public_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    path: PathBuf,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FederationSection {
    #[serde(default)]
    allow_private_addresses: bool,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| format!("cannot read {}: {e}", args.config.display()))?;
    let config: Config = toml::from_str(&text).map_err(|e| format!("bad configuration: {e}"))?;
    run(config).await
}

async fn run(config: Config) -> Result<(), BoxError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Arc::new(SqliteGatewayStore::open(&config.store.path)?);
    let dyn_store: Arc<dyn GatewayStore> = store.clone();
    let base = format!("{}/_ap", config.http.public_url.trim_end_matches('/'));
    let http_config = HttpConfig::new(
        &base,
        &config.xmpp.xmpp_domain,
        &config.xmpp.component_jid,
        config.xmpp.pubsub_service.as_deref(),
    )?;
    let private = config.federation.allow_private_addresses;
    let fetcher = Fetcher::new(FetchConfig {
        allow_private_addresses: private,
        allow_http: private,
        ..FetchConfig::default()
    })?;
    let keys = Arc::new(LocalKeys::new(dyn_store.clone()));

    let component = BareJid::new(&config.xmpp.component_jid)?;
    let server: SocketAddr = tokio::net::lookup_host(&config.xmpp.server)
        .await?
        .next()
        .ok_or("the XMPP server address does not resolve")?;
    let mut component_config = ComponentConfig::new(component.clone(), server, config.xmpp.secret);
    // Subscriptions of XMPP users to virtual JIDs (following fediverse actors), the items and
    // service discovery of virtual JIDs.
    component_config.iq_namespaces = IQ_NAMESPACES.iter().map(|s| (*s).to_owned()).collect();
    let conn = ComponentConnection::connect(component_config).await?;

    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let http = ApServer::new(
        http_config.clone(),
        dyn_store.clone(),
        keys.clone(),
        fetcher.clone(),
        Arc::new(XmppObjects::new(
            conn.clone(),
            GatewayScheme::new(http_config.clone(), component.clone()),
        )),
        tx,
    );
    let listener = tokio::net::TcpListener::bind(&config.http.bind).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = http.serve(listener, std::future::pending()).await {
            eprintln!("HTTP side stopped: {e}");
        }
    });
    let deliverer = Arc::new(HttpDeliverer::new(
        fetcher.clone(),
        keys,
        http_config.clone(),
    ));
    tokio::spawn(run_worker(
        store,
        deliverer,
        WorkerConfig::default(),
        std::future::pending(),
    ));
    let gateway = Gateway::new(GatewayScheme::new(http_config, component), dyn_store, conn)
        .with_fetcher(fetcher);
    println!("ready http={bound} base={base}");
    tokio::select! {
        () = gateway.run(rx) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
