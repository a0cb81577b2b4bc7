//! Pieces shared by the two `Connection` drivers ([`crate::client`] and [`crate::component`]): building
//! IQ requests, waiting for their answers, and the `disco#info` they answer with.

use std::time::Duration;

use jid::Jid;
use minidom::Element;
use tokio::sync::oneshot;
use xmpp_parsers::iq::Iq;

use crate::connection::{IqRequest, IqType};
use crate::error::{Error, Result};
use crate::xml::BuilderExt;

const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

/// A fresh IQ id with the driver's prefix.
pub(crate) fn iq_id(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// The `<iq/>` of a request.
pub(crate) fn request_iq(request: IqRequest, from: Option<Jid>, id: String) -> Iq {
    match request.kind {
        IqType::Get => Iq::Get {
            from,
            to: request.to,
            id,
            payload: request.payload,
        },
        IqType::Set => Iq::Set {
            from,
            to: request.to,
            id,
            payload: request.payload,
        },
    }
}

/// Waits for the answer delivered on `rx`; `forget` runs when nothing came in time (to drop the
/// pending entry). `result` payloads are returned, `error` answers become [`Error::Stanza`].
pub(crate) async fn await_answer(
    rx: oneshot::Receiver<Iq>,
    timeout: Duration,
    forget: impl FnOnce(),
) -> Result<Option<Element>> {
    let answer = match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(iq)) => iq,
        Ok(Err(_)) => {
            return Err(Error::Connection(
                "disconnected before the answer came".into(),
            ))
        }
        Err(_) => {
            forget();
            return Err(Error::Timeout(timeout));
        }
    };
    match answer {
        Iq::Result { payload, .. } => Ok(payload),
        Iq::Error { error, .. } => Err(error.into()),
        _ => Err(Error::Connection("unexpected IQ type in answer".into())),
    }
}

/// A `disco#info` result: one identity (category, type, name) and the features, sorted, with
/// `disco#info` and ping always announced.
pub(crate) fn disco_info(
    identity: (&str, &str, &str),
    features: impl IntoIterator<Item = String>,
) -> Element {
    let mut all: Vec<String> = vec![NS_DISCO_INFO.into(), "urn:xmpp:ping".into()];
    all.extend(features);
    all.sort();
    all.dedup();
    let (category, kind, name) = identity;
    let mut b = Element::builder("query", NS_DISCO_INFO).append(
        Element::builder("identity", NS_DISCO_INFO)
            .a("category", category)
            .a("type", kind)
            .a("name", name)
            .build(),
    );
    for f in all {
        b = b.append(
            Element::builder("feature", NS_DISCO_INFO)
                .a("var", f)
                .build(),
        );
    }
    b.build()
}
