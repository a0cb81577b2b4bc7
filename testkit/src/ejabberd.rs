//! ejabberd 23.01: configuration, launch command and account registration.

use std::ffi::OsString;
use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::server::{
    Launch, LogLevel, Ports, COMPONENT_DOMAIN, DOMAIN, PROXY65_DOMAIN, PUBSUB_DOMAIN,
};
use crate::util::{
    command_as, current_user_name, find_program, is_root, random_hex, run, unique_name, yaml_str,
};
use crate::{ServerKind, TestkitError};

/// The system user Debian's `ejabberdctl` switches to when started by root.
const EJABBERD_USER: &str = "ejabberd";

/// Debian's resolver file for the Erlang VM; written when the system copy is missing.
const DEFAULT_INETRC: &str = "{lookup,[\"file\",\"native\"]}.\n\
{host,{127,0,0,1}, [\"localhost\",\"hostalias\"]}.\n\
{file, resolv, \"/etc/resolv.conf\"}.\n";

/// How to drive one ejabberd instance after it started.
#[derive(Debug)]
pub(crate) struct Ejabberd {
    /// `ejabberdctl`: Debian's, or a copy that does not insist on the `ejabberd` user.
    ctl: PathBuf,
    /// The flags that point `ejabberdctl` at this instance's private files.
    flags: Vec<OsString>,
    /// The temporary directory, used as `HOME` for the Erlang VM.
    home: PathBuf,
    /// `Some("ejabberd")` when the kit runs as root.
    run_as: Option<&'static str>,
    /// Where ejabberd writes the OS pid of its Erlang VM.
    pid_file: PathBuf,
}

impl Ejabberd {
    /// An `ejabberdctl` command for this instance.
    fn command(&self) -> Command {
        let mut cmd = command_as(self.run_as, &self.ctl);
        cmd.args(&self.flags)
            .env("HOME", &self.home)
            .env_remove("ERL_FLAGS")
            .env_remove("ERL_AFLAGS")
            .env_remove("ERL_ZFLAGS");
        cmd
    }

    /// The OS pid of the Erlang VM, from ejabberd's pid file.
    pub(crate) fn vm_pid(&self) -> Option<u32> {
        fs::read_to_string(&self.pid_file).ok()?.trim().parse().ok()
    }

    /// Registers an account: in-band over c2s (milliseconds), falling back to
    /// `ejabberdctl register` against the running node (~1 s, it boots an Erlang VM).
    pub(crate) fn register(
        &self,
        scratch: &Path,
        c2s: SocketAddr,
        user: &str,
        password: &str,
    ) -> Result<(), TestkitError> {
        let in_band = match crate::ibr::register(c2s, DOMAIN, user, password) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let mut cmd = self.command();
        cmd.args(["register", user, DOMAIN, password]);
        let out = run(&mut cmd, scratch, Duration::from_secs(60))?;
        if out.success {
            Ok(())
        } else {
            Err(TestkitError::Register {
                kind: ServerKind::Ejabberd,
                jid: format!("{user}@{DOMAIN}"),
                output: format!(
                    "in-band: {in_band}; ejabberdctl: {}: {}",
                    out.status, out.output
                ),
            })
        }
    }
}

/// Writes the configuration into `dir` and returns the launch plan.
pub(crate) fn prepare(
    dir: &Path,
    ports: &Ports,
    secret: &str,
    level: LogLevel,
) -> Result<Launch, TestkitError> {
    let system_ctl = find_program("ejabberdctl").ok_or_else(|| TestkitError::NotInstalled {
        kind: ServerKind::Ejabberd,
        hint: "install Debian's ejabberd package (see xmpp_testkit::ensure_installed)".into(),
    })?;
    let dist_port = ports.dist.ok_or_else(|| TestkitError::Io {
        context: "ejabberd needs an Erlang distribution port".into(),
        source: std::io::Error::other("no port"),
    })?;

    let logs = dir.join("logs");
    let spool = dir.join("spool");
    for d in [&logs, &spool] {
        fs::create_dir_all(d).map_err(TestkitError::io(format!("creating {}", d.display())))?;
    }
    let inetrc = dir.join("inetrc");
    let inetrc_text =
        fs::read_to_string("/etc/ejabberd/inetrc").unwrap_or_else(|_| DEFAULT_INETRC.to_owned());
    write(&inetrc, &inetrc_text)?;

    // Debian's ejabberdctl refuses users other than root and `ejabberd`, and when started by
    // root re-executes itself with `su -c`, which puts the VM into a new session (out of reach
    // of the kit's process-group kill) and makes `su` sleep 2 s on SIGTERM. As root the kit
    // therefore hands the directory to `ejabberd` and switches user itself (setpriv); other
    // users get a private copy of the script without the user check.
    let (ctl, run_as) = if is_root() && crate::util::user_exists(EJABBERD_USER) {
        (system_ctl, Some(EJABBERD_USER))
    } else if current_user_name().as_deref() == Some(EJABBERD_USER) {
        (system_ctl, None)
    } else {
        (private_ctl(dir, &system_ctl)?, None)
    };

    let node = unique_name("xt");
    let pid_file = dir.join("ejabberd.pid");
    let ctl_cfg = dir.join("ejabberdctl.cfg");
    write(
        &ctl_cfg,
        &format!(
            "# Generated by xmpp-testkit.\n\
             ERLANG_NODE={node}@localhost\n\
             ERL_DIST_PORT={dist_port}\n\
             EJABBERD_PID_PATH={pid}\n\
             EJABBERD_BYPASS_WARNINGS=true\n\
             CONTRIB_MODULES_PATH={contrib}\n\
             ERL_OPTIONS=\"-setcookie {cookie} -kernel inet_dist_use_interface {{127,0,0,1}} -env ERL_CRASH_DUMP_BYTES 0\"\n",
            pid = pid_file.display(),
            contrib = dir.join("contrib").display(),
            cookie = random_hex(16),
        ),
    )?;
    let config = dir.join("ejabberd.yml");
    write(&config, &config_text(ports, secret, level))?;

    let flags: Vec<OsString> = vec![
        "--config-dir".into(),
        dir.into(),
        "--config".into(),
        config.into(),
        "--ctl-config".into(),
        ctl_cfg.into(),
        "--logs".into(),
        logs.into(),
        "--spool".into(),
        spool.into(),
    ];
    let backend = Ejabberd {
        ctl,
        flags,
        home: dir.to_path_buf(),
        run_as,
        pid_file,
    };
    let mut command = backend.command();
    command.arg("foreground");
    Ok(Launch {
        command,
        owner: run_as,
        ready_markers: vec![
            format!(
                "Start accepting TCP connections at 127.0.0.1:{} for ejabberd_c2s",
                ports.c2s
            ),
            format!(
                "Start accepting TCP connections at 127.0.0.1:{} for ejabberd_service",
                ports.component
            ),
        ],
        port_conflict_markers: &["eaddrinuse", "already in use"],
        backend: crate::server::Backend::Ejabberd(backend),
    })
}

fn write(path: &Path, text: &str) -> Result<(), TestkitError> {
    fs::write(path, text).map_err(TestkitError::io(format!("writing {}", path.display())))
}

/// A copy of Debian's `ejabberdctl` that runs as the current user instead of demanding
/// root or `ejabberd`.
fn private_ctl(dir: &Path, system_ctl: &Path) -> Result<PathBuf, TestkitError> {
    let script = fs::read_to_string(system_ctl).map_err(TestkitError::io(format!(
        "reading {}",
        system_ctl.display()
    )))?;
    let patched: String = script
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("INSTALLUSER=") {
                "INSTALLUSER="
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join("ejabberdctl");
    write(&path, &(patched + "\n"))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
        .map_err(TestkitError::io(format!("chmod {}", path.display())))?;
    Ok(path)
}

/// The generated `ejabberd.yml`.
fn config_text(ports: &Ports, secret: &str, level: LogLevel) -> String {
    let level = match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warning",
        LogLevel::Error => "error",
    };
    format!(
        r#"# Generated by xmpp-testkit: a throw-away loopback test server.
hosts:
  - {domain}
loglevel: {level}
log_rotate_count: 0
hide_sensitive_log_data: false
acme:
  auto: false
auth_method: internal
auth_password_format: scram
default_db: mnesia
registration_timeout: infinity

listen:
  -
    port: {c2s}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: false
    starttls_required: false
    max_stanza_size: 16777216
    access: c2s
  -
    port: {component}
    ip: "127.0.0.1"
    module: ejabberd_service
    max_stanza_size: 16777216
    hosts:
      {gateway}:
        password: {secret}

acl:
  local:
    user_regexp: ""
  loopback:
    ip:
      - 127.0.0.0/8

access_rules:
  local:
    allow: local
  c2s:
    allow: all
  register:
    allow: all
  pubsub_createnode:
    allow: local

shaper_rules:
  max_user_sessions: 1000

modules:
  mod_blocking: {{}}
  mod_caps: {{}}
  mod_carboncopy: {{}}
  mod_disco: {{}}
  mod_mam:
    default: always
  mod_ping: {{}}
  mod_privacy: {{}}
  mod_private: {{}}
  mod_pubsub:
    hosts:
      - {pubsub}
    access_createnode: pubsub_createnode
    plugins:
      - flat
      - pep
    max_items_node: 10000
    default_node_config:
      max_items: 10000
  mod_register:
    access: register
  mod_roster: {{}}
  mod_stream_mgmt: {{}}
{proxy}"#,
        domain = DOMAIN,
        c2s = ports.c2s,
        component = ports.component,
        gateway = COMPONENT_DOMAIN,
        pubsub = PUBSUB_DOMAIN,
        secret = yaml_str(secret),
        proxy = match ports.proxy65 {
            // XEP-0065 proxy on loopback, advertising an address (the JID's name does not resolve).
            Some(port) => format!(
                "  mod_proxy65:\n    host: {PROXY65_DOMAIN}\n    ip: \"127.0.0.1\"\n    \
                 hostname: \"127.0.0.1\"\n    port: {port}\n    access: local\n"
            ),
            None => String::new(),
        },
    )
}
