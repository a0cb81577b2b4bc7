//! Tokio helpers around the sans-IO handshakes of [`super::proto`].

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{timeout, Instant};

use super::negotiation::Negotiation;
use super::proto::{ClientHandshake, ServerHandshake};
use super::Socks5Error;

/// How long one incoming connection may take to complete its handshake in [`accept`].
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the client handshake on `stream` asking for `dst`; reads exactly the handshake's bytes.
pub async fn client_handshake<S>(stream: &mut S, dst: &str) -> Result<(), Socks5Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut machine, greeting) = ClientHandshake::new(dst)?;
    stream.write_all(&greeting).await?;
    let mut buf = [0u8; 262];
    while !machine.is_done() {
        let n = machine.needed().min(buf.len());
        let chunk = buf.get_mut(..n).unwrap_or_default();
        stream.read_exact(chunk).await?;
        let out = machine.receive(chunk)?;
        if !out.is_empty() {
            stream.write_all(&out).await?;
        }
    }
    stream.flush().await?;
    Ok(())
}

/// Runs the server handshake on `stream`; `accept` decides on the requested DST.ADDR. Returns the
/// accepted DST.ADDR; a refused one is answered with a refusal and returned as
/// [`super::HandshakeError::UnexpectedAddress`].
pub async fn server_handshake<S>(
    stream: &mut S,
    mut accept: impl FnMut(&str) -> bool,
) -> Result<String, Socks5Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut machine = ServerHandshake::new();
    let mut buf = [0u8; 262];
    loop {
        if let Some(addr) = machine.requested() {
            let addr = addr.to_owned();
            if accept(&addr) {
                let reply = machine.accept()?;
                stream.write_all(&reply).await?;
                stream.flush().await?;
                return Ok(addr);
            }
            let reply = machine.refuse()?;
            let _ = stream.write_all(&reply).await;
            return Err(super::HandshakeError::UnexpectedAddress(addr).into());
        }
        let n = machine.needed().min(buf.len());
        let chunk = buf.get_mut(..n).unwrap_or_default();
        stream.read_exact(chunk).await?;
        match machine.receive(chunk) {
            Ok(out) if !out.is_empty() => stream.write_all(&out).await?,
            Ok(_) => {}
            Err(e) => {
                if let Some(reply) = ServerHandshake::error_reply(&e) {
                    let _ = stream.write_all(&reply).await;
                }
                return Err(e.into());
            }
        }
    }
}

/// Connects to a streamhost at `host:port` (an address or a name) and runs the client handshake for
/// `dst`, all within `limit`. The returned stream carries the bytestream.
pub async fn connect(
    host: &str,
    port: u16,
    dst: &str,
    limit: Duration,
) -> Result<TcpStream, Socks5Error> {
    let run = async {
        let mut stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        client_handshake(&mut stream, dst).await?;
        Ok::<_, Socks5Error>(stream)
    };
    timeout(limit, run)
        .await
        .map_err(|_| Socks5Error::Timeout(limit, "connecting to a streamhost"))?
}

/// How many incoming handshakes [`accept`] runs at once; further connections wait in the backlog.
pub const MAX_PENDING_HANDSHAKES: usize = 8;

/// Accepts connections on `listener` until one completes the handshake with a DST.ADDR in
/// `expected`, within `limit`. Handshakes run concurrently (at most [`MAX_PENDING_HANDSHAKES`], each
/// within [`HANDSHAKE_TIMEOUT`]), so a silent or hostile connection cannot hold up the expected one;
/// connections that fail or ask for another address are dropped. Returns the stream and the matched
/// address.
pub async fn accept(
    listener: &TcpListener,
    expected: &[String],
    limit: Duration,
) -> Result<(TcpStream, String), Socks5Error> {
    let deadline = Instant::now() + limit;
    let mut pending = tokio::task::JoinSet::new();
    loop {
        let room = pending.len() < MAX_PENDING_HANDSHAKES;
        tokio::select! {
            accepted = listener.accept(), if room => {
                let (mut stream, _) = accepted?;
                let expected = expected.to_vec();
                pending.spawn(async move {
                    let handshake =
                        server_handshake(&mut stream, |addr| expected.iter().any(|e| e == addr));
                    match timeout(HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(addr)) => Some((stream, addr)),
                        Ok(Err(e)) => {
                            tracing::debug!("SOCKS5 connection dropped: {e}");
                            None
                        }
                        Err(_) => {
                            tracing::debug!("SOCKS5 connection dropped: handshake too slow");
                            None
                        }
                    }
                });
            }
            Some(done) = pending.join_next(), if !pending.is_empty() => {
                if let Ok(Some((stream, addr))) = done {
                    stream.set_nodelay(true)?;
                    return Ok((stream, addr));
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                return Err(Socks5Error::Timeout(limit, "waiting for a SOCKS5 connection"));
            }
        }
    }
}

/// Tries the peer's XEP-0260 candidates in the order `negotiation` gives them, each within
/// `per_candidate`, and reports every result to it. Returns the candidate id and connection of the
/// first that completed its handshake (a `candidate-used` is then queued in the negotiation), or
/// `None` when none did or none was worth trying (a `candidate-error` is queued).
pub async fn try_candidates(
    negotiation: &mut Negotiation,
    per_candidate: Duration,
) -> Option<(String, TcpStream)> {
    while let Some(attempt) = negotiation.next_attempt() {
        let c = &attempt.candidate;
        match connect(
            &c.host,
            c.port_or_default(),
            &attempt.dst_addr,
            per_candidate,
        )
        .await
        {
            Ok(stream) => {
                // The candidate came from next_attempt, so it is known and we had not reported.
                if negotiation.attempt_succeeded(&c.cid).is_ok() {
                    return Some((c.cid.clone(), stream));
                }
                return None;
            }
            Err(e) => {
                tracing::debug!("candidate {} ({}:{:?}) failed: {e}", c.cid, c.host, c.port);
                negotiation.attempt_failed(&c.cid);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn loopback_handshake_and_wrong_address() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let want = vec!["good".to_owned()];
        let server = tokio::spawn(async move {
            // Less than HANDSHAKE_TIMEOUT: the silent connection must not be waited for.
            let (mut s, addr) = accept(&listener, &want, Duration::from_secs(5))
                .await
                .unwrap();
            s.write_all(b"hello").await.unwrap();
            addr
        });
        // A connection that never speaks does not hold up the others.
        let _silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        // A wrong address is refused and the listener keeps waiting.
        let bad = connect("127.0.0.1", port, "bad", Duration::from_secs(5)).await;
        assert!(
            matches!(
                bad,
                Err(Socks5Error::Handshake(
                    super::super::HandshakeError::Refused(2)
                ))
            ),
            "{bad:?}"
        );
        // Garbage is dropped too.
        let mut junk = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        junk.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut good = connect("127.0.0.1", port, "good", Duration::from_secs(5))
            .await
            .unwrap();
        let mut got = [0u8; 5];
        good.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        assert_eq!(server.await.unwrap(), "good");
    }

    #[tokio::test]
    async fn silent_peer_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let r = accept(&listener, &["x".into()], Duration::from_millis(300)).await;
        assert!(matches!(r, Err(Socks5Error::Timeout(..))), "{r:?}");
        // A server that accepts and never answers.
        let (_keep, addr) = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let a = l.local_addr().unwrap();
            (l, a)
        };
        let r = connect("127.0.0.1", addr.port(), "x", Duration::from_millis(300)).await;
        assert!(matches!(r, Err(Socks5Error::Timeout(..))), "{r:?}");
    }
}
