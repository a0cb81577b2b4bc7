//! `pubsub-cache`: a local cache of pubsub nodes from the command line.
//!
//! ```text
//! pubsub-cache --db PATH [--server HOST:PORT --jid JID --password PW] sync [--service JID] [--node NODE] [--watch SECS]
//! pubsub-cache --db PATH search [--fts Q] [--filter PATH OP VALUE]... [--type T] [--service JID]...
//!              [--node NODE]... [--order-by FIELD[:desc]]... [--limit N] [--cursor C] [--payload] [--json]
//! pubsub-cache --db PATH purge [--type T]... [--service JID]... [--node NODE]... [--updated-before DATE]
//! pubsub-cache --db PATH stats
//! ```
//! Only `sync` connects (a loopback `--server` is reached without TLS, any other with STARTTLS).
//! A filter VALUE is read as JSON when it parses (`3`, `true`, `["a","b"]`), else as a string.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use jid::Jid;
use xmpp_pubsub_cache::analyser::json_date_micros;
use xmpp_pubsub_cache::{
    AsyncCache, Cache, Filter, Order, PurgeCriteria, Query, SyncEngine, SyncOptions,
};
use xmpp_social::client::{ClientConfig, Transport, XmppClient};

#[derive(Parser)]
#[command(about = "A local SQLite cache of XMPP pubsub nodes: sync, search, purge")]
struct Cli {
    /// The cache database file (created if missing).
    #[arg(long)]
    db: std::path::PathBuf,
    /// Server address, HOST:PORT (for `sync`).
    #[arg(long)]
    server: Option<String>,
    /// Account JID (for `sync`).
    #[arg(long)]
    jid: Option<String>,
    /// Account password (for `sync`).
    #[arg(long)]
    password: Option<String>,
    /// Use STARTTLS even to a loopback address.
    #[arg(long)]
    starttls: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Subscribe to and fetch a node into the cache.
    Sync {
        /// Pubsub service or PEP owner (default: your own PEP).
        #[arg(long)]
        service: Option<String>,
        /// Node (default: urn:xmpp:microblog:0).
        #[arg(long)]
        node: Option<String>,
        /// Keep applying live notifications for this many seconds.
        #[arg(long)]
        watch: Option<u64>,
    },
    /// Search the cache.
    Search {
        /// Full-text query (FTS5 syntax: words, "phrases", AND/OR/NOT, prefix*).
        #[arg(long)]
        fts: Option<String>,
        /// A filter: PATH OP VALUE (repeatable).
        #[arg(long, num_args = 3, value_names = ["PATH", "OP", "VALUE"], action = clap::ArgAction::Append)]
        filter: Vec<String>,
        /// Node type (repeatable).
        #[arg(long = "type")]
        types: Vec<String>,
        /// Service (repeatable).
        #[arg(long = "service")]
        services: Vec<String>,
        /// Node (repeatable).
        #[arg(long = "node")]
        nodes: Vec<String>,
        /// Ordering FIELD or FIELD:desc (repeatable).
        #[arg(long = "order-by")]
        order_by: Vec<String>,
        /// Page size.
        #[arg(long)]
        limit: Option<u32>,
        /// Cursor from a previous page.
        #[arg(long)]
        cursor: Option<String>,
        /// Include the payloads.
        #[arg(long)]
        payload: bool,
        /// One JSON object per item and line.
        #[arg(long)]
        json: bool,
    },
    /// Delete cached items.
    Purge {
        /// Node type (repeatable).
        #[arg(long = "type")]
        types: Vec<String>,
        /// Service (repeatable).
        #[arg(long = "service")]
        services: Vec<String>,
        /// Node (repeatable).
        #[arg(long = "node")]
        nodes: Vec<String>,
        /// Only items last changed in the cache before this date (RFC 3339 or YYYY-MM-DD).
        #[arg(long)]
        updated_before: Option<String>,
        /// Only items first seen before this date.
        #[arg(long)]
        created_before: Option<String>,
    },
    /// Counts.
    Stats,
}

fn parse_date(s: &str) -> Result<i64, String> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(d.timestamp_micros());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_micros())
        .ok_or_else(|| format!("bad date {s:?} (RFC 3339 or YYYY-MM-DD)"))
}

async fn connect(cli: &Cli) -> Result<XmppClient, String> {
    let (Some(server), Some(jid), Some(password)) = (&cli.server, &cli.jid, &cli.password) else {
        return Err("sync needs --server, --jid and --password".into());
    };
    let jid = Jid::new(jid).map_err(|e| format!("bad JID {jid:?}: {e}"))?;
    let loopback = server
        .parse::<SocketAddr>()
        .ok()
        .filter(|a| a.ip().is_loopback());
    let transport = match loopback {
        Some(addr) if !cli.starttls => Transport::PlaintextLoopback { addr },
        _ => Transport::StartTls {
            server: Some(server.clone()),
        },
    };
    XmppClient::connect(ClientConfig::new(jid, password.clone(), transport))
        .await
        .map_err(|e| format!("cannot connect: {e}"))
}

fn json_line(v: &impl serde::Serialize) -> Result<(), String> {
    println!("{}", serde_json::to_string(v).map_err(|e| e.to_string())?);
    Ok(())
}

async fn run(cli: Cli) -> Result<(), String> {
    let cache = Cache::open_sqlite(&cli.db).map_err(|e| format!("cannot open the cache: {e}"))?;
    let cache = AsyncCache::new(cache);
    match &cli.command {
        Command::Sync {
            service,
            node,
            watch,
        } => {
            let client = Arc::new(connect(&cli).await?);
            let service = service
                .as_deref()
                .map(Jid::new)
                .transpose()
                .map_err(|e| format!("bad service JID: {e}"))?;
            let node = node.as_deref().unwrap_or("urn:xmpp:microblog:0");
            let engine = Arc::new(SyncEngine::new(
                client.clone(),
                cache.clone(),
                SyncOptions::default(),
            ));
            engine.reset_stale().await.map_err(|e| e.to_string())?;
            let runner = {
                let engine = engine.clone();
                tokio::spawn(async move { engine.run().await })
            };
            let report = engine.sync_node(service.as_ref(), node).await;
            let result = match report {
                Ok(r) => {
                    json_line(&r)?;
                    if let Some(secs) = watch {
                        tokio::time::sleep(Duration::from_secs(*secs)).await;
                    }
                    Ok(())
                }
                Err(e) => Err(format!("sync failed: {e}")),
            };
            runner.abort();
            let _ = XmppClient::clone(&client).close().await;
            result
        }
        Command::Search {
            fts,
            filter,
            types,
            services,
            nodes,
            order_by,
            limit,
            cursor,
            payload,
            json,
        } => {
            let filters = filter
                .chunks(3)
                .map(|f| Filter {
                    path: f[0].clone(),
                    op: f[1].clone(),
                    value: serde_json::from_str(&f[2])
                        .unwrap_or_else(|_| serde_json::Value::String(f[2].clone())),
                })
                .collect();
            let order_by = order_by
                .iter()
                .map(|o| match o.rsplit_once(':') {
                    Some((f, "desc")) => Order {
                        field: f.to_owned(),
                        desc: true,
                    },
                    Some((f, "asc")) => Order {
                        field: f.to_owned(),
                        desc: false,
                    },
                    _ => Order {
                        field: o.clone(),
                        desc: false,
                    },
                })
                .collect();
            let q = Query {
                fts: fts.clone(),
                types: types.clone(),
                services: services.clone(),
                nodes: nodes.clone(),
                filters,
                order_by,
                limit: *limit,
                cursor: cursor.clone(),
                with_payload: *payload,
                ..Query::default()
            };
            let page = cache.search(q).await.map_err(|e| e.to_string())?;
            for item in &page.items {
                if *json {
                    json_line(item)?;
                } else {
                    let title = item
                        .parsed
                        .as_ref()
                        .and_then(|p| p.get("title"))
                        .and_then(|t| t.as_str())
                        .unwrap_or("");
                    let date = item.published.map(json_date_micros).unwrap_or_default();
                    println!(
                        "{} {} {} {date} {title}",
                        item.node.service, item.node.node, item.item_id
                    );
                }
            }
            if let Some(c) = page.next_cursor {
                eprintln!("next page: --cursor {c}");
            }
            Ok(())
        }
        Command::Purge {
            types,
            services,
            nodes,
            updated_before,
            created_before,
        } => {
            let criteria = PurgeCriteria {
                types: types.clone(),
                services: services.clone(),
                nodes: nodes.clone(),
                updated_before: updated_before.as_deref().map(parse_date).transpose()?,
                created_before: created_before.as_deref().map(parse_date).transpose()?,
                ..PurgeCriteria::default()
            };
            let n = cache.purge(criteria).await.map_err(|e| e.to_string())?;
            println!("purged {n} items");
            Ok(())
        }
        Command::Stats => json_line(&cache.stats().await.map_err(|e| e.to_string())?),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pubsub-cache: {e}");
            ExitCode::FAILURE
        }
    }
}
