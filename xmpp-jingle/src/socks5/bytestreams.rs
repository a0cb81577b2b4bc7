//! XEP-0065 SOCKS5 Bytestreams 1.8: the `<query/>` element, proxy discovery and activation, and the
//! requester and target flows over any [`Connection`].
//!
//! The requester offers streamhosts (itself on a local listener, and proxies found with
//! [`discover_proxies`]); the target connects to the first one that works and names it in
//! `<streamhost-used/>`; when that is a proxy, the requester connects to it too and activates the
//! stream. Either side then holds a plain [`TcpStream`] carrying the bytes.

use std::sync::Arc;
use std::time::Duration;

use jid::Jid;
use minidom::Element;
use tokio::net::{TcpListener, TcpStream};
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use xmpp_social::xml::BuilderExt;
use xmpp_social::{Connection, IqRequest, ParseError};

use super::proto::dst_addr;
use super::{net, Socks5Error};

/// The XEP-0065 namespace.
pub const NS_BYTESTREAMS: &str = "http://jabber.org/protocol/bytestreams";

/// The most streamhosts a query may carry.
pub const MAX_STREAMHOSTS: usize = 32;
/// The longest stream id accepted.
pub const MAX_SID_LEN: usize = 256;
/// The most disco#items entries looked at during proxy discovery.
pub const MAX_DISCO_ITEMS: usize = 64;
/// How long discovery waits for each item's `disco#info`.
pub const DISCO_ITEM_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest host name or address accepted.
const MAX_HOST_LEN: usize = 255;

/// A streamhost: a SOCKS5 server (the requester itself or a proxy) reachable at `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHost {
    /// Its XMPP address (the requester's full JID, or the proxy's JID).
    pub jid: Jid,
    /// IP address or DNS name.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// The `mode` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// TCP (the default).
    #[default]
    Tcp,
    /// UDP (optional in XEP-0065; not implemented by the flows here).
    Udp,
}

impl Mode {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Tcp => "tcp",
            Mode::Udp => "udp",
        }
    }

    pub(crate) fn parse(value: &str, element: &'static str) -> Result<Mode, ParseError> {
        match value {
            "tcp" => Ok(Mode::Tcp),
            "udp" => Ok(Mode::Udp),
            other => Err(ParseError::InvalidValue {
                element,
                reason: format!("mode {other:?}"),
            }),
        }
    }
}

/// A `<query xmlns='http://jabber.org/protocol/bytestreams'/>`: an offer (streamhosts), an answer
/// (`streamhost-used`), an activation request (`activate`), or an empty proxy address request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// The stream id (absent only in a proxy address request or answer).
    pub sid: Option<String>,
    /// `mode` (written only when UDP).
    pub mode: Mode,
    /// The requester's DST.ADDR when the target cannot compute it (MUC).
    pub dstaddr: Option<String>,
    /// Offered streamhosts, in the requester's order of preference.
    pub streamhosts: Vec<StreamHost>,
    /// The streamhost the target connected to.
    pub streamhost_used: Option<Jid>,
    /// The target whose stream the proxy should activate.
    pub activate: Option<Jid>,
}

pub(crate) fn attr<'a>(
    el: &'a Element,
    element: &'static str,
    attribute: &'static str,
) -> Result<&'a str, ParseError> {
    el.attr(attribute)
        .ok_or(ParseError::MissingAttribute { element, attribute })
}

pub(crate) fn parse_jid(value: &str, element: &'static str) -> Result<Jid, ParseError> {
    Jid::new(value).map_err(|e| ParseError::InvalidValue {
        element,
        reason: format!("JID {value:?}: {e}"),
    })
}

pub(crate) fn parse_host(value: &str, element: &'static str) -> Result<String, ParseError> {
    if value.is_empty() || value.len() > MAX_HOST_LEN || value.chars().any(|c| c.is_whitespace()) {
        return Err(ParseError::InvalidValue {
            element,
            reason: "host is empty, too long or has spaces".into(),
        });
    }
    Ok(value.to_owned())
}

pub(crate) fn parse_port(value: &str, element: &'static str) -> Result<u16, ParseError> {
    match value.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(ParseError::InvalidValue {
            element,
            reason: format!("port {value:?}"),
        }),
    }
}

pub(crate) fn check_sid(sid: &str, element: &'static str) -> Result<(), ParseError> {
    if sid.is_empty() || sid.len() > MAX_SID_LEN {
        return Err(ParseError::InvalidValue {
            element,
            reason: "sid is empty or too long".into(),
        });
    }
    Ok(())
}

impl StreamHost {
    fn from_element(el: &Element) -> Result<StreamHost, ParseError> {
        Ok(StreamHost {
            jid: parse_jid(attr(el, "streamhost", "jid")?, "streamhost")?,
            host: parse_host(attr(el, "streamhost", "host")?, "streamhost")?,
            port: parse_port(attr(el, "streamhost", "port")?, "streamhost")?,
        })
    }

    fn to_element(&self) -> Element {
        Element::builder("streamhost", NS_BYTESTREAMS)
            .a("jid", self.jid.to_string())
            .a("host", self.host.as_str())
            .a("port", self.port.to_string())
            .build()
    }
}

impl Query {
    /// Parses a `<query/>`. Unknown children (e.g. UDP's `<udpsuccess/>`) are ignored.
    pub fn from_element(el: &Element) -> Result<Query, ParseError> {
        if !el.is("query", NS_BYTESTREAMS) {
            return Err(ParseError::WrongElement {
                expected: format!("{{{NS_BYTESTREAMS}}}query"),
                found: format!("{{{}}}{}", el.ns(), el.name()),
            });
        }
        let mut q = Query {
            sid: el.attr("sid").map(str::to_owned),
            mode: el
                .attr("mode")
                .map(|m| Mode::parse(m, "query"))
                .transpose()?
                .unwrap_or_default(),
            dstaddr: el.attr("dstaddr").map(str::to_owned),
            ..Query::default()
        };
        if let Some(sid) = &q.sid {
            check_sid(sid, "query")?;
        }
        if let Some(d) = &q.dstaddr {
            if d.is_empty() || d.len() > 255 || !d.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ParseError::InvalidValue {
                    element: "query",
                    reason: "dstaddr is not a SOCKS5 domain name".into(),
                });
            }
        }
        for child in el.children().filter(|c| c.ns() == NS_BYTESTREAMS) {
            match child.name() {
                "streamhost" => {
                    if q.streamhosts.len() >= MAX_STREAMHOSTS {
                        return Err(ParseError::TooLarge {
                            element: "query",
                            size: q.streamhosts.len() + 1,
                            limit: MAX_STREAMHOSTS,
                        });
                    }
                    q.streamhosts.push(StreamHost::from_element(child)?);
                }
                "streamhost-used" => {
                    q.streamhost_used = Some(parse_jid(
                        attr(child, "streamhost-used", "jid")?,
                        "streamhost-used",
                    )?);
                }
                "activate" => {
                    q.activate = Some(parse_jid(child.text().trim(), "activate")?);
                }
                _ => {}
            }
        }
        Ok(q)
    }

    /// Serialises the query.
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("query", NS_BYTESTREAMS);
        if let Some(sid) = &self.sid {
            b = b.a("sid", sid.as_str());
        }
        if self.mode == Mode::Udp {
            b = b.a("mode", "udp");
        }
        if let Some(d) = &self.dstaddr {
            b = b.a("dstaddr", d.as_str());
        }
        for s in &self.streamhosts {
            b = b.append(s.to_element());
        }
        if let Some(j) = &self.streamhost_used {
            b = b.append(
                Element::builder("streamhost-used", NS_BYTESTREAMS)
                    .a("jid", j.to_string())
                    .build(),
            );
        }
        if let Some(j) = &self.activate {
            b = b.append(
                Element::builder("activate", NS_BYTESTREAMS)
                    .append(j.to_string())
                    .build(),
            );
        }
        b.build()
    }
}

/// Asks `proxy` for its streamhost address (`<query/>` get).
pub async fn query_proxy<C: Connection>(conn: &C, proxy: &Jid) -> Result<StreamHost, Socks5Error> {
    let answer = conn
        .send_iq(IqRequest::get(
            Some(proxy.clone()),
            Query::default().to_element(),
        ))
        .await?
        .ok_or(ParseError::MissingChild {
            element: "iq",
            child: "query",
        })?;
    let q = Query::from_element(&answer)?;
    q.streamhosts
        .into_iter()
        .next()
        .ok_or_else(|| Socks5Error::Protocol(format!("{proxy} gave no streamhost")))
}

/// Finds the SOCKS5 proxies of `server` (the account's server when `None`): `disco#items`, then
/// `disco#info` on each item looking for the identity category `proxy`, type `bytestreams`, then
/// each proxy's address. Items that fail to answer are skipped; at most [`MAX_DISCO_ITEMS`] are
/// looked at.
pub async fn discover_proxies<C: Connection>(
    conn: &C,
    server: Option<Jid>,
) -> Result<Vec<StreamHost>, Socks5Error> {
    let server = match server {
        Some(s) => s,
        None => parse_jid(conn.jid().domain().as_str(), "iq")?,
    };
    let items = conn
        .send_iq(IqRequest::get(
            Some(server.clone()),
            DiscoItemsQuery {
                node: None,
                rsm: None,
            }
            .into(),
        ))
        .await?
        .ok_or(ParseError::MissingChild {
            element: "iq",
            child: "query",
        })?;
    let items = DiscoItemsResult::try_from(items).map_err(|e| ParseError::InvalidValue {
        element: "query",
        reason: e.to_string(),
    })?;
    let mut found = Vec::new();
    for item in items.items.iter().take(MAX_DISCO_ITEMS) {
        let info = conn
            .send_iq(
                IqRequest::get(Some(item.jid.clone()), DiscoInfoQuery { node: None }.into())
                    .with_timeout(DISCO_ITEM_TIMEOUT),
            )
            .await;
        let Ok(Some(info)) = info else { continue };
        let Ok(info) = DiscoInfoResult::try_from(info) else {
            continue;
        };
        let is_proxy = info
            .identities
            .iter()
            .any(|i| i.category == "proxy" && i.type_ == "bytestreams");
        if !is_proxy {
            continue;
        }
        match query_proxy(conn, &item.jid).await {
            Ok(host) => found.push(host),
            Err(e) => tracing::debug!("proxy {} unusable: {e}", item.jid),
        }
    }
    Ok(found)
}

/// Asks `proxy` to activate the stream `sid` towards `target` (the requester's last step).
pub async fn activate<C: Connection>(
    conn: &C,
    proxy: &Jid,
    sid: &str,
    target: &Jid,
) -> Result<(), Socks5Error> {
    let q = Query {
        sid: Some(sid.to_owned()),
        activate: Some(target.clone()),
        ..Query::default()
    };
    conn.send_iq(IqRequest::set(Some(proxy.clone()), q.to_element()))
        .await?;
    Ok(())
}

/// The last step of whoever offered the chosen proxy: connects to it with `dst` (the DST.ADDR the peer
/// used), then asks it to activate stream `sid` towards `target`. The returned stream carries the
/// bytes once this returns.
pub async fn connect_and_activate<C: Connection>(
    conn: &C,
    proxy: &StreamHost,
    dst: &str,
    sid: &str,
    target: &Jid,
    limit: Duration,
) -> Result<TcpStream, Socks5Error> {
    let stream = net::connect(&proxy.host, proxy.port, dst, limit).await?;
    activate(conn, &proxy.jid, sid, target).await?;
    Ok(stream)
}

/// A local SOCKS5 listener the requester offers as a streamhost.
#[derive(Debug)]
pub struct LocalStreamHost {
    /// The bound listener.
    pub listener: TcpListener,
    /// The address to advertise (e.g. `127.0.0.1`, or the public address).
    pub host: String,
    /// The port to advertise.
    pub port: u16,
}

impl LocalStreamHost {
    /// Binds `addr` (e.g. `127.0.0.1:0`) and advertises its IP address and port.
    pub async fn bind(addr: &str) -> Result<LocalStreamHost, Socks5Error> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        Ok(LocalStreamHost {
            listener,
            host: local.ip().to_string(),
            port: local.port(),
        })
    }
}

/// How the requester's bytestream was established.
#[derive(Debug)]
pub struct Established {
    /// The socket carrying the bytestream.
    pub stream: TcpStream,
    /// The streamhost the target used (the requester itself or a proxy).
    pub streamhost: Jid,
}

/// The requester's side: offers `local` (if any) then `proxies` to `target` for stream `sid`, waits
/// for the target's choice, and returns the bytestream (accepting the target on `local`, or
/// connecting to and activating the chosen proxy). `limit` bounds the whole exchange.
pub async fn open<C: Connection>(
    conn: &C,
    target: &Jid,
    sid: &str,
    local: Option<LocalStreamHost>,
    proxies: &[StreamHost],
    limit: Duration,
) -> Result<Established, Socks5Error> {
    check_sid(sid, "query")?;
    let me = conn.jid();
    let dst = dst_addr(sid, &me.to_string(), &target.to_string());
    let mut streamhosts = Vec::new();
    if let Some(l) = &local {
        streamhosts.push(StreamHost {
            jid: me.clone(),
            host: l.host.clone(),
            port: l.port,
        });
    }
    streamhosts.extend(proxies.iter().take(MAX_STREAMHOSTS - 1).cloned());
    if streamhosts.is_empty() {
        return Err(Socks5Error::NoStreamhost("nothing to offer".into()));
    }
    // The target connects before it answers: accept concurrently with the offer.
    let accepting = local.map(|l| {
        let expected = vec![dst.clone()];
        tokio::spawn(async move { net::accept(&l.listener, &expected, limit).await })
    });
    let offer = Query {
        sid: Some(sid.to_owned()),
        streamhosts: streamhosts.clone(),
        ..Query::default()
    };
    let answer = conn
        .send_iq(IqRequest::set(Some(target.clone()), offer.to_element()).with_timeout(limit))
        .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            if let Some(task) = accepting {
                task.abort();
            }
            return Err(e.into());
        }
    };
    let used = answer
        .as_ref()
        .map(Query::from_element)
        .transpose()?
        .and_then(|q| q.streamhost_used)
        .ok_or_else(|| Socks5Error::Protocol("the answer names no streamhost-used".into()))?;
    if used == me {
        let task = accepting.ok_or_else(|| {
            Socks5Error::Protocol("the target used us, but we offered no local streamhost".into())
        })?;
        let (stream, _) = task
            .await
            .map_err(|e| Socks5Error::Protocol(format!("accept task: {e}")))??;
        return Ok(Established {
            stream,
            streamhost: used,
        });
    }
    if let Some(task) = accepting {
        task.abort();
    }
    let proxy = streamhosts
        .iter()
        .find(|s| s.jid == used)
        .ok_or_else(|| Socks5Error::Protocol(format!("the target used {used}, never offered")))?;
    let stream = connect_and_activate(conn, proxy, &dst, sid, target, limit).await?;
    Ok(Established {
        stream,
        streamhost: used,
    })
}

/// An offer received by the target.
#[derive(Debug, Clone)]
pub struct Offer {
    /// The requester.
    pub from: Jid,
    /// The IQ id to answer.
    pub id: String,
    /// The offer.
    pub query: Query,
}

impl Offer {
    /// Reads an offer from an incoming stanza: an IQ set carrying a bytestreams `<query/>` with a sid
    /// and at least one streamhost. `Ok(None)` for any other stanza.
    pub fn from_stanza(stanza: &Stanza) -> Result<Option<Offer>, ParseError> {
        let Stanza::Iq(Iq::Set {
            from: Some(from),
            id,
            payload,
            ..
        }) = stanza
        else {
            return Ok(None);
        };
        if !payload.is("query", NS_BYTESTREAMS) {
            return Ok(None);
        }
        let query = Query::from_element(payload)?;
        if query.sid.is_none() {
            return Err(ParseError::MissingAttribute {
                element: "query",
                attribute: "sid",
            });
        }
        Ok(Some(Offer {
            from: from.clone(),
            id: id.clone(),
            query,
        }))
    }

    /// The DST.ADDR of this stream: the requester's `dstaddr` if given, else computed.
    pub fn dst_addr(&self, me: &Jid) -> String {
        match &self.query.dstaddr {
            Some(d) => d.clone(),
            None => dst_addr(
                self.query.sid.as_deref().unwrap_or_default(),
                &self.from.to_string(),
                &me.to_string(),
            ),
        }
    }
}

/// Waits (up to `limit`) for an offer on `incoming`; malformed offers are answered with
/// `bad-request` and skipped.
pub async fn wait_offer<C: Connection>(
    conn: &C,
    incoming: &mut xmpp_social::Incoming,
    limit: Duration,
) -> Result<Offer, Socks5Error> {
    let run = async {
        loop {
            let stanza: Arc<Stanza> = match incoming.recv().await {
                Ok(s) => s,
                Err(xmpp_social::connection::RecvError::Lagged(_)) => continue,
                Err(e) => return Err(Socks5Error::Protocol(format!("incoming: {e}"))),
            };
            match Offer::from_stanza(&stanza) {
                Ok(Some(offer)) => return Ok(offer),
                Ok(None) => {}
                Err(e) => {
                    if let Stanza::Iq(Iq::Set {
                        from: Some(from),
                        id,
                        ..
                    }) = &*stanza
                    {
                        let _ = answer_error(
                            conn,
                            from,
                            id,
                            DefinedCondition::BadRequest,
                            &e.to_string(),
                        )
                        .await;
                    }
                }
            }
        }
    };
    tokio::time::timeout(limit, run)
        .await
        .map_err(|_| Socks5Error::Timeout(limit, "waiting for a bytestream offer"))?
}

async fn answer_error<C: Connection>(
    conn: &C,
    to: &Jid,
    id: &str,
    condition: DefinedCondition,
    text: &str,
) -> Result<(), Socks5Error> {
    let error = StanzaError::new(ErrorType::Cancel, condition, "en", text);
    conn.send_stanza(Stanza::Iq(Iq::Error {
        from: None,
        to: Some(to.clone()),
        id: id.to_owned(),
        error,
        payload: None,
    }))
    .await?;
    Ok(())
}

/// The target's side: tries the offered streamhosts in order (each within `per_host`), answers with
/// `<streamhost-used/>` for the first that works, or `item-not-found` when none does.
pub async fn accept_offer<C: Connection>(
    conn: &C,
    offer: &Offer,
    per_host: Duration,
) -> Result<Established, Socks5Error> {
    if offer.query.mode != Mode::Tcp {
        answer_error(
            conn,
            &offer.from,
            &offer.id,
            DefinedCondition::NotAcceptable,
            "only TCP",
        )
        .await?;
        return Err(Socks5Error::Protocol("UDP mode is not supported".into()));
    }
    let dst = offer.dst_addr(&conn.jid());
    let mut failures = Vec::new();
    for host in &offer.query.streamhosts {
        match net::connect(&host.host, host.port, &dst, per_host).await {
            Ok(stream) => {
                let answer = Query {
                    sid: offer.query.sid.clone(),
                    streamhost_used: Some(host.jid.clone()),
                    ..Query::default()
                };
                conn.send_stanza(Stanza::Iq(Iq::Result {
                    from: None,
                    to: Some(offer.from.clone()),
                    id: offer.id.clone(),
                    payload: Some(answer.to_element()),
                }))
                .await?;
                return Ok(Established {
                    stream,
                    streamhost: host.jid.clone(),
                });
            }
            Err(e) => failures.push(format!("{} ({}:{}): {e}", host.jid, host.host, host.port)),
        }
    }
    answer_error(
        conn,
        &offer.from,
        &offer.id,
        DefinedCondition::ItemNotFound,
        "no streamhost reachable",
    )
    .await?;
    Err(Socks5Error::NoStreamhost(failures.join("; ")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    /// The `<query/>` payloads of XEP-0065's examples, parsed and written back.
    #[test]
    fn xep_examples_round_trip() {
        let examples = [
            "<query xmlns='http://jabber.org/protocol/bytestreams'/>",
            "<query xmlns='http://jabber.org/protocol/bytestreams'>
               <streamhost host='24.24.24.1' jid='streamer.example.com' port='7625'/></query>",
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='vxf9n471bn46'>
               <streamhost jid='requester@example.com/foo' host='192.168.4.1' port='5086'/></query>",
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='vxf9n471bn46'>
               <streamhost-used jid='requester@example.com/foo'/></query>",
            "<query xmlns='http://jabber.org/protocol/bytestreams' sid='vxf9n471bn46'>
               <activate>target@example.org/bar</activate></query>",
            "<query xmlns='http://jabber.org/protocol/bytestreams'
                    dstaddr='416781edf1ae50bad01cb8509ba35b43952bc345' sid='yia72g3v49j7'>
               <streamhost host='24.24.24.1' jid='streamer.example.com' port='7625'/></query>",
        ];
        for text in examples {
            let q = Query::from_element(&el(text)).unwrap();
            let back = Query::from_element(&q.to_element()).unwrap();
            assert_eq!(q, back, "{text}");
        }
        let q = Query::from_element(&el(examples[2])).unwrap();
        assert_eq!(q.sid.as_deref(), Some("vxf9n471bn46"));
        assert_eq!(q.streamhosts[0].port, 5086);
        assert_eq!(q.streamhosts[0].host, "192.168.4.1");
        let q = Query::from_element(&el(examples[4])).unwrap();
        assert_eq!(q.activate.unwrap().to_string(), "target@example.org/bar");
    }

    #[test]
    fn bad_queries_are_errors() {
        let ns = NS_BYTESTREAMS;
        let bad = [
            format!("<query xmlns='{ns}' sid=''/>"),
            format!("<query xmlns='{ns}' sid='{}'/>", "x".repeat(300)),
            format!("<query xmlns='{ns}' mode='sctp'/>"),
            format!("<query xmlns='{ns}' dstaddr='a b'/>"),
            format!("<query xmlns='{ns}'><streamhost jid='a@b' host='h'/></query>"),
            format!("<query xmlns='{ns}'><streamhost jid='a@b' host='h' port='0'/></query>"),
            format!("<query xmlns='{ns}'><streamhost jid='a@b' host='h' port='70000'/></query>"),
            format!("<query xmlns='{ns}'><streamhost jid='@@' host='h' port='1'/></query>"),
            format!("<query xmlns='{ns}'><streamhost jid='a@b' host='' port='1'/></query>"),
            format!("<query xmlns='{ns}'><streamhost-used/></query>"),
            format!("<query xmlns='{ns}'><activate></activate></query>"),
            "<query xmlns='urn:other'/>".to_owned(),
        ];
        for text in bad {
            assert!(Query::from_element(&el(&text)).is_err(), "{text}");
        }
        let many: String = (0..=MAX_STREAMHOSTS)
            .map(|i| format!("<streamhost jid='p{i}.example' host='h' port='1'/>"))
            .collect();
        let r = Query::from_element(&el(&format!("<query xmlns='{ns}'>{many}</query>")));
        assert!(matches!(r, Err(ParseError::TooLarge { .. })));
    }
}
