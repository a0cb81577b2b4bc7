//! Small process, file and network helpers (std only, Linux).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::TestkitError;

/// Directories searched for server tools in addition to `PATH` (`ejabberdctl` lives in
/// `/usr/sbin`, which is not in every user's `PATH`).
const EXTRA_BIN_DIRS: &[&str] = &[
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    "/usr/local/sbin",
    "/usr/local/bin",
];

/// Finds an executable by name in `PATH` and the usual system directories.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(EXTRA_BIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Whether this process runs with effective user id 0.
pub(crate) fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        if let Ok(status) = fs::read_to_string("/proc/self/status") {
            if let Some(line) = status.lines().find(|l| l.starts_with("Uid:")) {
                // Uid: real effective saved fs
                return line.split_whitespace().nth(2) == Some("0");
            }
        }
        Command::new("id")
            .arg("-u")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    })
}

/// The name of the user this process runs as, if `id -un` can tell.
pub(crate) fn current_user_name() -> Option<String> {
    let out = Command::new("id")
        .arg("-un")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether a system user exists.
pub(crate) fn user_exists(name: &str) -> bool {
    Command::new("id")
        .args(["-u", name])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Picks `n` distinct free TCP ports on 127.0.0.1, never handing out the same port twice in
/// one process (parallel tests start servers concurrently).
pub(crate) fn free_ports(n: usize) -> Result<Vec<u16>, TestkitError> {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let mut handed_out = HANDED_OUT
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Keep every listener open until the end so the kernel cannot return a port twice.
    let mut listeners = Vec::new();
    let mut ports = Vec::with_capacity(n);
    for _ in 0..n.saturating_mul(50) {
        if ports.len() == n {
            break;
        }
        let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .map_err(TestkitError::io("binding 127.0.0.1:0 to find a free port"))?;
        let port = listener
            .local_addr()
            .map_err(TestkitError::io("reading a bound port"))?
            .port();
        if handed_out.insert(port) {
            ports.push(port);
        }
        listeners.push(listener);
    }
    if ports.len() < n {
        return Err(TestkitError::Io {
            context: "finding free loopback ports".into(),
            source: std::io::Error::new(std::io::ErrorKind::AddrInUse, "no unused port found"),
        });
    }
    Ok(ports)
}

/// The loopback socket address of a port.
pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// Whether something accepts TCP connections on a loopback port.
pub(crate) fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&loopback(port), Duration::from_millis(500)).is_ok()
}

/// `n` random bytes as lower-case hex (from `/dev/urandom`, with a time-based fallback).
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    let read = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        use std::hash::{BuildHasher, Hasher};
        for (i, b) in bytes.iter_mut().enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            *b = h.finish() as u8;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A name unique among servers started on this machine (process id, counter, randomness).
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}n{n}r{}", std::process::id(), random_hex(3))
}

/// The last `lines` lines of a text file (lossy UTF-8; reads at most the last MiB).
pub(crate) fn tail_file(path: &Path, lines: usize) -> String {
    const MAX: u64 = 1 << 20;
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX && file.seek(SeekFrom::Start(len - MAX)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    if file.read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Sends a signal (`TERM`, `KILL`) to every process of a process group; true when the group
/// had at least one process.
pub(crate) fn signal_group(pgid: u32, signal: &str) -> bool {
    kill(signal, &format!("-{pgid}"))
}

/// Sends a signal to one process.
pub(crate) fn signal_pid(pid: u32, signal: &str) -> bool {
    kill(signal, &pid.to_string())
}

/// `kill -s SIGNAL -- TARGET` through `sh` (its builtin; no libc calls, `unsafe` is forbidden).
fn kill(signal: &str, target: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("kill -s {signal} -- {target}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether a process group still has a live (non-zombie) member, from `/proc`.
pub(crate) fn group_alive(pgid: u32) -> bool {
    live_processes().any(|(_, group)| group == pgid)
}

/// Whether a process is alive and not a zombie, from `/proc`.
pub(crate) fn pid_alive(pid: u32) -> bool {
    live_processes().any(|(p, _)| p == pid)
}

/// `(pid, process group)` of every process that is not a zombie. A multi-threaded process
/// (the Erlang VM) whose main thread is already a zombie still counts while any other thread
/// is exiting: its sockets close only with the last thread.
fn live_processes() -> impl Iterator<Item = (u32, u32)> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let (state, pgrp) = parse_stat(&entry.path().join("stat"))?;
            let live = |state: char| state != 'Z' && state != 'X';
            let alive = live(state)
                || fs::read_dir(entry.path().join("task"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|task| {
                        parse_stat(&task.path().join("stat")).is_some_and(|(s, _)| live(s))
                    });
            alive.then_some((pid, pgrp))
        })
}

/// `(state, process group)` from a `/proc/.../stat` file.
fn parse_stat(path: &Path) -> Option<(char, u32)> {
    let stat = fs::read_to_string(path).ok()?;
    // "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses.
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// A command that runs `program` as the system user `user` when given (the caller is root):
/// `setpriv` (util-linux) changes ids and execs, so the server stays the direct child in the
/// same process group; `runuser` is the fallback.
pub(crate) fn command_as(user: Option<&str>, program: &Path) -> Command {
    let Some(user) = user else {
        return Command::new(program);
    };
    let id = |flag: &str| {
        Command::new("id")
            .args([flag, user])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if let (Some(setpriv), Some(uid), Some(gid)) = (find_program("setpriv"), id("-u"), id("-g")) {
        let mut cmd = Command::new(setpriv);
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--init-groups")
            .arg("--")
            .arg(program);
        return cmd;
    }
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", user, "--"]).arg(program);
    cmd
}

/// The result of a helper command.
pub(crate) struct CmdOutput {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its exit status, for messages.
    pub status: String,
    /// Its combined stdout and stderr.
    pub output: String,
}

/// Renders a command for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Runs a command in its own process group with stdin closed and stdout and stderr captured
/// in a temporary file inside `scratch`; kills the whole group after `timeout`.
pub(crate) fn run(
    cmd: &mut Command,
    scratch: &Path,
    timeout: Duration,
) -> Result<CmdOutput, TestkitError> {
    let what = describe(cmd);
    let capture = tempfile::Builder::new()
        .prefix("cmd-")
        .suffix(".out")
        .tempfile_in(scratch)
        .map_err(TestkitError::io(format!(
            "creating an output file in {}",
            scratch.display()
        )))?;
    let stdout = capture
        .as_file()
        .try_clone()
        .map_err(TestkitError::io("duplicating a file handle"))?;
    let stderr = capture
        .as_file()
        .try_clone()
        .map_err(TestkitError::io("duplicating a file handle"))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(TestkitError::io(format!("running `{what}`")))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                signal_group(child.id(), "KILL");
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let output = tail_file(capture.path(), 40);
    Ok(match status {
        Some(status) => CmdOutput {
            success: status.success(),
            status: status.to_string(),
            output,
        },
        None => CmdOutput {
            success: false,
            status: format!("killed after {timeout:?}"),
            output,
        },
    })
}

/// Runs a helper command that must succeed.
pub(crate) fn run_checked(
    cmd: &mut Command,
    scratch: &Path,
    timeout: Duration,
) -> Result<CmdOutput, TestkitError> {
    let what = describe(cmd);
    let out = run(cmd, scratch, timeout)?;
    if out.success {
        Ok(out)
    } else {
        Err(TestkitError::Command {
            command: what,
            status: out.status,
            output: out.output,
        })
    }
}

/// Gives a directory tree to a system user (`chown -R user:`), for servers that must not run
/// as root.
pub(crate) fn chown_recursive(dir: &Path, user: &str) -> Result<(), TestkitError> {
    let mut cmd = Command::new("chown");
    cmd.arg("-R").arg(format!("{user}:")).arg(dir);
    run_checked(&mut cmd, &std::env::temp_dir(), Duration::from_secs(30)).map(|_| ())
}

/// The directory new server directories are created in: `XMPP_TESTKIT_TMPDIR` if set, else
/// `/dev/shm` when it is a tmpfs with room (SQLite and Mnesia fsync on every write; on disk a
/// Prosody publish costs ~18 ms, on tmpfs ~2 ms), else the system temporary directory.
pub(crate) fn temp_base() -> PathBuf {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        if let Some(dir) = std::env::var_os("XMPP_TESTKIT_TMPDIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let shm = Path::new("/dev/shm");
        if shm.is_dir() && available_kib(shm).is_some_and(|kib| kib >= 512 * 1024) {
            return shm.to_path_buf();
        }
        std::env::temp_dir()
    })
    .clone()
}

/// Free space of a file system in KiB, from `df -Pk`.
fn available_kib(path: &Path) -> Option<u64> {
    let out = Command::new("df")
        .arg("-Pk")
        .arg(path)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()
}

/// Whether an environment flag is set to something other than empty, `0` or `false`.
pub(crate) fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| {
        let v = v.to_string_lossy();
        !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false"))
    })
}

/// Quotes a string for a Lua source file.
pub(crate) fn lua_str(s: impl AsRef<OsStr>) -> String {
    let s = s.as_ref().to_string_lossy();
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Quotes a string as a YAML double-quoted scalar.
pub(crate) fn yaml_str(s: impl AsRef<OsStr>) -> String {
    // The escapes Lua and YAML double-quoted strings need here are the same.
    lua_str(s)
}
