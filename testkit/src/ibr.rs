//! A minimal XEP-0077 in-band registration client over the plaintext loopback c2s port.
//!
//! ejabberd's only admin path, `ejabberdctl register`, boots an Erlang VM per account (~1 s);
//! registering in-band over the test server's own open registration takes milliseconds.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const ID: &str = "xmpp-testkit-register";
const MAX_BUFFER: usize = 1 << 20;

/// Registers `user` with `password` on `domain` through the c2s listener at `addr`.
/// Returns what went wrong as text (the caller falls back to the server's admin tool).
pub(crate) fn register(
    addr: SocketAddr,
    domain: &str,
    user: &str,
    password: &str,
) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let mut buf = String::new();
    let mut pos = 0;
    send(
        &mut stream,
        &format!(
            "<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        ),
    )?;
    read_until(
        &mut stream,
        &mut buf,
        &mut pos,
        &["</stream:features>"],
        deadline,
    )?;
    send(
        &mut stream,
        &format!(
            "<iq type='set' id='{ID}'><query xmlns='jabber:iq:register'>\
             <username>{}</username><password>{}</password></query></iq>",
            escape(user),
            escape(password)
        ),
    )?;
    let single = format!("id='{ID}'");
    let double = format!("id=\"{ID}\"");
    let at = read_until(
        &mut stream,
        &mut buf,
        &mut pos,
        &[&single, &double],
        deadline,
    )?;
    let start = buf[..at].rfind('<').unwrap_or(0);
    let tag_end = read_until(&mut stream, &mut buf, &mut pos, &[">"], deadline)?;
    let tag = buf[start..tag_end].to_owned();
    let result = tag.contains("type='result'") || tag.contains("type=\"result\"");
    let outcome = if result {
        Ok(())
    } else {
        // Collect the error element for the message.
        let _ = read_until(&mut stream, &mut buf, &mut pos, &["</iq>"], deadline);
        Err(format!("in-band registration refused: {}", &buf[start..]))
    };
    let _ = send(&mut stream, "</stream:stream>");
    outcome
}

/// Reads until one of `needles` occurs at or after `*pos`; moves `*pos` just past it and
/// returns that offset.
fn read_until(
    stream: &mut TcpStream,
    buf: &mut String,
    pos: &mut usize,
    needles: &[&str],
    deadline: Instant,
) -> Result<usize, String> {
    let mut chunk = [0u8; 8192];
    loop {
        let from = *pos;
        if let Some(end) = needles
            .iter()
            .filter_map(|n| buf[from..].find(n).map(|i| from + i + n.len()))
            .min()
        {
            *pos = end;
            return Ok(end);
        }
        if buf.contains("</stream:stream>") || buf.contains("</stream:error>") {
            return Err(format!("the server closed the stream: {buf}"));
        }
        if Instant::now() >= deadline || buf.len() > MAX_BUFFER {
            return Err(format!("no {needles:?} in time; got {buf}"));
        }
        match stream.read(&mut chunk) {
            Ok(0) => {
                return Err(format!(
                    "connection closed waiting for {needles:?}; got {buf}"
                ))
            }
            Ok(n) => buf.push_str(&String::from_utf8_lossy(&chunk[..n])),
            // EINTR after a stop/continue, or the per-read timeout: retry until the deadline.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("reading: {e}")),
        }
    }
}

fn send(stream: &mut TcpStream, data: &str) -> Result<(), String> {
    stream
        .write_all(data.as_bytes())
        .map_err(|e| format!("writing: {e}"))
}

/// Escapes text for XML character data.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}
