//! Example binaries of the xmpp-social SDK (`src/bin/`), and the small helpers they share.

pub mod jingle;
pub mod omemo;

use std::net::SocketAddr;

use jid::Jid;
use serde::Serialize;
use xmpp_social::client::{ClientConfig, Transport, XmppClient};
use xmpp_social::microblog::{BlogItem, Text};

/// The flat JSON view of one blog entry printed by `microblog list --json`.
#[derive(Debug, Serialize)]
pub struct EntryJson {
    /// Pubsub item id.
    pub id: String,
    /// Title as plain text.
    pub title: Option<String>,
    /// Content as plain text.
    pub content: Option<String>,
    /// XHTML content, serialised, when the entry has some.
    pub content_xhtml: Option<String>,
    /// Name of the first author.
    pub author: Option<String>,
    /// JID of the first author.
    pub author_jid: Option<String>,
    /// Publication date (XEP-0082).
    pub published: Option<String>,
    /// Last update (XEP-0082).
    pub updated: Option<String>,
    /// Category terms.
    pub tags: Vec<String>,
    /// Service of the comments node.
    pub comments_service: Option<String>,
    /// Comments node.
    pub comments_node: Option<String>,
    /// `xmpp:` URIs (or refs) of the items this one answers.
    pub in_reply_to: Vec<String>,
    /// Who repeated this entry, when it is a repeat (the item's publisher).
    pub repeated_by: Option<String>,
}

impl EntryJson {
    /// Flattens a blog item.
    pub fn from_item(item: &BlogItem) -> Self {
        let e = &item.entry;
        let comments = e.comments().into_iter().next();
        let author = e.authors.first();
        EntryJson {
            id: item.item_id.clone(),
            title: e.title.as_ref().map(Text::plain_text),
            content: e.body_text(),
            content_xhtml: e.body_xhtml().map(|x| String::from(x.element())),
            author: author.and_then(|a| a.name.clone()),
            author_jid: author.and_then(|a| a.jid()).map(|j| j.to_string()),
            published: e.published.map(|d| d.to_rfc3339()),
            updated: e.updated.map(|d| d.to_rfc3339()),
            tags: e.tags().map(str::to_owned).collect(),
            comments_service: comments.as_ref().map(|c| c.service.to_string()),
            comments_node: comments.map(|c| c.node),
            in_reply_to: e.in_reply_to.iter().map(|r| r.reference.clone()).collect(),
            repeated_by: e
                .repeated_item()
                .and(item.publisher.as_ref().map(|p| p.to_bare().to_string())),
        }
    }
}

/// The connection flags every example CLI takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Server address, HOST:PORT. A loopback address is reached without TLS (local test servers).
    #[arg(long)]
    pub server: String,
    /// Account JID.
    #[arg(long)]
    pub jid: String,
    /// Account password.
    #[arg(long)]
    pub password: String,
    /// Use STARTTLS even to a loopback address.
    #[arg(long)]
    pub starttls: bool,
}

/// Parses a JID argument.
pub fn parse_jid(s: &str) -> Result<Jid, String> {
    Jid::new(s).map_err(|e| format!("bad JID {s:?}: {e}"))
}

impl ConnectArgs {
    /// The client configuration [`ConnectArgs::connect`] uses: plaintext to a loopback address, STARTTLS
    /// otherwise. Callers can add disco features and IQ namespaces before connecting.
    pub fn client_config(&self) -> Result<ClientConfig, String> {
        let jid = parse_jid(&self.jid)?;
        let loopback = self
            .server
            .parse::<SocketAddr>()
            .ok()
            .filter(|a| a.ip().is_loopback());
        let transport = match loopback {
            Some(addr) if !self.starttls => Transport::PlaintextLoopback { addr },
            _ => Transport::StartTls {
                server: Some(self.server.clone()),
            },
        };
        Ok(ClientConfig::new(jid, self.password.clone(), transport))
    }

    /// Connects: plaintext to a loopback address, STARTTLS otherwise.
    pub async fn connect(&self) -> Result<XmppClient, String> {
        let jid = parse_jid(&self.jid)?;
        let loopback = self
            .server
            .parse::<SocketAddr>()
            .ok()
            .filter(|a| a.ip().is_loopback());
        let transport = match loopback {
            Some(addr) if !self.starttls => Transport::PlaintextLoopback { addr },
            _ => Transport::StartTls {
                server: Some(self.server.clone()),
            },
        };
        XmppClient::connect(ClientConfig::new(jid, self.password.clone(), transport))
            .await
            .map_err(|e| format!("cannot connect: {e}"))
    }
}

/// Runs an async CLI body on a fresh runtime and turns its result into an exit code.
pub fn run_main<F>(body: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<(), String>>,
{
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(body) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Prints a value as one line of JSON.
pub fn print_json<T: Serialize>(value: &T) -> Result<(), String> {
    println!(
        "{}",
        serde_json::to_string(value).map_err(|e| e.to_string())?
    );
    Ok(())
}
