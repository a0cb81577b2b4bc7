//! The subset of SOCKS5 (RFC 1928) that XEP-0065 uses, as sans-IO handshakes.
//!
//! XEP-0065 only ever uses: version 5, the "no authentication" method (0x00), the CONNECT command with
//! address type DOMAINNAME (0x03) carrying the hex SHA-1 [`dst_addr`] and port 0. Both machines here
//! read exactly the bytes of the handshake and never more, so whatever the peer sends after it stays in
//! the socket for the data phase: a driver asks [`ClientHandshake::needed`] /
//! [`ServerHandshake::needed`] how many bytes to read next, hands them to `receive`, and sends what
//! `receive` returns.

use sha1::{Digest, Sha1};

const VERSION: u8 = 5;
const METHOD_NO_AUTH: u8 = 0x00;
const METHOD_NONE_ACCEPTABLE: u8 = 0xff;
const CMD_CONNECT: u8 = 0x01;
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;
const REPLY_SUCCEEDED: u8 = 0x00;
const REPLY_NOT_ALLOWED: u8 = 0x02;
const REPLY_COMMAND_NOT_SUPPORTED: u8 = 0x07;
const REPLY_ADDRESS_NOT_SUPPORTED: u8 = 0x08;

/// Why a SOCKS5 handshake failed. Every malformed or hostile byte sequence ends in one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer does not speak SOCKS version 5.
    #[error("not SOCKS5: version byte {0:#04x}")]
    BadVersion(u8),
    /// The client offered no method we accept (we only do "no authentication"), or the server chose one
    /// we did not offer.
    #[error("no acceptable authentication method (got {0:#04x})")]
    NoAcceptableMethod(u8),
    /// The client asked for something else than CONNECT.
    #[error("unsupported SOCKS5 command {0:#04x}")]
    UnsupportedCommand(u8),
    /// The address type is unknown, or not DOMAINNAME where XEP-0065 requires it.
    #[error("unsupported SOCKS5 address type {0:#04x}")]
    UnsupportedAddressType(u8),
    /// A reserved byte was not zero.
    #[error("reserved byte is {0:#04x}, not zero")]
    BadReserved(u8),
    /// The server refused the CONNECT (RFC 1928 reply code).
    #[error("the SOCKS5 server refused the connection (reply code {0:#04x})")]
    Refused(u8),
    /// A DOMAINNAME is empty or not printable ASCII.
    #[error("invalid destination address")]
    BadAddress,
    /// The destination address does not belong to the expected bytestream.
    #[error("unexpected destination address {0:?}")]
    UnexpectedAddress(String),
    /// The handshake is already over (or failed): no more input is taken.
    #[error("the handshake is finished")]
    Finished,
    /// More bytes were given than [`ClientHandshake::needed`] / [`ServerHandshake::needed`] asked for.
    #[error("{given} bytes given where {needed} were asked for")]
    TooMuchInput {
        /// Bytes asked for.
        needed: usize,
        /// Bytes given.
        given: usize,
    },
}

/// The XEP-0065 DST.ADDR: the lower-case hex SHA-1 of `sid + requester + target` (full JIDs, already
/// normalised). In XEP-0260 the requester is whoever offered the candidate (see the transport module).
pub fn dst_addr(sid: &str, requester: &str, target: &str) -> String {
    let mut h = Sha1::new();
    h.update(sid.as_bytes());
    h.update(requester.as_bytes());
    h.update(target.as_bytes());
    hex(&h.finalize())
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn valid_domain(addr: &[u8]) -> bool {
    !addr.is_empty() && addr.iter().all(|b| b.is_ascii_graphic())
}

/// The CONNECT request (or reply, which XEP-0065 makes identical but for the code) for a DOMAINNAME.
fn domain_message(code: u8, addr: &str) -> Vec<u8> {
    let bytes = addr.as_bytes();
    let mut out = Vec::with_capacity(7 + bytes.len());
    out.extend_from_slice(&[VERSION, code, 0x00, ATYP_DOMAIN]);
    // Callers checked the length fits in a byte.
    out.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(bytes.get(..255).unwrap_or(bytes));
    out.extend_from_slice(&[0, 0]);
    out
}

/// Reads a fixed-size piece of a message into a small buffer; shared by both machines.
#[derive(Debug, Default)]
struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    fn take(&mut self, needed: usize, input: &[u8]) -> Result<bool, HandshakeError> {
        let missing = needed.saturating_sub(self.buf.len());
        if input.len() > missing {
            return Err(HandshakeError::TooMuchInput {
                needed: missing,
                given: input.len(),
            });
        }
        self.buf.extend_from_slice(input);
        Ok(self.buf.len() == needed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    /// Greeting sent, waiting for VER METHOD.
    Method,
    /// Request sent, waiting for VER REP RSV ATYP and the first address byte.
    ReplyHead,
    /// Waiting for the rest of the address and the port (`n` bytes).
    ReplyTail(usize),
    Done,
    Failed,
}

/// The client side (the party connecting to a streamhost): greeting, CONNECT, reply.
///
/// ```
/// use xmpp_jingle::socks5::proto::{ClientHandshake, ServerHandshake};
/// let (mut client, greeting) = ClientHandshake::new("ab12").unwrap();
/// let mut server = ServerHandshake::new();
/// let mut to_server = greeting;
/// loop {
///     // Feed the server exactly what it asks for.
///     let mut out = Vec::new();
///     while !to_server.is_empty() && server.needed() > 0 {
///         let n = server.needed().min(to_server.len());
///         let chunk: Vec<u8> = to_server.drain(..n).collect();
///         out.extend(server.receive(&chunk).unwrap());
///     }
///     if let Some(addr) = server.requested() {
///         assert_eq!(addr, "ab12");
///         out.extend(server.accept().unwrap());
///     }
///     let mut to_client = out;
///     while !to_client.is_empty() {
///         let n = client.needed().min(to_client.len());
///         let chunk: Vec<u8> = to_client.drain(..n).collect();
///         to_server.extend(client.receive(&chunk).unwrap());
///     }
///     if client.is_done() { break; }
/// }
/// ```
#[derive(Debug)]
pub struct ClientHandshake {
    dst: String,
    state: ClientState,
    reader: Reader,
}

impl ClientHandshake {
    /// Starts a handshake asking for `dst` (DST.ADDR, at most 255 printable ASCII bytes); returns the
    /// machine and the greeting to send.
    pub fn new(dst: &str) -> Result<(ClientHandshake, Vec<u8>), HandshakeError> {
        if dst.len() > 255 || !valid_domain(dst.as_bytes()) {
            return Err(HandshakeError::BadAddress);
        }
        Ok((
            ClientHandshake {
                dst: dst.to_owned(),
                state: ClientState::Method,
                reader: Reader::default(),
            },
            vec![VERSION, 1, METHOD_NO_AUTH],
        ))
    }

    /// How many bytes to read before the next [`ClientHandshake::receive`]; 0 once finished.
    pub fn needed(&self) -> usize {
        let total = match self.state {
            ClientState::Method => 2,
            ClientState::ReplyHead => 5,
            ClientState::ReplyTail(n) => n,
            ClientState::Done | ClientState::Failed => return 0,
        };
        total - self.reader.buf.len()
    }

    /// Whether the server accepted the CONNECT: the bytestream starts with the next byte.
    pub fn is_done(&self) -> bool {
        self.state == ClientState::Done
    }

    /// Takes up to [`ClientHandshake::needed`] bytes; returns what to send back (maybe nothing).
    pub fn receive(&mut self, input: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        let result = self.step(input);
        if result.is_err() {
            self.state = ClientState::Failed;
        }
        result
    }

    fn step(&mut self, input: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        let needed = match self.state {
            ClientState::Method => 2,
            ClientState::ReplyHead => 5,
            ClientState::ReplyTail(n) => n,
            ClientState::Done | ClientState::Failed => return Err(HandshakeError::Finished),
        };
        if !self.reader.take(needed, input)? {
            return Ok(Vec::new());
        }
        let buf = std::mem::take(&mut self.reader.buf);
        match (self.state, buf.as_slice()) {
            (ClientState::Method, [ver, method]) => {
                if *ver != VERSION {
                    return Err(HandshakeError::BadVersion(*ver));
                }
                if *method != METHOD_NO_AUTH {
                    return Err(HandshakeError::NoAcceptableMethod(*method));
                }
                self.state = ClientState::ReplyHead;
                Ok(domain_message(CMD_CONNECT, &self.dst))
            }
            (ClientState::ReplyHead, [ver, rep, rsv, atyp, first]) => {
                if *ver != VERSION {
                    return Err(HandshakeError::BadVersion(*ver));
                }
                if *rep != REPLY_SUCCEEDED {
                    return Err(HandshakeError::Refused(*rep));
                }
                if *rsv != 0 {
                    return Err(HandshakeError::BadReserved(*rsv));
                }
                // BND.ADDR should echo our DOMAINNAME; some proxies answer with an IP address. The
                // first address byte is already read: the rest of the address, then 2 port bytes.
                let rest = match *atyp {
                    ATYP_DOMAIN if *first == 0 => return Err(HandshakeError::BadAddress),
                    ATYP_DOMAIN => usize::from(*first) + 2,
                    ATYP_IPV4 => 3 + 2,
                    ATYP_IPV6 => 15 + 2,
                    other => return Err(HandshakeError::UnsupportedAddressType(other)),
                };
                self.state = ClientState::ReplyTail(rest);
                Ok(Vec::new())
            }
            (ClientState::ReplyTail(_), _) => {
                self.state = ClientState::Done;
                Ok(Vec::new())
            }
            _ => Err(HandshakeError::Finished),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ServerState {
    /// Waiting for VER NMETHODS.
    Greeting,
    /// Waiting for the `n` method bytes.
    Methods(usize),
    /// Waiting for VER CMD RSV ATYP LEN.
    RequestHead,
    /// Waiting for the address (`n` bytes) and the port.
    RequestTail(usize),
    /// The request is in: the caller decides.
    Requested(String),
    Done,
    Failed,
}

/// The server side (a streamhost accepting a connection): greeting, method choice, CONNECT request,
/// then the caller checks [`ServerHandshake::requested`] and calls [`ServerHandshake::accept`] or
/// [`ServerHandshake::refuse`].
#[derive(Debug)]
pub struct ServerHandshake {
    state: ServerState,
    reader: Reader,
}

impl Default for ServerHandshake {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerHandshake {
    /// A fresh handshake waiting for the client's greeting.
    pub fn new() -> Self {
        ServerHandshake {
            state: ServerState::Greeting,
            reader: Reader::default(),
        }
    }

    fn wanted(&self) -> usize {
        match self.state {
            ServerState::Greeting => 2,
            ServerState::Methods(n) | ServerState::RequestTail(n) => n,
            ServerState::RequestHead => 5,
            _ => 0,
        }
    }

    /// How many bytes to read before the next [`ServerHandshake::receive`]; 0 when waiting for the
    /// caller's decision or finished.
    pub fn needed(&self) -> usize {
        self.wanted().saturating_sub(self.reader.buf.len())
    }

    /// The DST.ADDR the client asked for, once its CONNECT request is in and not yet answered.
    pub fn requested(&self) -> Option<&str> {
        match &self.state {
            ServerState::Requested(addr) => Some(addr),
            _ => None,
        }
    }

    /// Whether the handshake completed with [`ServerHandshake::accept`].
    pub fn is_done(&self) -> bool {
        self.state == ServerState::Done
    }

    /// Takes up to [`ServerHandshake::needed`] bytes; returns what to send back (maybe nothing).
    /// A greeting without the "no authentication" method fails after returning the refusal
    /// through the error; send [`ServerHandshake::NO_ACCEPTABLE_METHOD`] then close.
    pub fn receive(&mut self, input: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        let result = self.step(input);
        if result.is_err() {
            self.state = ServerState::Failed;
        }
        result
    }

    /// The answer to a greeting that offers no acceptable method.
    pub const NO_ACCEPTABLE_METHOD: [u8; 2] = [VERSION, METHOD_NONE_ACCEPTABLE];

    fn step(&mut self, input: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        let needed = self.wanted();
        if needed == 0 {
            return Err(HandshakeError::Finished);
        }
        if !self.reader.take(needed, input)? {
            return Ok(Vec::new());
        }
        let buf = std::mem::take(&mut self.reader.buf);
        match (&self.state, buf.as_slice()) {
            (ServerState::Greeting, [ver, n]) => {
                if *ver != VERSION {
                    return Err(HandshakeError::BadVersion(*ver));
                }
                if *n == 0 {
                    return Err(HandshakeError::NoAcceptableMethod(0));
                }
                self.state = ServerState::Methods(usize::from(*n));
                Ok(Vec::new())
            }
            (ServerState::Methods(_), methods) => {
                if !methods.contains(&METHOD_NO_AUTH) {
                    return Err(HandshakeError::NoAcceptableMethod(
                        methods.first().copied().unwrap_or(0),
                    ));
                }
                self.state = ServerState::RequestHead;
                Ok(vec![VERSION, METHOD_NO_AUTH])
            }
            (ServerState::RequestHead, [ver, cmd, rsv, atyp, len]) => {
                if *ver != VERSION {
                    return Err(HandshakeError::BadVersion(*ver));
                }
                if *cmd != CMD_CONNECT {
                    return Err(HandshakeError::UnsupportedCommand(*cmd));
                }
                if *rsv != 0 {
                    return Err(HandshakeError::BadReserved(*rsv));
                }
                if *atyp != ATYP_DOMAIN {
                    return Err(HandshakeError::UnsupportedAddressType(*atyp));
                }
                if *len == 0 {
                    return Err(HandshakeError::BadAddress);
                }
                self.state = ServerState::RequestTail(usize::from(*len) + 2);
                Ok(Vec::new())
            }
            (ServerState::RequestTail(_), tail) => {
                let addr = tail.get(..tail.len().saturating_sub(2)).unwrap_or(&[]);
                if !valid_domain(addr) {
                    return Err(HandshakeError::BadAddress);
                }
                // Checked ASCII above.
                let addr = String::from_utf8_lossy(addr).into_owned();
                self.state = ServerState::Requested(addr);
                Ok(Vec::new())
            }
            _ => Err(HandshakeError::Finished),
        }
    }

    /// Accepts the requested destination: returns the success reply (BND.ADDR = DST.ADDR, port 0, as
    /// XEP-0065 says). The bytestream starts after it.
    pub fn accept(&mut self) -> Result<Vec<u8>, HandshakeError> {
        match std::mem::replace(&mut self.state, ServerState::Done) {
            ServerState::Requested(addr) => Ok(domain_message(REPLY_SUCCEEDED, &addr)),
            other => {
                self.state = other;
                Err(HandshakeError::Finished)
            }
        }
    }

    /// Refuses the requested destination ("connection not allowed by ruleset"): returns the reply to
    /// send before closing.
    pub fn refuse(&mut self) -> Result<Vec<u8>, HandshakeError> {
        match std::mem::replace(&mut self.state, ServerState::Failed) {
            ServerState::Requested(addr) => Ok(domain_message(REPLY_NOT_ALLOWED, &addr)),
            other => {
                self.state = other;
                Err(HandshakeError::Finished)
            }
        }
    }

    /// The reply for a failed request (command or address type not supported), if the error has one.
    pub fn error_reply(error: &HandshakeError) -> Option<Vec<u8>> {
        let code = match error {
            HandshakeError::UnsupportedCommand(_) => REPLY_COMMAND_NOT_SUPPORTED,
            HandshakeError::UnsupportedAddressType(_) => REPLY_ADDRESS_NOT_SUPPORTED,
            HandshakeError::NoAcceptableMethod(_) => {
                return Some(Self::NO_ACCEPTABLE_METHOD.to_vec())
            }
            _ => return None,
        };
        Some(vec![VERSION, code, 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0])
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Feeds `bytes` to the server in the pieces it asks for.
    fn feed_server(s: &mut ServerHandshake, mut bytes: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        let mut out = Vec::new();
        while !bytes.is_empty() && s.needed() > 0 {
            let n = s.needed().min(bytes.len());
            out.extend(s.receive(&bytes[..n])?);
            bytes = &bytes[n..];
        }
        Ok(out)
    }

    fn feed_client(c: &mut ClientHandshake, mut bytes: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        let mut out = Vec::new();
        while !bytes.is_empty() && c.needed() > 0 {
            let n = c.needed().min(bytes.len());
            out.extend(c.receive(&bytes[..n])?);
            bytes = &bytes[n..];
        }
        Ok(out)
    }

    #[test]
    fn xep_0065_dst_addr_example() {
        // XEP-0260 §2.2 example: SHA-1 of "vj3hs98yromeo@montague.lit/orchardjuliet@capulet.lit/balcony".
        assert_eq!(
            dst_addr(
                "vj3hs98y",
                "romeo@montague.lit/orchard",
                "juliet@capulet.lit/balcony"
            ),
            "972b7bf47291ca609517f67f86b5081086052dad"
        );
        assert_eq!(
            dst_addr(
                "vj3hs98y",
                "juliet@capulet.lit/balcony",
                "romeo@montague.lit/orchard"
            ),
            "1a12fb7bc625e55f3ed5b29a53dbe0e4aa7d80ba"
        );
    }

    #[test]
    fn full_handshake_byte_by_byte() {
        let dst = dst_addr("sid", "a@b/c", "d@e/f");
        let (mut c, greeting) = ClientHandshake::new(&dst).unwrap();
        assert_eq!(greeting, [5, 1, 0]);
        let mut s = ServerHandshake::new();
        let mut to_client = Vec::new();
        for b in &greeting {
            to_client.extend(s.receive(&[*b]).unwrap());
        }
        assert_eq!(to_client, [5, 0]);
        let request = feed_client(&mut c, &to_client).unwrap();
        assert_eq!(request.len(), 7 + 40);
        assert_eq!(&request[..5], &[5, 1, 0, 3, 40]);
        for b in &request {
            assert!(s.receive(&[*b]).unwrap().is_empty());
        }
        assert_eq!(s.requested(), Some(dst.as_str()));
        assert_eq!(s.needed(), 0);
        let reply = s.accept().unwrap();
        assert_eq!(reply[..5], [5, 0, 0, 3, 40]);
        for b in &reply {
            assert!(c.receive(&[*b]).unwrap().is_empty());
        }
        assert!(c.is_done() && s.is_done());
        assert_eq!(c.needed(), 0);
        assert_eq!(c.receive(&[1]), Err(HandshakeError::Finished));
    }

    #[test]
    fn client_accepts_ip_replies_and_reports_refusals() {
        let (mut c, _) = ClientHandshake::new("x").unwrap();
        feed_client(&mut c, &[5, 0]).unwrap();
        feed_client(&mut c, &[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).unwrap();
        assert!(c.is_done());

        let (mut c, _) = ClientHandshake::new("x").unwrap();
        feed_client(&mut c, &[5, 0]).unwrap();
        assert_eq!(
            feed_client(&mut c, &[5, 2, 0, 3, 1]),
            Err(HandshakeError::Refused(2))
        );
        assert_eq!(c.needed(), 0);
    }

    #[test]
    fn hostile_bytes_give_errors() {
        let cases: &[(&[u8], HandshakeError)] = &[
            (&[4, 1, 0], HandshakeError::BadVersion(4)),
            (&[5, 0], HandshakeError::NoAcceptableMethod(0)),
            (&[5, 2, 1, 2], HandshakeError::NoAcceptableMethod(1)),
            (
                &[5, 1, 0, 5, 2, 0, 3, 1],
                HandshakeError::UnsupportedCommand(2),
            ),
            (&[5, 1, 0, 5, 1, 1, 3, 1], HandshakeError::BadReserved(1)),
            (
                &[5, 1, 0, 5, 1, 0, 1, 1],
                HandshakeError::UnsupportedAddressType(1),
            ),
            (&[5, 1, 0, 5, 1, 0, 3, 0], HandshakeError::BadAddress),
            (
                &[5, 1, 0, 5, 1, 0, 3, 2, b' ', b'a', 0, 0],
                HandshakeError::BadAddress,
            ),
            (
                &[5, 1, 0, 5, 1, 0, 3, 1, 0xc3, 0, 0],
                HandshakeError::BadAddress,
            ),
        ];
        for (bytes, want) in cases {
            let mut s = ServerHandshake::new();
            assert_eq!(feed_server(&mut s, bytes).as_ref(), Err(want), "{bytes:?}");
            assert_eq!(s.needed(), 0);
            assert_eq!(s.receive(&[5]), Err(HandshakeError::Finished));
        }
        // More than asked for is refused, not buffered.
        let mut s = ServerHandshake::new();
        assert!(matches!(
            s.receive(&[5, 1, 0]),
            Err(HandshakeError::TooMuchInput { .. })
        ));
        // The client's side.
        let client_cases: &[(&[u8], HandshakeError)] = &[
            (&[4, 0], HandshakeError::BadVersion(4)),
            (&[5, 0xff], HandshakeError::NoAcceptableMethod(0xff)),
            (&[5, 0, 5, 0, 1, 3, 1], HandshakeError::BadReserved(1)),
            (
                &[5, 0, 5, 0, 0, 9, 1],
                HandshakeError::UnsupportedAddressType(9),
            ),
            (&[5, 0, 5, 0, 0, 3, 0], HandshakeError::BadAddress),
        ];
        for (bytes, want) in client_cases {
            let (mut c, _) = ClientHandshake::new("x").unwrap();
            assert_eq!(feed_client(&mut c, bytes).as_ref(), Err(want), "{bytes:?}");
        }
        assert!(ClientHandshake::new("").is_err());
        assert!(ClientHandshake::new(&"a".repeat(256)).is_err());
        assert!(ClientHandshake::new("a b").is_err());
    }

    #[test]
    fn refusal_and_error_replies() {
        let mut s = ServerHandshake::new();
        feed_server(&mut s, &[5, 1, 0, 5, 1, 0, 3, 1, b'z', 0, 0]).unwrap();
        let reply = s.refuse().unwrap();
        assert_eq!(reply[1], REPLY_NOT_ALLOWED);
        assert!(s.accept().is_err());
        assert_eq!(
            ServerHandshake::error_reply(&HandshakeError::UnsupportedCommand(2)).unwrap()[1],
            REPLY_COMMAND_NOT_SUPPORTED
        );
    }

    #[test]
    fn random_input_never_panics() {
        // A small deterministic generator: arbitrary byte soups of every length.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..5000 {
            let len = round % 64;
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(if x % 3 == 0 { 5 } else { (x >> 8) as u8 });
            }
            let mut s = ServerHandshake::new();
            let _ = feed_server(&mut s, &bytes);
            let (mut c, _) = ClientHandshake::new("abc").unwrap();
            let _ = feed_client(&mut c, &bytes);
        }
    }
}
