//! Prosody 0.12: configuration, launch command and account registration.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::server::{
    Launch, LogLevel, Ports, ProsodyNetwork, COMPONENT_DOMAIN, DOMAIN, HTTP_UPLOAD_MAX_FILE_SIZE,
    PROXY65_DOMAIN, PUBSUB_DOMAIN, UPLOAD_DOMAIN,
};
use crate::util::{command_as, find_program, is_root, lua_str, run};
use crate::{ServerKind, TestkitError};

/// The system user Prosody runs as when the tests run as root (Prosody refuses root).
const PROSODY_USER: &str = "prosody";

/// Whether LuaDBI's SQLite3 driver (Debian's `lua-dbi-sqlite3`) is installed.
pub(crate) fn sqlite_driver_available() -> bool {
    let mut lib_dirs = vec![PathBuf::from("/usr/lib"), PathBuf::from("/usr/local/lib")];
    if let Ok(entries) = fs::read_dir("/usr/lib") {
        lib_dirs.extend(entries.flatten().map(|e| e.path()));
    }
    lib_dirs.iter().any(|dir| {
        ["5.4", "5.3", "5.2", "5.1"]
            .iter()
            .any(|v| dir.join("lua").join(v).join("dbd/sqlite3.so").is_file())
    })
}

/// How to drive one Prosody instance after it started.
#[derive(Debug)]
pub(crate) struct Prosody {
    config: PathBuf,
    prosodyctl: PathBuf,
    /// `Some("prosody")` when the kit runs as root and must drop privileges.
    run_as: Option<&'static str>,
}

impl Prosody {
    /// A command running `program` as the server's user.
    fn command(&self, program: &Path) -> Command {
        command_as(self.run_as, program)
    }

    /// Registers an account with `prosodyctl register` (works while the server runs; retried
    /// because SQLite may be briefly locked by the server).
    pub(crate) fn register(
        &self,
        scratch: &Path,
        user: &str,
        password: &str,
    ) -> Result<(), TestkitError> {
        let mut last = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(300));
            }
            let mut cmd = self.command(&self.prosodyctl);
            cmd.arg("--config")
                .arg(&self.config)
                .args(["register", user, DOMAIN, password]);
            let out = run(&mut cmd, scratch, Duration::from_secs(60))?;
            if out.success {
                return Ok(());
            }
            last = format!("{}: {}", out.status, out.output);
        }
        Err(TestkitError::Register {
            kind: ServerKind::Prosody,
            jid: format!("{user}@{DOMAIN}"),
            output: last,
        })
    }
}

/// Writes the configuration into `dir` and returns the launch plan.
pub(crate) fn prepare(
    dir: &Path,
    ports: &Ports,
    secret: &str,
    admins: &[&str],
    level: LogLevel,
    network: ProsodyNetwork,
) -> Result<Launch, TestkitError> {
    let not_installed = || TestkitError::NotInstalled {
        kind: ServerKind::Prosody,
        hint: "install Debian's prosody package (see xmpp_testkit::ensure_installed)".into(),
    };
    let prosody = find_program("prosody").ok_or_else(not_installed)?;
    let prosodyctl = find_program("prosodyctl").ok_or_else(not_installed)?;
    let run_as = if is_root() {
        if !crate::util::user_exists(PROSODY_USER) {
            return Err(TestkitError::NotInstalled {
                kind: ServerKind::Prosody,
                hint: format!(
                    "running as root needs the `{PROSODY_USER}` system user (Prosody refuses root)"
                ),
            });
        }
        Some(PROSODY_USER)
    } else {
        None
    };

    let data = dir.join("data");
    let certs = dir.join("certs");
    for d in [&data, &data.join("certs"), &certs] {
        fs::create_dir_all(d).map_err(TestkitError::io(format!("creating {}", d.display())))?;
    }
    let config = dir.join("prosody.cfg.lua");
    let text = config_text(dir, ports, secret, admins, level, network);
    fs::write(&config, text).map_err(TestkitError::io(format!("writing {}", config.display())))?;

    let mut ready_markers = vec![
        format!("Activated service 'c2s' on [127.0.0.1]:{}", ports.c2s),
        format!(
            "Activated service 'component' on [127.0.0.1]:{}",
            ports.component
        ),
    ];
    if let Some(http) = ports.http {
        ready_markers.push(format!("Activated service 'http' on [127.0.0.1]:{http}"));
    }
    if let Some(proxy) = ports.proxy65 {
        ready_markers.push(format!(
            "Activated service 'proxy65' on [127.0.0.1]:{proxy}"
        ));
    }
    let backend = Prosody {
        config: config.clone(),
        prosodyctl,
        run_as,
    };
    let mut command = backend.command(&prosody);
    command.arg("-F").arg("--config").arg(&config);
    Ok(Launch {
        command,
        owner: run_as,
        ready_markers,
        port_conflict_markers: &["Failed to open server port", "already in use"],
        backend: crate::server::Backend::Prosody(backend),
    })
}

/// The generated `prosody.cfg.lua`.
fn config_text(
    dir: &Path,
    ports: &Ports,
    secret: &str,
    admins: &[&str],
    level: LogLevel,
    network: ProsodyNetwork,
) -> String {
    let level = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    let (storage, sql) = if sqlite_driver_available() {
        (
            "sql",
            format!(
                "sql = {{ driver = \"SQLite3\", database = {} }}\n",
                lua_str(dir.join("data").join("prosody.sqlite"))
            ),
        )
    } else {
        eprintln!(
            "xmpp-testkit: lua-dbi-sqlite3 is missing, Prosody falls back to its slow file storage"
        );
        ("internal", String::new())
    };
    let admins = admins
        .iter()
        .map(|user| lua_str(format!("{user}@{DOMAIN}")))
        .collect::<Vec<_>>()
        .join(", ");
    let mut t = String::new();
    let _ = write!(
        t,
        r#"-- Generated by xmpp-testkit: a throw-away loopback test server.
pidfile = {pidfile}
data_path = {data}
certificates = {certs}
log = {{ {{ levels = {{ min = "{level}" }}, to = "file", filename = {log} }} }}

interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}
c2s_direct_tls_ports = {{}}
legacy_ssl_ports = {{}}
s2s_ports = {{}}
{http}
https_ports = {{}}
component_ports = {{ {component} }}
component_interfaces = {{ "127.0.0.1" }}
{proxy_ports}
{network}

modules_enabled = {{
    "roster"; "saslauth"; "disco"; "pep"; "ping"; "register";
    "carbons"; "smacks"; "private"; "blocklist"; "mam";
}}
modules_disabled = {{ "s2s"; "tls"; "offline" }}

-- Plaintext on loopback, no TLS anywhere.
c2s_require_encryption = false
s2s_require_encryption = false
allow_unencrypted_plain_auth = true
allow_registration = true
authentication = "internal_hashed"

-- Big nodes and stanzas for tests.
pep_max_items = 10000
c2s_stanza_size_limit = 16777216
component_stanza_size_limit = 16777216
archive_expires_after = "never"

storage = "{storage}"
{sql}
VirtualHost "{domain}"

Component "{pubsub}" "pubsub"
    admins = {{ {admins} }}
    pubsub_max_items = 10000
    expose_publisher = true
    autocreate_on_publish = true

Component "{gateway}"
    component_secret = {secret}
{proxy}{upload}"#,
        network = match network {
            ProsodyNetwork::Select => "-- The epoll backend of Prosody 0.12.3 loses the last few KiB of each direction relayed by\n\
                 -- mod_proxy65; the select backend does not. Large buffers keep fast relays from being cut.\n\
                 network_backend = \"select\"\n\
                 network_settings = { max_send_buffer_size = 67108864; max_receive_buffer_size = 67108864 }",
            ProsodyNetwork::Epoll => "-- epoll with TCP_NODELAY: fast round trips (but mod_proxy65 relays lose their end).\n\
                 network_backend = \"epoll\"\n\
                 network_settings = { nagle = false; opportunistic_writes = true; read_size = 65536 }",
        },
        pidfile = lua_str(dir.join("prosody.pid")),
        data = lua_str(dir.join("data")),
        certs = lua_str(dir.join("certs")),
        log = lua_str(dir.join(crate::server::LOG_FILE)),
        c2s = ports.c2s,
        component = ports.component,
        domain = DOMAIN,
        pubsub = PUBSUB_DOMAIN,
        gateway = COMPONENT_DOMAIN,
        secret = lua_str(secret),
        http = match ports.http {
            Some(port) => format!(
                "http_ports = {{ {port} }}\nhttp_interfaces = {{ \"127.0.0.1\" }}\n\
                 http_external_url = \"http://127.0.0.1:{port}/\"\n\
                 http_default_host = \"{UPLOAD_DOMAIN}\""
            ),
            None => "http_ports = {}".to_owned(),
        },
        // proxy65_ports/proxy65_interfaces are only read as global options.
        proxy_ports = match ports.proxy65 {
            Some(port) =>
                format!("proxy65_ports = {{ {port} }}\nproxy65_interfaces = {{ \"127.0.0.1\" }}"),
            None => String::new(),
        },
        proxy = match ports.proxy65 {
            // The advertised host must be an address: proxy.localhost does not resolve.
            Some(_) => format!(
                "\nComponent \"{PROXY65_DOMAIN}\" \"proxy65\"\n    \
                 proxy65_address = \"127.0.0.1\"\n"
            ),
            None => String::new(),
        },
        upload = match ports.http {
            // XEP-0363 uploads, stored under data_path. The daily quota would otherwise be ten files.
            Some(_) => format!(
                "\nComponent \"{UPLOAD_DOMAIN}\" \"http_file_share\"\n    \
                 http_file_share_size_limit = {HTTP_UPLOAD_MAX_FILE_SIZE}\n    \
                 http_file_share_daily_quota = {}\n    \
                 http_file_share_expires_after = 86400\n",
                HTTP_UPLOAD_MAX_FILE_SIZE * 8
            ),
            None => String::new(),
        },
    );
    t
}
