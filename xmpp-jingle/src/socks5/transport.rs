//! XEP-0260 Jingle SOCKS5 Bytestreams Transport Method 1.0.3: the `<transport/>` element.

use jid::Jid;
use minidom::Element;
use xmpp_social::xml::BuilderExt;
use xmpp_social::ParseError;

use super::bytestreams::{attr, check_sid, parse_host, parse_jid, parse_port, Mode, StreamHost};

/// The XEP-0260 namespace.
pub const NS_S5B: &str = "urn:xmpp:jingle:transports:s5b:1";

/// The most candidates a transport element may carry.
pub const MAX_CANDIDATES: usize = 32;
/// The longest candidate id accepted.
pub const MAX_CID_LEN: usize = 256;
/// The SOCKS port used when a candidate has no `port`.
pub const DEFAULT_PORT: u16 = 1080;

/// The kind of a candidate, with its XEP-0260 type preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CandidateType {
    /// Our own interface (preference 126).
    #[default]
    Direct,
    /// A NAT mapping (NAT-PMP, UPnP-IGD; preference 120).
    Assisted,
    /// A tunnel such as Teredo (preference 110).
    Tunnel,
    /// A SOCKS5 relay (preference 10).
    Proxy,
}

impl CandidateType {
    /// The type preference of XEP-0260 §2.2.
    pub fn preference(self) -> u32 {
        match self {
            CandidateType::Direct => 126,
            CandidateType::Assisted => 120,
            CandidateType::Tunnel => 110,
            CandidateType::Proxy => 10,
        }
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateType::Direct => "direct",
            CandidateType::Assisted => "assisted",
            CandidateType::Tunnel => "tunnel",
            CandidateType::Proxy => "proxy",
        }
    }

    fn parse(value: &str) -> Result<CandidateType, ParseError> {
        Ok(match value {
            "direct" => CandidateType::Direct,
            "assisted" => CandidateType::Assisted,
            "tunnel" => CandidateType::Tunnel,
            "proxy" => CandidateType::Proxy,
            other => {
                return Err(ParseError::InvalidValue {
                    element: "candidate",
                    reason: format!("type {other:?}"),
                })
            }
        })
    }
}

/// `priority = 2^16 * type preference + local preference` (XEP-0260 §2.2).
pub fn priority(kind: CandidateType, local_preference: u16) -> u32 {
    (kind.preference() << 16) + u32::from(local_preference)
}

/// A `<candidate/>`: a streamhost offered by one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Candidate id, unique within the session.
    pub cid: String,
    /// IP address or DNS name.
    pub host: String,
    /// The streamhost's JID (the offerer's full JID, or the proxy's).
    pub jid: Jid,
    /// TCP port ([`DEFAULT_PORT`] when absent).
    pub port: Option<u16>,
    /// See [`priority`].
    pub priority: u32,
    /// The kind.
    pub kind: CandidateType,
}

impl Candidate {
    /// A candidate of ours: `jid` (our full JID) listening at `host:port`, of `kind` (not proxy).
    pub fn local(
        cid: impl Into<String>,
        jid: Jid,
        host: impl Into<String>,
        port: u16,
        kind: CandidateType,
        local_preference: u16,
    ) -> Candidate {
        Candidate {
            cid: cid.into(),
            host: host.into(),
            jid,
            port: Some(port),
            priority: priority(kind, local_preference),
            kind,
        }
    }

    /// A proxy candidate for a streamhost found with [`super::bytestreams::discover_proxies`].
    pub fn proxy(cid: impl Into<String>, proxy: &StreamHost, local_preference: u16) -> Candidate {
        Candidate {
            cid: cid.into(),
            host: proxy.host.clone(),
            jid: proxy.jid.clone(),
            port: Some(proxy.port),
            priority: priority(CandidateType::Proxy, local_preference),
            kind: CandidateType::Proxy,
        }
    }

    /// The candidate as an XEP-0065 streamhost (for [`super::bytestreams::connect_and_activate`]).
    pub fn streamhost(&self) -> StreamHost {
        StreamHost {
            jid: self.jid.clone(),
            host: self.host.clone(),
            port: self.port_or_default(),
        }
    }

    /// The port to connect to.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(DEFAULT_PORT)
    }

    fn from_element(el: &Element) -> Result<Candidate, ParseError> {
        let cid = attr(el, "candidate", "cid")?;
        check_cid(cid, "candidate")?;
        let priority = attr(el, "candidate", "priority")?;
        let priority = match priority.parse::<u32>() {
            Ok(p) if p > 0 => p,
            _ => {
                return Err(ParseError::InvalidValue {
                    element: "candidate",
                    reason: format!("priority {priority:?}"),
                })
            }
        };
        Ok(Candidate {
            cid: cid.to_owned(),
            host: parse_host(attr(el, "candidate", "host")?, "candidate")?,
            jid: parse_jid(attr(el, "candidate", "jid")?, "candidate")?,
            port: el
                .attr("port")
                .map(|p| parse_port(p, "candidate"))
                .transpose()?,
            priority,
            kind: el
                .attr("type")
                .map(CandidateType::parse)
                .transpose()?
                .unwrap_or_default(),
        })
    }

    fn to_element(&self) -> Element {
        let mut b = Element::builder("candidate", NS_S5B)
            .a("cid", self.cid.as_str())
            .a("host", self.host.as_str())
            .a("jid", self.jid.to_string());
        if let Some(p) = self.port {
            b = b.a("port", p.to_string());
        }
        b.a("priority", self.priority.to_string())
            .a("type", self.kind.as_str())
            .build()
    }
}

fn check_cid(cid: &str, element: &'static str) -> Result<(), ParseError> {
    if cid.is_empty() || cid.len() > MAX_CID_LEN {
        return Err(ParseError::InvalidValue {
            element,
            reason: "cid is empty or too long".into(),
        });
    }
    Ok(())
}

/// What a `transport-info` carries instead of candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportInfo {
    /// `<candidate-used cid/>`: the sender connected to this candidate of ours.
    CandidateUsed(String),
    /// `<candidate-error/>`: the sender could not connect to any of our candidates.
    CandidateError,
    /// `<activated cid/>`: the proxy candidate was activated.
    Activated(String),
    /// `<proxy-error/>`: the sender cannot connect to the nominated proxy.
    ProxyError,
}

/// A `<transport xmlns='urn:xmpp:jingle:transports:s5b:1'/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// The bytestream's stream id.
    pub sid: String,
    /// The sender's DST.ADDR for its proxy candidates.
    pub dstaddr: Option<String>,
    /// `tcp` (default) or `udp`; only the initiator sends it.
    pub mode: Option<Mode>,
    /// Offered candidates.
    pub candidates: Vec<Candidate>,
    /// A transport-info notification, if any.
    pub info: Option<TransportInfo>,
}

impl Transport {
    /// A transport element with candidates.
    pub fn with_candidates(sid: impl Into<String>, candidates: Vec<Candidate>) -> Transport {
        Transport {
            sid: sid.into(),
            dstaddr: None,
            mode: None,
            candidates,
            info: None,
        }
    }

    /// A transport-info payload.
    pub fn with_info(sid: impl Into<String>, info: TransportInfo) -> Transport {
        Transport {
            sid: sid.into(),
            dstaddr: None,
            mode: None,
            candidates: Vec::new(),
            info: Some(info),
        }
    }

    /// Parses a `<transport/>`. Several notifications, or candidates mixed with one, are refused.
    pub fn from_element(el: &Element) -> Result<Transport, ParseError> {
        if !el.is("transport", NS_S5B) {
            return Err(ParseError::WrongElement {
                expected: format!("{{{NS_S5B}}}transport"),
                found: format!("{{{}}}{}", el.ns(), el.name()),
            });
        }
        let sid = attr(el, "transport", "sid")?;
        check_sid(sid, "transport")?;
        let dstaddr = el.attr("dstaddr").map(str::to_owned);
        if let Some(d) = &dstaddr {
            if d.is_empty() || d.len() > 255 || !d.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ParseError::InvalidValue {
                    element: "transport",
                    reason: "dstaddr is not a SOCKS5 domain name".into(),
                });
            }
        }
        let mut t = Transport {
            sid: sid.to_owned(),
            dstaddr,
            mode: el
                .attr("mode")
                .map(|m| Mode::parse(m, "transport"))
                .transpose()?,
            candidates: Vec::new(),
            info: None,
        };
        let set_info = |t: &mut Transport, info| {
            if t.info.is_some() {
                return Err(ParseError::InvalidValue {
                    element: "transport",
                    reason: "more than one notification".into(),
                });
            }
            t.info = Some(info);
            Ok(())
        };
        for child in el.children().filter(|c| c.ns() == NS_S5B) {
            match child.name() {
                "candidate" => {
                    if t.candidates.len() >= MAX_CANDIDATES {
                        return Err(ParseError::TooLarge {
                            element: "transport",
                            size: t.candidates.len() + 1,
                            limit: MAX_CANDIDATES,
                        });
                    }
                    t.candidates.push(Candidate::from_element(child)?);
                }
                "candidate-used" => {
                    let cid = attr(child, "candidate-used", "cid")?;
                    check_cid(cid, "candidate-used")?;
                    set_info(&mut t, TransportInfo::CandidateUsed(cid.to_owned()))?;
                }
                "activated" => {
                    let cid = attr(child, "activated", "cid")?;
                    check_cid(cid, "activated")?;
                    set_info(&mut t, TransportInfo::Activated(cid.to_owned()))?;
                }
                "candidate-error" => set_info(&mut t, TransportInfo::CandidateError)?,
                "proxy-error" => set_info(&mut t, TransportInfo::ProxyError)?,
                _ => {}
            }
        }
        if t.info.is_some() && !t.candidates.is_empty() {
            return Err(ParseError::InvalidValue {
                element: "transport",
                reason: "candidates mixed with a notification".into(),
            });
        }
        Ok(t)
    }

    /// Serialises the element.
    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("transport", NS_S5B).a("sid", self.sid.as_str());
        if let Some(d) = &self.dstaddr {
            b = b.a("dstaddr", d.as_str());
        }
        if let Some(m) = self.mode {
            b = b.a("mode", m.as_str());
        }
        for c in &self.candidates {
            b = b.append(c.to_element());
        }
        match &self.info {
            Some(TransportInfo::CandidateUsed(cid)) => {
                b = b.append(
                    Element::builder("candidate-used", NS_S5B)
                        .a("cid", cid.as_str())
                        .build(),
                )
            }
            Some(TransportInfo::Activated(cid)) => {
                b = b.append(
                    Element::builder("activated", NS_S5B)
                        .a("cid", cid.as_str())
                        .build(),
                )
            }
            Some(TransportInfo::CandidateError) => {
                b = b.append(Element::builder("candidate-error", NS_S5B).build())
            }
            Some(TransportInfo::ProxyError) => {
                b = b.append(Element::builder("proxy-error", NS_S5B).build())
            }
            None => {}
        }
        b.build()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    const INITIATE: &str = "<transport xmlns='urn:xmpp:jingle:transports:s5b:1'
                 dstaddr='972b7bf47291ca609517f67f86b5081086052dad' mode='tcp' sid='vj3hs98y'>
        <candidate cid='hft54dqy' host='192.168.4.1' jid='romeo@montague.lit/orchard'
                   port='5086' priority='8257636' type='direct'/>
        <candidate cid='hutr46fe' host='24.24.24.1' jid='romeo@montague.lit/orchard'
                   port='5087' priority='8258636' type='direct'/>
        <candidate cid='xmdh4b7i' host='123.456.7.8' jid='streamer.shakespeare.lit'
                   port='7625' priority='7878787' type='proxy'/>
      </transport>";

    const ACCEPT: &str = "<transport xmlns='urn:xmpp:jingle:transports:s5b:1'
                 dstaddr='1a12fb7bc625e55f3ed5b29a53dbe0e4aa7d80ba' sid='vj3hs98y'>
        <candidate cid='ht567dq' host='192.169.1.10' jid='juliet@capulet.lit/balcony'
                   port='6539' priority='8257636' type='direct'/>
        <candidate cid='grt654q2' host='2001:638:708:30c9:219:d1ff:fea4:a17d'
                   jid='juliet@capulet.lit/balcony' port='6539' priority='8257606' type='direct'/>
        <candidate cid='hr65dqyd' host='134.102.201.180' jid='juliet@capulet.lit/balcony'
                   port='16453' priority='7929856' type='assisted'/>
        <candidate cid='pzv14s74' host='234.567.8.9' jid='proxy.marlowe.lit'
                   port='7676' priority='7788877' type='proxy'/>
      </transport>";

    #[test]
    fn xep_examples_round_trip() {
        let infos = [
            "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='vj3hs98y'>
               <candidate-used cid='hr65dqyd'/></transport>",
            "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='vj3hs98y'>
               <candidate-error/></transport>",
            "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='vj3hs98y'>
               <activated cid='xmdh4b7i'/></transport>",
            "<transport xmlns='urn:xmpp:jingle:transports:s5b:1' sid='vj3hs98y'>
               <proxy-error/></transport>",
        ];
        for text in [INITIATE, ACCEPT].iter().chain(infos.iter()) {
            let t = Transport::from_element(&el(text)).unwrap();
            assert_eq!(Transport::from_element(&t.to_element()).unwrap(), t);
        }
        let t = Transport::from_element(&el(INITIATE)).unwrap();
        assert_eq!(t.mode, Some(Mode::Tcp));
        assert_eq!(t.candidates.len(), 3);
        assert_eq!(t.candidates[2].kind, CandidateType::Proxy);
        assert_eq!(t.candidates[2].jid.to_string(), "streamer.shakespeare.lit");
        let t = Transport::from_element(&el(ACCEPT)).unwrap();
        assert_eq!(t.candidates[1].host, "2001:638:708:30c9:219:d1ff:fea4:a17d");
        assert_eq!(t.candidates[2].kind, CandidateType::Assisted);
        let t = Transport::from_element(&el(infos[0])).unwrap();
        assert_eq!(
            t.info,
            Some(TransportInfo::CandidateUsed("hr65dqyd".into()))
        );
        // The example's dstaddr values are the SHA-1 the XEP describes.
        assert_eq!(
            super::super::dst_addr(
                "vj3hs98y",
                "juliet@capulet.lit/balcony",
                "romeo@montague.lit/orchard"
            ),
            "1a12fb7bc625e55f3ed5b29a53dbe0e4aa7d80ba"
        );
    }

    #[test]
    fn priorities_follow_the_formula() {
        assert_eq!(priority(CandidateType::Direct, 0), 126 << 16);
        assert_eq!(
            priority(CandidateType::Assisted, 65535),
            (120 << 16) + 65535
        );
        assert_eq!(priority(CandidateType::Tunnel, 1), (110 << 16) + 1);
        assert_eq!(priority(CandidateType::Proxy, 7), (10 << 16) + 7);
        // Any direct candidate beats any proxy, whatever the local preference.
        assert!(priority(CandidateType::Direct, 0) > priority(CandidateType::Proxy, 65535));
    }

    #[test]
    fn bad_transports_are_errors() {
        let ns = NS_S5B;
        let c = "cid='a' host='h' jid='a@b/c' port='1'";
        let bad = [
            format!("<transport xmlns='{ns}'/>"),
            format!("<transport xmlns='{ns}' sid=''/>"),
            format!("<transport xmlns='{ns}' sid='s' mode='x'/>"),
            format!("<transport xmlns='{ns}' sid='s'><candidate {c}/></transport>"),
            format!("<transport xmlns='{ns}' sid='s'><candidate {c} priority='0'/></transport>"),
            format!("<transport xmlns='{ns}' sid='s'><candidate {c} priority='-1'/></transport>"),
            format!(
                "<transport xmlns='{ns}' sid='s'><candidate {c} priority='1' type='x'/></transport>"
            ),
            format!("<transport xmlns='{ns}' sid='s'><candidate-used/></transport>"),
            format!("<transport xmlns='{ns}' sid='s'><candidate-error/><proxy-error/></transport>"),
            format!(
                "<transport xmlns='{ns}' sid='s'><candidate {c} priority='1'/><candidate-error/></transport>"
            ),
        ];
        for text in bad {
            assert!(Transport::from_element(&el(&text)).is_err(), "{text}");
        }
        // No port: the SOCKS default.
        let t = Transport::from_element(&el(&format!(
            "<transport xmlns='{ns}' sid='s'><candidate cid='a' host='h' jid='a@b/c' priority='5'/></transport>"
        )))
        .unwrap();
        assert_eq!(t.candidates[0].port_or_default(), DEFAULT_PORT);
        assert_eq!(t.candidates[0].kind, CandidateType::Direct);
    }
}
