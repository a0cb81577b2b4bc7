//! Helpers shared by the integration tests: real servers from `xmpp-testkit`, logins, and a macro that
//! runs a scenario on both Prosody and ejabberd.
#![allow(dead_code)] // each test file uses its own subset

use jid::Jid;
use xmpp_social::client::XmppClient;
use xmpp_testkit::{Server, ServerKind};

/// The password of every test account.
pub const PW: &str = "secret-pw";

/// Starts a server with `admins` given to `Server::start` (on Prosody they own every node of
/// pubsub.localhost) and `others` registered afterwards as ordinary accounts.
pub async fn start_with(
    kind: ServerKind,
    admins: &[&'static str],
    others: &[&'static str],
) -> Server {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let admins: Vec<(&str, &str)> = admins.iter().map(|u| (*u, PW)).collect();
    let others = others.to_vec();
    tokio::task::spawn_blocking(move || {
        let server =
            Server::start(kind, &admins).unwrap_or_else(|e| panic!("{kind:?} did not start: {e}"));
        for user in others {
            server
                .register(user, PW)
                .unwrap_or_else(|e| panic!("{kind:?}: could not register {user}: {e}"));
        }
        server
    })
    .await
    .expect("join")
}

/// Starts a server with alice, bob and carol.
pub async fn start(kind: ServerKind) -> Server {
    start_with(kind, &["alice", "bob", "carol"], &[]).await
}

/// Logs `user` in over plaintext loopback.
pub async fn login(server: &Server, user: &str) -> XmppClient {
    let jid = format!("{user}@{}", server.domain());
    XmppClient::connect_plaintext_loopback(&jid, PW, server.c2s_addr())
        .await
        .unwrap_or_else(|e| panic!("{user} could not log in: {e}\n{}", server.log_tail(30)))
}

/// Registers `user` on a running server and logs in.
pub async fn register(server: &Server, user: &str) -> XmppClient {
    tokio::task::block_in_place(|| server.register(user, PW))
        .unwrap_or_else(|e| panic!("could not register {user}: {e}"));
    login(server, user).await
}

/// A JID from a test constant.
pub fn jid(s: &str) -> Jid {
    Jid::new(s).expect("valid JID")
}

/// Runs each named `async fn(ServerKind)` as a test on Prosody (`prosody::name`) and on ejabberd
/// (`ejabberd::name`).
macro_rules! on_both_servers {
    ($($name:ident),* $(,)?) => {
        mod prosody {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(xmpp_testkit::ServerKind::Prosody).await
                }
            )*
        }
        mod ejabberd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(xmpp_testkit::ServerKind::Ejabberd).await
                }
            )*
        }
    };
}
