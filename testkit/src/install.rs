//! Finding and installing the servers' Debian packages.

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::util::{find_program, is_root, run};
use crate::{prosody, ServerKind, TestkitError};

/// Debian packages that provide a server kind.
fn packages(kind: ServerKind) -> &'static [&'static str] {
    match kind {
        ServerKind::Prosody => &["prosody", "prosody-modules", "lua-dbi-sqlite3"],
        ServerKind::Ejabberd => &["ejabberd"],
    }
}

/// The system service a package's post-install script may have started.
fn service(kind: ServerKind) -> &'static str {
    kind.name()
}

/// Whether the server binary is installed (`prosody` and `prosodyctl`, or `ejabberdctl`).
///
/// Prosody without Debian's `lua-dbi-sqlite3` still counts as installed: the kit then falls
/// back to Prosody's slower file storage.
pub fn is_installed(kind: ServerKind) -> bool {
    match kind {
        ServerKind::Prosody => {
            find_program("prosody").is_some() && find_program("prosodyctl").is_some()
        }
        ServerKind::Ejabberd => find_program("ejabberdctl").is_some(),
    }
}

/// Installs Debian's packages for `kind` with `apt-get` when they are missing.
///
/// Installing needs root or passwordless `sudo`; otherwise this returns
/// [`TestkitError::NotInstalled`] with the command to run. System services that the packages'
/// post-install scripts start are stopped again (the kit never uses them). Installs are
/// serialised within the process and wait for other apt/dpkg runs to release their lock.
pub fn ensure_installed(kind: ServerKind) -> Result<(), TestkitError> {
    static INSTALL: Mutex<()> = Mutex::new(());
    let complete = || match kind {
        ServerKind::Prosody => is_installed(kind) && prosody::sqlite_driver_available(),
        ServerKind::Ejabberd => is_installed(kind),
    };
    if complete() {
        return Ok(());
    }
    let _guard = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    if complete() {
        return Ok(());
    }
    let pkgs = packages(kind);
    let manual = format!(
        "run as root: apt-get install -y {}, or .ci/install-servers.sh",
        pkgs.join(" ")
    );
    let Some(apt_get) = find_program("apt-get") else {
        return missing(
            kind,
            format!("apt-get not found; install {} by hand", pkgs.join(" ")),
        );
    };
    let sudo: Option<std::path::PathBuf> = if is_root() {
        None
    } else {
        match find_program("sudo").filter(|sudo| passwordless_sudo(sudo)) {
            Some(sudo) => Some(sudo),
            None => return missing(kind, format!("not root and no passwordless sudo; {manual}")),
        }
    };
    let apt = |args: &[&str]| {
        let mut cmd = match &sudo {
            Some(sudo) => {
                let mut c = Command::new(sudo);
                c.arg("-n")
                    .arg("env")
                    .arg("DEBIAN_FRONTEND=noninteractive")
                    .arg(&apt_get);
                c
            }
            None => {
                let mut c = Command::new(&apt_get);
                c.env("DEBIAN_FRONTEND", "noninteractive");
                c
            }
        };
        cmd.args(["-o", "DPkg::Lock::Timeout=600"]).args(args);
        run(&mut cmd, &std::env::temp_dir(), Duration::from_secs(1800))
    };
    // ejabberd is installed with its dependencies' Recommends, as verified; Prosody's are not
    // needed.
    let mut install_args = vec!["install", "-y"];
    if kind == ServerKind::Prosody {
        install_args.push("--no-install-recommends");
    }
    install_args.extend_from_slice(pkgs);
    let mut out = apt(&install_args)?;
    if !out.success {
        // A fresh machine may have no package lists yet.
        let update = apt(&["update"])?;
        if !update.success {
            return Err(TestkitError::Install {
                kind,
                message: format!("apt-get update: {}\n{}", update.status, update.output),
            });
        }
        out = apt(&install_args)?;
    }
    if !out.success {
        return Err(TestkitError::Install {
            kind,
            message: format!("apt-get install: {}\n{}", out.status, out.output),
        });
    }
    stop_system_service(kind, sudo.as_deref());
    if is_installed(kind) {
        Ok(())
    } else {
        Err(TestkitError::Install {
            kind,
            message: format!("apt-get succeeded but the {kind} tools are still not found"),
        })
    }
}

fn missing(kind: ServerKind, hint: String) -> Result<(), TestkitError> {
    // Prosody can run without the SQLite driver, so only the binaries are a hard requirement.
    if is_installed(kind) {
        eprintln!("xmpp-testkit: optional {kind} package missing ({hint}); continuing without it");
        return Ok(());
    }
    Err(TestkitError::NotInstalled { kind, hint })
}

fn passwordless_sudo(sudo: &std::path::Path) -> bool {
    Command::new(sudo)
        .args(["-n", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Stops the system instance a post-install script may have started (best effort).
fn stop_system_service(kind: ServerKind, sudo: Option<&std::path::Path>) {
    let Some(service_cmd) = find_program("service") else {
        return;
    };
    let mut cmd = match sudo {
        Some(sudo) => {
            let mut c = Command::new(sudo);
            c.arg("-n").arg(service_cmd);
            c
        }
        None => Command::new(service_cmd),
    };
    cmd.args([service(kind), "stop"]);
    let _ = run(&mut cmd, &std::env::temp_dir(), Duration::from_secs(60));
}
