//! Helpers shared by the tests that run the example binaries as processes: a child process whose
//! JSON lines are read with timeouts and which is killed when dropped, and readers of a finished
//! command's output.
#![allow(dead_code)] // each test binary uses its own subset
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A child process killed when dropped; its stdout JSON lines are collected, and all its output
/// (stdout, and stderr prefixed with `stderr: `) is kept for failure messages.
pub struct Proc {
    name: String,
    child: Child,
    lines: Receiver<Value>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `cmd` (stdin closed, stdout and stderr read by threads); `name` is for messages.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (tx, lines) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let out_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                out_log.lock().unwrap().push(line.clone());
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = tx.send(v);
                }
            }
        });
        let err_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                err_log.lock().unwrap().push(format!("stderr: {line}"));
            }
        });
        Proc {
            name: name.to_owned(),
            child,
            lines,
            log,
        }
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// The next JSON line satisfying `pred` (earlier lines are consumed); `what` names it in the
    /// failure message.
    pub fn expect(&self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return v,
                Ok(_) => {}
                Err(_) => panic!(
                    "{}: no {what} within {timeout:?}; its output:\n{}",
                    self.name,
                    self.output()
                ),
            }
        }
    }

    /// The next JSON line whose `event` is `event` (earlier lines are consumed).
    pub fn expect_event(&self, event: &str, timeout: Duration) -> Value {
        self.expect(&format!("{event} line"), timeout, |v| v["event"] == event)
    }

    /// Waits for the exit; returns its status.
    pub fn wait_status(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running after {timeout:?}; its output:\n{}",
                self.name,
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the exit; returns whether it succeeded.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        self.wait_status(timeout).success()
    }

    /// Waits for the exit and asserts success.
    pub fn wait_success(&mut self, timeout: Duration) {
        let status = self.wait_status(timeout);
        assert!(
            status.success(),
            "{} failed ({status}); its output:\n{}",
            self.name,
            self.output()
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The exit status, stdout and stderr of a finished command, for failure messages.
pub fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The JSON lines of a finished command's stdout (other lines are skipped).
pub fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The first JSON line of `name`'s stdout whose `event` is `event`; fails saying so without one.
pub fn event_line(out: &Output, name: &str, event: &str) -> Value {
    json_lines(out)
        .into_iter()
        .find(|v| v["event"] == event)
        .unwrap_or_else(|| panic!("{name} printed no {event} line: {}", describe(out)))
}
