//! A running test server and its lifecycle.

use std::fs::{self, File, OpenOptions};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::util::{
    accepts, chown_recursive, env_flag, free_ports, group_alive, loopback, pid_alive, random_hex,
    signal_group, signal_pid, tail_file, temp_base,
};
use crate::{ejabberd, prosody, ServerKind, TestkitError};

/// The XMPP domain of every test server.
pub(crate) const DOMAIN: &str = "localhost";
/// The pubsub service of every test server.
pub(crate) const PUBSUB_DOMAIN: &str = "pubsub.localhost";
/// The external component (XEP-0114) domain of every test server.
pub(crate) const COMPONENT_DOMAIN: &str = "ap.localhost";
/// The XEP-0065 SOCKS5 bytestreams proxy (Prosody's `mod_proxy65`).
pub(crate) const PROXY65_DOMAIN: &str = "proxy.localhost";
/// The XEP-0363 HTTP upload service (Prosody's `mod_http_file_share`).
pub(crate) const UPLOAD_DOMAIN: &str = "upload.localhost";
/// The largest file the upload service accepts (2 GiB).
pub const HTTP_UPLOAD_MAX_FILE_SIZE: u64 = 2 * 1024 * 1024 * 1024;
/// The file the server's output (and Prosody's log) goes to, inside the server directory.
pub(crate) const LOG_FILE: &str = "server.log";

/// Keeps the server directory after the server stops and prints its path.
const KEEP_ENV: &str = "XMPP_TESTKIT_KEEP";
/// Log level of the servers: `debug`, `info` (default), `warn` or `error`.
const LOG_ENV: &str = "XMPP_TESTKIT_LOG";
/// Startup deadline in seconds (default 30).
const TIMEOUT_ENV: &str = "XMPP_TESTKIT_START_TIMEOUT";
/// How many times a start is retried when a chosen port turned out to be taken.
const START_ATTEMPTS: usize = 3;

/// An account registered on a test server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The local part, e.g. `alice`.
    pub user: String,
    /// The password.
    pub password: String,
    /// The bare JID, e.g. `alice@localhost`.
    pub jid: String,
}

/// Server log verbosity.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    fn from_env() -> Self {
        match std::env::var(LOG_ENV)
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "debug" => LogLevel::Debug,
            "warn" | "warning" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => LogLevel::Info,
        }
    }
}

/// The loopback ports of one server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ports {
    /// Client-to-server, plaintext.
    pub c2s: u16,
    /// XEP-0114 external components.
    pub component: u16,
    /// Erlang distribution (ejabberd only).
    pub dist: Option<u16>,
    /// Plain HTTP on loopback serving XEP-0363 uploads (Prosody only).
    pub http: Option<u16>,
    /// The XEP-0065 SOCKS5 proxy's listener (Prosody only).
    pub proxy65: Option<u16>,
}

/// The per-kind driver of a running server.
#[derive(Debug)]
pub(crate) enum Backend {
    Prosody(prosody::Prosody),
    Ejabberd(ejabberd::Ejabberd),
}

/// What a backend's `prepare` hands back: how to start and recognise a ready server.
pub(crate) struct Launch {
    /// The foreground server command (stdio and process group are set by the caller).
    pub command: Command,
    /// A system user the directory must belong to before starting, when running as root.
    pub owner: Option<&'static str>,
    /// Log lines that all appear once the listeners are up.
    pub ready_markers: Vec<String>,
    /// Log fragments meaning a chosen port was taken (the start is retried on new ports).
    pub port_conflict_markers: &'static [&'static str],
    /// How to talk to the server afterwards.
    pub backend: Backend,
}

/// Why one start attempt failed.
enum Failure {
    /// A port was taken: try again with new ports.
    Retry(TestkitError),
    /// Anything else.
    Fatal(TestkitError),
}

impl From<TestkitError> for Failure {
    fn from(e: TestkitError) -> Self {
        Failure::Fatal(e)
    }
}

/// Prosody's network backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProsodyNetwork {
    /// `select`: relays mod_proxy65 streams whole, but keeps Nagle on (each small stanza to a
    /// waiting peer can wait ~40 ms for a delayed ACK).
    #[default]
    Select,
    /// `epoll` with `nagle = false` (TCP_NODELAY) and opportunistic writes: IQ round trips of a
    /// millisecond, but Prosody 0.12.3 loses the last few KiB of each direction mod_proxy65
    /// relays, so use it only for tests that need no SOCKS5 proxy.
    Epoll,
}

/// Options of [`Server::start_with`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StartOptions {
    /// Prosody's network backend (ignored for ejabberd).
    pub prosody_network: ProsodyNetwork,
}

impl StartOptions {
    /// Sets [`StartOptions::prosody_network`].
    pub fn prosody_network(mut self, network: ProsodyNetwork) -> Self {
        self.prosody_network = network;
        self
    }
}

/// A real XMPP server running on loopback for one test.
///
/// It owns a temporary directory with the generated configuration, data and logs, and the
/// server process; dropping it stops the process (and everything it spawned) and deletes the
/// directory (unless `XMPP_TESTKIT_KEEP=1`).
///
/// Every server serves the domain `localhost` on a plaintext c2s port (no TLS, SASL PLAIN and
/// SCRAM-SHA-1 allowed), a pubsub service `pubsub.localhost`, PEP, and an external component
/// `ap.localhost` (XEP-0114) with a random secret. All ports are chosen free at start, so many
/// servers of both kinds can run at once in one test process.
#[derive(Debug)]
pub struct Server {
    kind: ServerKind,
    /// `None` once handed over by `XMPP_TESTKIT_KEEP`.
    dir: Option<TempDir>,
    path: PathBuf,
    log_path: PathBuf,
    child: Option<Child>,
    watchdog: Option<Child>,
    ports: Ports,
    secret: String,
    accounts: Vec<Account>,
    backend: Backend,
    startup: Duration,
}

impl Server {
    /// Starts a server of `kind` and registers `accounts` (`(user, password)` pairs).
    ///
    /// Generates the configuration in a fresh temporary directory (on `/dev/shm` when it has
    /// room, or under `XMPP_TESTKIT_TMPDIR`), picks free loopback ports, starts the server in
    /// the foreground as a child process with its output in `server.log`, waits (up to 30 s,
    /// or `XMPP_TESTKIT_START_TIMEOUT` seconds) until its listeners are up and the c2s port
    /// accepts connections, then registers the accounts. On Prosody these accounts are admins
    /// of `pubsub.localhost` (Prosody lets only admins create nodes there, and admins own every
    /// node); on ejabberd every local user may create nodes.
    ///
    /// User names must be lower-case ASCII letters, digits, `.`, `_` or `-`.
    pub fn start(kind: ServerKind, accounts: &[(&str, &str)]) -> Result<Server, TestkitError> {
        Server::start_with(kind, accounts, &StartOptions::default())
    }

    /// [`Server::start`] with options (see [`StartOptions`]).
    pub fn start_with(
        kind: ServerKind,
        accounts: &[(&str, &str)],
        options: &StartOptions,
    ) -> Result<Server, TestkitError> {
        for (user, password) in accounts {
            validate(user, password)?;
        }
        if !crate::is_installed(kind) {
            return Err(TestkitError::NotInstalled {
                kind,
                hint: "call xmpp_testkit::ensure_installed first, or run .ci/install-servers.sh"
                    .into(),
            });
        }
        let admins: Vec<&str> = accounts.iter().map(|(user, _)| *user).collect();
        let mut attempt = 0;
        let mut server = loop {
            attempt += 1;
            match Server::launch(kind, &admins, options) {
                Ok(server) => break server,
                Err(Failure::Retry(_)) if attempt < START_ATTEMPTS => continue,
                Err(Failure::Retry(e) | Failure::Fatal(e)) => return Err(e),
            }
        };
        // Registration may fall back to `ejabberdctl`, which boots an Erlang VM (~1 s) per
        // account: register in parallel.
        let registered: Vec<Result<Account, TestkitError>> = std::thread::scope(|scope| {
            let server = &server;
            let handles: Vec<_> = accounts
                .iter()
                .map(|(user, password)| scope.spawn(move || server.register(user, password)))
                .collect();
            handles
                .into_iter()
                .zip(accounts)
                .map(|(handle, (user, _))| {
                    handle.join().unwrap_or_else(|_| {
                        Err(TestkitError::Register {
                            kind,
                            jid: format!("{user}@{DOMAIN}"),
                            output: "the registering thread panicked".into(),
                        })
                    })
                })
                .collect()
        });
        for account in registered {
            server.accounts.push(account?);
        }
        Ok(server)
    }

    /// One attempt: fresh directory, fresh ports, start, wait until ready.
    fn launch(
        kind: ServerKind,
        admins: &[&str],
        options: &StartOptions,
    ) -> Result<Server, Failure> {
        let started = Instant::now();
        let dir = make_dir(kind)?;
        let path = dir.path().to_path_buf();
        let ports = match kind {
            ServerKind::Prosody => {
                let p = free_ports(4)?;
                Ports {
                    c2s: p[0],
                    component: p[1],
                    dist: None,
                    http: Some(p[2]),
                    proxy65: Some(p[3]),
                }
            }
            ServerKind::Ejabberd => {
                let p = free_ports(4)?;
                Ports {
                    c2s: p[0],
                    component: p[1],
                    dist: Some(p[2]),
                    http: None,
                    proxy65: Some(p[3]),
                }
            }
        };
        let secret = random_hex(16);
        let log_path = path.join(LOG_FILE);
        File::create(&log_path)
            .map_err(TestkitError::io(format!("creating {}", log_path.display())))?;
        let level = LogLevel::from_env();
        let Launch {
            mut command,
            owner,
            ready_markers,
            port_conflict_markers,
            backend,
        } = match kind {
            ServerKind::Prosody => prosody::prepare(
                &path,
                &ports,
                &secret,
                admins,
                level,
                options.prosody_network,
            )?,
            ServerKind::Ejabberd => ejabberd::prepare(&path, &ports, &secret, level)?,
        };
        if let Some(user) = owner {
            chown_recursive(&path, user)?;
        }
        let keep = env_flag(KEEP_ENV);
        if keep {
            eprintln!("xmpp-testkit: {kind} directory (kept): {}", path.display());
        }

        let log = OpenOptions::new()
            .append(true)
            .open(&log_path)
            .map_err(TestkitError::io(format!("opening {}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(TestkitError::io("duplicating a file handle"))?;
        let child = command
            .current_dir(&path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .map_err(TestkitError::io(format!("starting {kind}")))?;
        let watchdog = spawn_watchdog(child.id(), (!keep).then_some(path.as_path()));
        let mut server = Server {
            kind,
            dir: Some(dir),
            path,
            log_path,
            child: Some(child),
            watchdog,
            ports,
            secret,
            accounts: Vec::new(),
            backend,
            startup: Duration::ZERO,
        };
        // From here on, an error drops `server`, which stops the process.
        server.wait_ready(&ready_markers, port_conflict_markers)?;
        server.startup = started.elapsed();
        Ok(server)
    }

    /// Waits until every ready marker is in the log and the ports accept connections.
    fn wait_ready(&mut self, markers: &[String], conflicts: &[&str]) -> Result<(), Failure> {
        let timeout = std::env::var(TIMEOUT_ENV)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map_or(Duration::from_secs(30), Duration::from_secs);
        let started = Instant::now();
        loop {
            let log = fs::read(&self.log_path).unwrap_or_default();
            let log = String::from_utf8_lossy(&log);
            let conflict = conflicts.iter().any(|c| log.contains(c));
            let exited = match self.child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => Some(status.to_string()),
                Some(Ok(None)) => None,
                Some(Err(e)) => Some(format!("unknown: {e}")),
                None => Some("not running".to_owned()),
            };
            if conflict || exited.is_some() {
                let error = TestkitError::Exited {
                    kind: self.kind,
                    status: exited.unwrap_or_else(|| "a port was taken".to_owned()),
                    log_tail: self.log_tail(40),
                };
                return Err(if conflict {
                    Failure::Retry(error)
                } else {
                    Failure::Fatal(error)
                });
            }
            if markers.iter().all(|m| log.contains(m.as_str()))
                && accepts(self.ports.c2s)
                && accepts(self.ports.component)
                && self.ports.http.is_none_or(accepts)
                && self.ports.proxy65.is_none_or(accepts)
            {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(Failure::Fatal(TestkitError::StartTimeout {
                    kind: self.kind,
                    waited: timeout,
                    log_tail: self.log_tail(40),
                }));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Which server this is.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// The XMPP domain: `localhost`.
    pub fn domain(&self) -> &str {
        DOMAIN
    }

    /// The pubsub service: `pubsub.localhost`.
    pub fn pubsub_service(&self) -> &str {
        PUBSUB_DOMAIN
    }

    /// The plaintext client-to-server address, `127.0.0.1:<port>` (no TLS offered or
    /// required; connect there directly, the domain does not resolve to it).
    pub fn c2s_addr(&self) -> SocketAddr {
        loopback(self.ports.c2s)
    }

    /// The XEP-0114 external component address, `127.0.0.1:<port>`.
    pub fn component_addr(&self) -> SocketAddr {
        loopback(self.ports.component)
    }

    /// The XEP-0363 HTTP upload service, `upload.localhost`, when the server has one: Prosody serves
    /// `mod_http_file_share` over plain HTTP on a loopback port (slot URLs are
    /// `http://127.0.0.1:<port>/...`), accepting files up to [`HTTP_UPLOAD_MAX_FILE_SIZE`]; ejabberd
    /// has none here (`None`).
    pub fn http_upload_service(&self) -> Option<&str> {
        self.ports.http.map(|_| UPLOAD_DOMAIN)
    }

    /// The loopback address of the HTTP server behind [`Server::http_upload_service`].
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.ports.http.map(loopback)
    }

    /// The XEP-0065 SOCKS5 bytestreams proxy, `proxy.localhost`: both servers run `mod_proxy65`
    /// listening on a loopback port and advertising `127.0.0.1` as its host. Clients are expected to
    /// find it by service discovery; this is for checks.
    pub fn proxy65_service(&self) -> Option<&str> {
        self.ports.proxy65.map(|_| PROXY65_DOMAIN)
    }

    /// The loopback address of the SOCKS5 listener behind [`Server::proxy65_service`].
    pub fn proxy65_addr(&self) -> Option<SocketAddr> {
        self.ports.proxy65.map(loopback)
    }

    /// The external component's domain: `ap.localhost`.
    pub fn component_domain(&self) -> &str {
        COMPONENT_DOMAIN
    }

    /// The external component's shared secret (random per server).
    pub fn component_secret(&self) -> &str {
        &self.secret
    }

    /// An account registered by [`Server::start`] (accounts added later with
    /// [`Server::register`] are only returned by that call).
    pub fn account(&self, user: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.user == user)
    }

    /// All accounts registered by [`Server::start`], in order.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// Registers another account on the running server. On Prosody, accounts registered this
    /// way are not admins of `pubsub.localhost` (so they cannot create nodes there), which
    /// makes them the ones to use for permission tests.
    pub fn register(&self, user: &str, password: &str) -> Result<Account, TestkitError> {
        validate(user, password)?;
        match &self.backend {
            Backend::Prosody(p) => p.register(&self.path, user, password)?,
            Backend::Ejabberd(e) => e.register(&self.path, self.c2s_addr(), user, password)?,
        }
        Ok(Account {
            user: user.to_owned(),
            password: password.to_owned(),
            jid: format!("{user}@{DOMAIN}"),
        })
    }

    /// The last `lines` lines of the server's log (its console output; for Prosody also its
    /// log file, which is the same file).
    pub fn log_tail(&self, lines: usize) -> String {
        tail_file(&self.log_path, lines)
    }

    /// The server's temporary directory (configuration, data, `server.log`).
    pub fn dir(&self) -> &Path {
        &self.path
    }

    /// How long the start took until the server accepted connections (before registering
    /// accounts).
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Stops the server: SIGKILL to its process group (and to ejabberd's VM by pid), then waits
    /// until no process of it is left and reaps the child. A graceful stop costs ~1 s for
    /// Prosody with clients connected and ~3 s for ejabberd, and nothing in a throw-away server
    /// needs one (SQLite and the logs are written through as they go).
    fn shutdown(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = child.id();
            let vm_pid = match &self.backend {
                Backend::Ejabberd(e) => e.vm_pid(),
                Backend::Prosody(_) => None,
            };
            let signal = "KILL";
            signal_group(pgid, signal);
            if let Some(pid) = vm_pid {
                // The VM stays in the group, but make sure even if something moved it.
                if pid_alive(pid) {
                    signal_pid(pid, signal);
                }
            }
            let alive = || group_alive(pgid) || vm_pid.is_some_and(pid_alive);
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut reaped = false;
            loop {
                if !reaped {
                    reaped = matches!(child.try_wait(), Ok(Some(_)) | Err(_));
                }
                if reaped && !alive() {
                    break;
                }
                if Instant::now() >= deadline {
                    signal_group(pgid, "KILL");
                    if let Some(pid) = vm_pid.filter(|p| pid_alive(*p)) {
                        signal_pid(pid, "KILL");
                    }
                    if !reaped {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            signal_group(watchdog.id(), "KILL");
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        if env_flag(KEEP_ENV) {
            if let Some(dir) = self.dir.take() {
                let path = dir.keep();
                eprintln!(
                    "xmpp-testkit: kept {} directory {}",
                    self.kind,
                    path.display()
                );
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Creates the server's temporary directory.
fn make_dir(kind: ServerKind) -> Result<TempDir, TestkitError> {
    let prefix = format!("xmpp-testkit-{}-", kind.name());
    let base = temp_base();
    tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(&base)
        .or_else(|_| tempfile::Builder::new().prefix(&prefix).tempdir())
        .map_err(TestkitError::io(format!(
            "creating a temporary directory in {}",
            base.display()
        )))
}

/// Starts a shell that kills the server's process group (and removes its directory) if this
/// test process dies without dropping the [`Server`] (e.g. killed by a timeout).
fn spawn_watchdog(server_pgid: u32, dir: Option<&Path>) -> Option<Child> {
    let script = r#"while kill -s 0 "$1" 2>/dev/null; do sleep 1; done
kill -s KILL -- "-$2" 2>/dev/null
if [ -n "$3" ]; then sleep 1; rm -rf -- "$3"; fi"#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("xmpp-testkit-watchdog")
        .arg(std::process::id().to_string())
        .arg(server_pgid.to_string())
        .arg(dir.map(Path::as_os_str).unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .ok()
}

/// Checks that a user name and password can be passed to the servers' tools as is.
fn validate(user: &str, password: &str) -> Result<(), TestkitError> {
    let invalid = |reason| {
        Err(TestkitError::InvalidAccount {
            user: user.to_owned(),
            reason,
        })
    };
    if user.is_empty() || user.len() > 256 {
        return invalid("the user name must have 1 to 256 characters");
    }
    if !user
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
    {
        return invalid("the user name may only contain a-z, 0-9, '.', '_' and '-'");
    }
    if password.is_empty() || password.chars().any(char::is_control) {
        return invalid("the password must be non-empty without control characters");
    }
    Ok(())
}
