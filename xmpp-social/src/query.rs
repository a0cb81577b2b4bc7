//! Query extensions for pubsub and MAM, each used only where the service announces it:
//!
//! - XEP-0413 Order-By 0.2.1 (`urn:xmpp:order-by:1`): items ordered by creation or modification, cascading,
//!   with RSM.
//! - XEP-0431 Full Text Search in MAM 0.2.0 (`urn:xmpp:fulltext:0`).
//! - XEP-0462 PubSub Type Filtering 0.1.1 (`urn:xmpp:pubsub-filter:0`) on `disco#items`.
//! - XEP-0460 Pubsub Caching Hints 0.1.0 (`urn:xmpp:pubsub-caching:0`) in node metadata.
//!
//! A service that does not announce a feature gets [`Error::Unsupported`] before anything is sent, instead
//! of a request it would silently answer wrongly (a service ignoring `<order/>` returns its own order).

use std::future::Future;

use jid::Jid;
use minidom::Element;

use crate::connection::{Connection, ConnectionExt, IqRequest};
use crate::error::{Error, ParseError, Result};
use crate::forms::{DataForm, Field, FormType, NS_DATA};
use crate::pubsub::parse::ItemsPage;
use crate::pubsub::request::{self, ItemsQuery};
use crate::pubsub::{parse, PubSubExt};
use crate::rsm::{RsmRequest, RsmResult, NS_RSM};
use crate::xml::{expect_element, BuilderExt};

/// `urn:xmpp:order-by:1`.
pub const NS_ORDER_BY: &str = "urn:xmpp:order-by:1";
/// `urn:xmpp:fulltext:0`.
pub const NS_FULLTEXT: &str = "urn:xmpp:fulltext:0";
/// `urn:xmpp:pubsub-filter:0`.
pub const NS_PUBSUB_FILTER: &str = "urn:xmpp:pubsub-filter:0";
/// `urn:xmpp:pubsub-caching:0`.
pub const NS_PUBSUB_CACHING: &str = "urn:xmpp:pubsub-caching:0";
/// `urn:xmpp:mam:2`.
pub const NS_MAM: &str = "urn:xmpp:mam:2";
/// `urn:xmpp:forward:0`.
pub const NS_FORWARD: &str = "urn:xmpp:forward:0";
/// `urn:xmpp:delay`.
pub const NS_DELAY: &str = "urn:xmpp:delay";
/// `http://jabber.org/protocol/disco#items`.
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// Most order levels accepted in one request.
pub const MAX_ORDER_LEVELS: usize = 16;
/// Most MAM results collected for one query page.
pub const MAX_MAM_RESULTS: usize = 10_000;

// ---------------------------------------------------------------------------------------------------
// XEP-0413

/// What to order items by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderField {
    /// Date of creation (an overwrite keeps the original date).
    Creation,
    /// Date of last modification.
    Modification,
    /// Another order field, as the extensible XEP allows.
    Other(String),
}

impl OrderField {
    fn as_str(&self) -> &str {
        match self {
            OrderField::Creation => "creation",
            OrderField::Modification => "modification",
            OrderField::Other(s) => s,
        }
    }
}

/// One `<order/>` level.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrderBy {
    /// The field.
    pub by: OrderField,
    /// Descending instead of the default ascending order.
    pub desc: bool,
}

impl OrderBy {
    /// Ascending order on `by`.
    pub fn asc(by: OrderField) -> Self {
        OrderBy { by, desc: false }
    }

    /// Descending order on `by`.
    pub fn desc(by: OrderField) -> Self {
        OrderBy { by, desc: true }
    }

    /// `<order xmlns='urn:xmpp:order-by:1' by=... [desc='true']/>`.
    pub fn to_element(&self) -> Element {
        let b = Element::builder("order", NS_ORDER_BY).a("by", self.by.as_str());
        if self.desc { b.a("desc", "true") } else { b }.build()
    }

    /// Parses an `<order/>`.
    pub fn parse(el: &Element) -> std::result::Result<OrderBy, ParseError> {
        expect_element(el, NS_ORDER_BY, "order")?;
        let by = match el.attr("by") {
            Some("creation") => OrderField::Creation,
            Some("modification") => OrderField::Modification,
            Some("") | None => {
                return Err(ParseError::MissingAttribute {
                    element: "order",
                    attribute: "by",
                })
            }
            Some(other) => OrderField::Other(other.to_owned()),
        };
        let desc = match el.attr("desc") {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(v) => {
                return Err(ParseError::InvalidValue {
                    element: "order@desc",
                    reason: format!("not a boolean: {v:?}"),
                })
            }
        };
        Ok(OrderBy { by, desc })
    }
}

/// Parses every `<order/>` child of `parent`, in cascading order.
pub fn parse_orders(parent: &Element) -> std::result::Result<Vec<OrderBy>, ParseError> {
    let mut out = Vec::new();
    for c in parent.children().filter(|c| c.is("order", NS_ORDER_BY)) {
        if out.len() >= MAX_ORDER_LEVELS {
            return Err(ParseError::TooLarge {
                element: "order",
                size: out.len() + 1,
                limit: MAX_ORDER_LEVELS,
            });
        }
        out.push(OrderBy::parse(c)?);
    }
    Ok(out)
}

/// A `<pubsub/>` items request with cascading `<order/>`s (and RSM when given), per XEP-0413 §3.
pub fn ordered_items_request(node: &str, query: &ItemsQuery, order: &[OrderBy]) -> Element {
    let mut el = request::get_items(
        node,
        &ItemsQuery {
            rsm: None,
            ..query.clone()
        },
    );
    for o in order {
        el.append_child(o.to_element());
    }
    if let Some(rsm) = &query.rsm {
        el.append_child(rsm.to_element());
    }
    el
}

// ---------------------------------------------------------------------------------------------------
// XEP-0462

/// A XEP-0462 filter on `pubsub#type`. An empty string stands for nodes without a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeFilter {
    /// Only nodes of these types.
    Included(Vec<String>),
    /// Every node but those of these types.
    Excluded(Vec<String>),
}

impl TypeFilter {
    /// `<filter xmlns='urn:xmpp:pubsub-filter:0'>` with its form.
    pub fn to_element(&self) -> Element {
        let (var, types) = match self {
            TypeFilter::Included(t) => ("included-types", t),
            TypeFilter::Excluded(t) => ("excluded-types", t),
        };
        let mut form = DataForm::with_form_type(FormType::Submit, NS_PUBSUB_FILTER);
        form.fields
            .push(Field::multi(var, types.clone()).with_kind("list-multi"));
        Element::builder("filter", NS_PUBSUB_FILTER)
            .append(form.to_element())
            .build()
    }

    /// Parses a `<filter/>`; both fields at once is the XEP's `bad-request` case, reported as invalid.
    pub fn parse(el: &Element) -> std::result::Result<TypeFilter, ParseError> {
        expect_element(el, NS_PUBSUB_FILTER, "filter")?;
        let form = el
            .get_child("x", NS_DATA)
            .ok_or(ParseError::MissingChild {
                element: "filter",
                child: "x",
            })
            .and_then(DataForm::parse)?;
        if form.form_type() != Some(NS_PUBSUB_FILTER) {
            return Err(ParseError::InvalidValue {
                element: "filter",
                reason: format!("FORM_TYPE {:?}", form.form_type()),
            });
        }
        match (form.field("included-types"), form.field("excluded-types")) {
            (Some(i), None) => Ok(TypeFilter::Included(i.values.clone())),
            (None, Some(e)) => Ok(TypeFilter::Excluded(e.values.clone())),
            (Some(_), Some(_)) => Err(ParseError::InvalidValue {
                element: "filter",
                reason: "both included-types and excluded-types".into(),
            }),
            (None, None) => Err(ParseError::MissingChild {
                element: "filter",
                child: "field",
            }),
        }
    }
}

/// A `disco#items` query carrying a type filter (XEP-0462 §2).
pub fn filtered_items_request(filter: &TypeFilter) -> Element {
    Element::builder("query", NS_DISCO_ITEMS)
        .append(filter.to_element())
        .build()
}

// ---------------------------------------------------------------------------------------------------
// XEP-0460

/// How a node stores its items (`{urn:xmpp:pubsub-caching:0}persistence`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Persistence {
    /// Items are kept in permanent storage.
    Persistent,
    /// Items are kept in temporary storage and may disappear.
    SemiPersistent,
    /// Items are not stored.
    Transient,
    /// Only the last item is kept.
    TransientWithLastItem,
    /// A value this version does not know.
    Other(String),
}

/// A `pubsub#max_items` / `pubsub#item_expire` value (`integer-or-max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IntegerOrMax {
    /// The service's own limit (or none).
    Max,
    /// A number.
    Value(u64),
}

/// XEP-0460 caching hints of a node, read from its `disco#info` metadata form. `None` = not announced.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CachingHints {
    /// `persistence`.
    pub persistence: Option<Persistence>,
    /// `pubsub#max_items`.
    pub max_items: Option<IntegerOrMax>,
    /// `pubsub#item_expire`.
    pub item_expire: Option<IntegerOrMax>,
    /// `consistent-items`: items with one id are the same for every requester.
    pub consistent_items: Option<bool>,
    /// `consistent-set`: every allowed requester sees the same item ids.
    pub consistent_set: Option<bool>,
    /// `stable-items`: items are always appended at the end.
    pub stable_items: Option<bool>,
    /// `always-notify`: notifications (retractions included) are always sent. One sentence of the XEP
    /// spells it `alway-notify`; both spellings are read.
    pub always_notify: Option<bool>,
    /// `allowed-for-suggestions`.
    pub allowed_for_suggestions: Option<bool>,
    /// `purge-keep-last-item`.
    pub purge_keep_last_item: Option<bool>,
}

fn caching_var(name: &str) -> String {
    format!("{{{NS_PUBSUB_CACHING}}}{name}")
}

fn parse_bool(element: &'static str, v: &str) -> std::result::Result<bool, ParseError> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ParseError::InvalidValue {
            element,
            reason: format!("not a boolean: {v:?}"),
        }),
    }
}

fn parse_int_or_max(
    element: &'static str,
    v: &str,
) -> std::result::Result<IntegerOrMax, ParseError> {
    if v == "max" {
        return Ok(IntegerOrMax::Max);
    }
    v.trim()
        .parse()
        .map(IntegerOrMax::Value)
        .map_err(|_| ParseError::InvalidValue {
            element,
            reason: format!("not an integer or 'max': {v:?}"),
        })
}

impl CachingHints {
    /// Reads the hints from a node metadata form. Fields that are absent stay `None`; malformed values are
    /// errors.
    pub fn from_form(form: &DataForm) -> std::result::Result<CachingHints, ParseError> {
        let b =
            |name: &str, element: &'static str| -> std::result::Result<Option<bool>, ParseError> {
                form.value(&caching_var(name))
                    .map(|v| parse_bool(element, v))
                    .transpose()
            };
        Ok(CachingHints {
            persistence: form.value(&caching_var("persistence")).map(|v| match v {
                "persistent" => Persistence::Persistent,
                "semi-persistent" => Persistence::SemiPersistent,
                "transient" => Persistence::Transient,
                "transient-with-last-item" => Persistence::TransientWithLastItem,
                other => Persistence::Other(other.to_owned()),
            }),
            max_items: form
                .value("pubsub#max_items")
                .map(|v| parse_int_or_max("pubsub#max_items", v))
                .transpose()?,
            item_expire: form
                .value("pubsub#item_expire")
                .map(|v| parse_int_or_max("pubsub#item_expire", v))
                .transpose()?,
            consistent_items: b("consistent-items", "consistent-items")?,
            consistent_set: b("consistent-set", "consistent-set")?,
            stable_items: b("stable-items", "stable-items")?,
            always_notify: match b("always-notify", "always-notify")? {
                Some(v) => Some(v),
                None => b("alway-notify", "alway-notify")?,
            },
            allowed_for_suggestions: b("allowed-for-suggestions", "allowed-for-suggestions")?,
            purge_keep_last_item: b("purge-keep-last-item", "purge-keep-last-item")?,
        })
    }

    /// Reads the hints from a `disco#info` result: the first extension form that has any.
    pub fn from_disco_info(query: &Element) -> std::result::Result<CachingHints, ParseError> {
        for x in query.children().filter(|c| c.is("x", NS_DATA)) {
            let form = DataForm::parse(x)?;
            let hints = CachingHints::from_form(&form)?;
            if hints != CachingHints::default() {
                return Ok(hints);
            }
        }
        Ok(CachingHints::default())
    }
}

// ---------------------------------------------------------------------------------------------------
// XEP-0313 queries with XEP-0431 full text

/// A MAM query (XEP-0313) with the XEP-0431 full-text field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MamQuery {
    /// `queryid`, to match results; generated when empty.
    pub query_id: String,
    /// A pubsub node, when the archive is a node's.
    pub node: Option<String>,
    /// `with`.
    pub with: Option<Jid>,
    /// `start` (XEP-0082 date-time).
    pub start: Option<String>,
    /// `end` (XEP-0082 date-time).
    pub end: Option<String>,
    /// `{urn:xmpp:fulltext:0}fulltext`: the words to search.
    pub fulltext: Option<String>,
    /// Paging.
    pub rsm: Option<RsmRequest>,
    /// Cascading order (XEP-0413 §"MAM Pubsub Query with Ordering").
    pub order: Vec<OrderBy>,
}

impl MamQuery {
    /// `<query xmlns='urn:xmpp:mam:2'/>` with its form.
    pub fn to_element(&self) -> Element {
        let mut form = DataForm::with_form_type(FormType::Submit, NS_MAM);
        if let Some(w) = &self.with {
            form.fields.push(Field::new("with", w.as_str()));
        }
        if let Some(s) = &self.start {
            form.fields.push(Field::new("start", s.as_str()));
        }
        if let Some(e) = &self.end {
            form.fields.push(Field::new("end", e.as_str()));
        }
        if let Some(t) = &self.fulltext {
            form.fields
                .push(Field::new(format!("{{{NS_FULLTEXT}}}fulltext"), t.as_str()));
        }
        let mut b = Element::builder("query", NS_MAM)
            .a("queryid", self.query_id.clone())
            .a_opt("node", self.node.clone())
            .append(form.to_element());
        for o in &self.order {
            b = b.append(o.to_element());
        }
        if let Some(r) = &self.rsm {
            b = b.append(r.to_element());
        }
        b.build()
    }
}

/// One archived stanza.
#[derive(Debug, Clone, PartialEq)]
pub struct MamResult {
    /// The archive id.
    pub id: String,
    /// `<delay stamp/>` of the forwarded stanza.
    pub stamp: Option<String>,
    /// The archived stanza (a `<message/>`, or a pubsub item for node archives).
    pub stanza: Element,
}

/// One page of MAM results.
#[derive(Debug, Clone, PartialEq)]
pub struct MamPage {
    /// The results, in archive order.
    pub results: Vec<MamResult>,
    /// `<fin complete='true'/>`.
    pub complete: bool,
    /// The `<set/>` of `<fin/>`.
    pub rsm: Option<RsmResult>,
}

/// Parses a `<result xmlns='urn:xmpp:mam:2'/>` for `query_id`; `Ok(None)` if it is for another query.
pub fn parse_mam_result(
    el: &Element,
    query_id: &str,
) -> std::result::Result<Option<MamResult>, ParseError> {
    expect_element(el, NS_MAM, "result")?;
    if el.attr("queryid") != Some(query_id) {
        return Ok(None);
    }
    let id = el
        .attr("id")
        .ok_or(ParseError::MissingAttribute {
            element: "result",
            attribute: "id",
        })?
        .to_owned();
    let fwd = el
        .get_child("forwarded", NS_FORWARD)
        .ok_or(ParseError::MissingChild {
            element: "result",
            child: "forwarded",
        })?;
    let stamp = fwd
        .get_child("delay", NS_DELAY)
        .and_then(|d| d.attr("stamp"))
        .map(str::to_owned);
    let stanza = fwd
        .children()
        .find(|c| !c.is("delay", NS_DELAY))
        .cloned()
        .ok_or(ParseError::MissingChild {
            element: "forwarded",
            child: "message",
        })?;
    Ok(Some(MamResult { id, stamp, stanza }))
}

/// Parses the `<fin/>` of a MAM IQ result: (complete, rsm).
pub fn parse_mam_fin(el: &Element) -> std::result::Result<(bool, Option<RsmResult>), ParseError> {
    expect_element(el, NS_MAM, "fin")?;
    let complete = match el.attr("complete") {
        Some(v) => parse_bool("fin@complete", v)?,
        None => false,
    };
    let rsm = el
        .get_child("set", NS_RSM)
        .map(RsmResult::parse)
        .transpose()?;
    Ok((complete, rsm))
}

// ---------------------------------------------------------------------------------------------------
// Operations

async fn require<C: Connection + ?Sized>(
    c: &C,
    target: Option<&Jid>,
    feature: &str,
    what: &str,
) -> Result<()> {
    let info = c.disco_info(target, None).await?;
    if info.has(feature) {
        Ok(())
    } else {
        let who = target
            .map(|t| t.to_string())
            .unwrap_or_else(|| c.jid().to_bare().to_string());
        Err(Error::Unsupported(format!(
            "{who} does not announce {feature} ({what})"
        )))
    }
}

/// The query extensions on any [`Connection`]. Each checks the service's `disco#info` first and returns
/// [`Error::Unsupported`] when the feature is not announced.
pub trait QueryExt: Connection {
    /// Items ordered by XEP-0413 (cascading levels), with `query`'s `max_items` or RSM.
    fn get_items_ordered(
        &self,
        service: Option<&Jid>,
        node: &str,
        query: &ItemsQuery,
        order: &[OrderBy],
    ) -> impl Future<Output = Result<ItemsPage>> + Send {
        let service = service.cloned();
        let payload = ordered_items_request(node, query, order);
        async move {
            require(self, service.as_ref(), NS_ORDER_BY, "XEP-0413 Order-By").await?;
            self.iq_parsed(
                IqRequest::get(service, payload),
                "pubsub",
                parse::parse_items_result,
            )
            .await
        }
    }

    /// Nodes of a service filtered by `pubsub#type` (XEP-0462): `(jid, node)` pairs.
    fn disco_items_by_type(
        &self,
        service: &Jid,
        filter: &TypeFilter,
    ) -> impl Future<Output = Result<Vec<(Jid, Option<String>)>>> + Send {
        let service = service.clone();
        let payload = filtered_items_request(filter);
        async move {
            require(
                self,
                Some(&service),
                NS_PUBSUB_FILTER,
                "XEP-0462 type filtering",
            )
            .await?;
            let r = self
                .send_iq(IqRequest::get(Some(service), payload))
                .await?
                .ok_or(ParseError::MissingChild {
                    element: "iq",
                    child: "query",
                })?;
            expect_element(&r, NS_DISCO_ITEMS, "query")?;
            let mut out = Vec::new();
            for c in r.children().filter(|c| c.is("item", NS_DISCO_ITEMS)) {
                let j = c.attr("jid").ok_or(ParseError::MissingAttribute {
                    element: "item",
                    attribute: "jid",
                })?;
                let j = Jid::new(j).map_err(|e| ParseError::InvalidValue {
                    element: "item@jid",
                    reason: e.to_string(),
                })?;
                out.push((j, c.attr("node").map(str::to_owned)));
            }
            Ok(out)
        }
    }

    /// A MAM query (XEP-0313) on `archive` (`None`: the account's own archive). With
    /// `query.fulltext`, requires XEP-0431; with `query.order`, requires XEP-0413.
    fn mam_query(
        &self,
        archive: Option<&Jid>,
        query: &MamQuery,
    ) -> impl Future<Output = Result<MamPage>> + Send {
        let archive = archive.cloned();
        let mut query = query.clone();
        if query.query_id.is_empty() {
            query.query_id = format!("q{:016x}", rand::random::<u64>());
        }
        async move {
            require(self, archive.as_ref(), NS_MAM, "XEP-0313 MAM").await?;
            if query.fulltext.is_some() {
                require(
                    self,
                    archive.as_ref(),
                    NS_FULLTEXT,
                    "XEP-0431 full text search",
                )
                .await?;
            }
            if !query.order.is_empty() {
                require(self, archive.as_ref(), NS_ORDER_BY, "XEP-0413 Order-By").await?;
            }
            // Results arrive as messages before the IQ answer: listen first.
            let mut incoming = self.incoming();
            let fin = self
                .send_iq(IqRequest::set(archive.clone(), query.to_element()))
                .await?;
            let mut results = Vec::new();
            while let Some(next) = incoming.try_recv() {
                let Ok(stanza) = next else { continue };
                let xmpp_parsers::stanza::Stanza::Message(m) = stanza.as_ref() else {
                    continue;
                };
                if let Some(r) = m.payloads.iter().find(|p| p.is("result", NS_MAM)) {
                    if let Some(res) = parse_mam_result(r, &query.query_id)? {
                        if results.len() >= MAX_MAM_RESULTS {
                            return Err(ParseError::TooLarge {
                                element: "mam results",
                                size: results.len() + 1,
                                limit: MAX_MAM_RESULTS,
                            }
                            .into());
                        }
                        results.push(res);
                    }
                }
            }
            let (complete, rsm) = match fin {
                Some(f) => parse_mam_fin(&f)?,
                None => (false, None),
            };
            Ok(MamPage {
                results,
                complete,
                rsm,
            })
        }
    }

    /// The XEP-0460 caching hints of a node (requires `urn:xmpp:pubsub-caching:0` on the service).
    fn caching_hints(
        &self,
        service: &Jid,
        node: &str,
    ) -> impl Future<Output = Result<CachingHints>> + Send {
        let service = service.clone();
        let payload = Element::builder("query", "http://jabber.org/protocol/disco#info")
            .a("node", node)
            .build();
        async move {
            require(
                self,
                Some(&service),
                NS_PUBSUB_CACHING,
                "XEP-0460 caching hints",
            )
            .await?;
            let r = self
                .send_iq(IqRequest::get(Some(service), payload))
                .await?
                .ok_or(ParseError::MissingChild {
                    element: "iq",
                    child: "query",
                })?;
            Ok(CachingHints::from_disco_info(&r)?)
        }
    }
}

impl<C: Connection + ?Sized> QueryExt for C {}
