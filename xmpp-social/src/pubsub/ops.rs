//! Async pubsub operations on any [`Connection`].

use std::future::Future;

use jid::Jid;
use minidom::Element;
use xmpp_parsers::stanza_error::DefinedCondition;

use super::config::NodeConfig;
use super::event::PubSubEvents;
use super::parse::{self, ItemsPage};
use super::request::{self, ItemsQuery};
use super::{AffiliationEntry, Item, Subscription, NS_PUBSUB_ERRORS};
use crate::connection::{Connection, ConnectionExt, IqRequest};
use crate::error::{Error, Result};
use crate::rsm::RsmRequest;

/// What [`PubSubExt::publish`] does when the service refuses its publish-options (XEP-0060 §7.1.5:
/// `<conflict/>` + `<precondition-not-met/>` when the node's configuration differs; some services also
/// refuse fields they do not support in publish-options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PreconditionPolicy {
    /// Return the error.
    #[default]
    Fail,
    /// Configure the node with the options (creating it if needed), then publish without options.
    ReconfigureNode,
    /// Publish without options, leaving the node's configuration as it is.
    PublishWithoutOptions,
}

/// Publish-options and what to do when they are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// The preconditions (node configuration fields).
    pub config: NodeConfig,
    /// What to do when the service refuses them.
    pub on_refusal: PreconditionPolicy,
}

impl PublishOptions {
    /// Options with a policy.
    pub fn new(config: NodeConfig, on_refusal: PreconditionPolicy) -> Self {
        PublishOptions { config, on_refusal }
    }
}

/// Whether an error is the service refusing publish-options.
pub fn is_publish_options_refusal(e: &Error) -> bool {
    let Some(se) = e.stanza_error() else {
        return false;
    };
    let precondition = se
        .other
        .as_ref()
        .is_some_and(|o| o.is("precondition-not-met", NS_PUBSUB_ERRORS));
    // ejabberd 23.01 answers unsupported publish-options fields with resource-constraint
    // ("Unknown field") or not-acceptable.
    precondition
        || matches!(
            se.defined_condition,
            DefinedCondition::ResourceConstraint | DefinedCondition::NotAcceptable
        )
}

/// Service discovery result (XEP-0030 `disco#info`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiscoInfo {
    /// `(category, type)` of each identity.
    pub identities: Vec<(String, String)>,
    /// Feature namespaces.
    pub features: Vec<String>,
}

impl DiscoInfo {
    /// Whether `feature` is announced.
    pub fn has(&self, feature: &str) -> bool {
        self.features.iter().any(|f| f == feature)
    }
}

const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

/// Most pages [`PubSubExt::get_all_items`] follows, whatever the service says (a bound on hostile paging).
pub const MAX_PAGES: usize = 10_000;

/// Pubsub operations (XEP-0060, XEP-0059) on any [`Connection`]. `service` `None` means the account's own
/// PEP service.
pub trait PubSubExt: Connection {
    /// Creates a node, with an initial configuration when given.
    fn create_node(
        &self,
        service: Option<&Jid>,
        node: &str,
        config: Option<&NodeConfig>,
    ) -> impl Future<Output = Result<()>> + Send {
        let payload = request::create_node(node, config);
        let req = IqRequest::set(service.cloned(), payload);
        async move { self.send_iq(req).await.map(|_| ()) }
    }

    /// Deletes a node.
    fn delete_node(
        &self,
        service: Option<&Jid>,
        node: &str,
    ) -> impl Future<Output = Result<()>> + Send {
        let req = IqRequest::set(service.cloned(), request::delete_node(node, None));
        async move { self.send_iq(req).await.map(|_| ()) }
    }

    /// Reads a node's configuration (owner only).
    fn node_config(
        &self,
        service: Option<&Jid>,
        node: &str,
    ) -> impl Future<Output = Result<NodeConfig>> + Send {
        let req = IqRequest::get(service.cloned(), request::get_node_config(node));
        async move {
            Ok(parse::parse_config_result(
                self.send_iq(req).await?.as_ref(),
            )?)
        }
    }

    /// Changes a node's configuration (owner only).
    fn configure_node(
        &self,
        service: Option<&Jid>,
        node: &str,
        config: &NodeConfig,
    ) -> impl Future<Output = Result<()>> + Send {
        let req = IqRequest::set(service.cloned(), request::configure_node(node, config));
        async move { self.send_iq(req).await.map(|_| ()) }
    }

    /// Publishes `payload` as item `id` (or a service-assigned id) and returns the item id. With
    /// `options`, sends publish-options and applies their policy when the service refuses them.
    fn publish(
        &self,
        service: Option<&Jid>,
        node: &str,
        id: Option<&str>,
        payload: Element,
        options: Option<&PublishOptions>,
    ) -> impl Future<Output = Result<String>> + Send {
        let service = service.cloned();
        let node = node.to_owned();
        let id = id.map(str::to_owned);
        let options = options.cloned();
        async move {
            let send = |with_options: bool| {
                let cfg = options.as_ref().map(|o| &o.config).filter(|_| with_options);
                IqRequest::set(
                    service.clone(),
                    request::publish(&node, id.as_deref(), payload.clone(), cfg),
                )
            };
            let first = self.send_iq(send(options.is_some())).await;
            let result = match (first, &options) {
                (Err(e), Some(o)) if is_publish_options_refusal(&e) => match o.on_refusal {
                    PreconditionPolicy::Fail => return Err(e),
                    PreconditionPolicy::PublishWithoutOptions => self.send_iq(send(false)).await?,
                    PreconditionPolicy::ReconfigureNode => {
                        match self
                            .configure_node(service.as_ref(), &node, &o.config)
                            .await
                        {
                            Err(ce) if ce.is_item_not_found() => {
                                self.create_node(service.as_ref(), &node, Some(&o.config))
                                    .await?
                            }
                            other => other?,
                        }
                        self.send_iq(send(false)).await?
                    }
                },
                (r, _) => r?,
            };
            match parse::parse_publish_result(result.as_ref())? {
                Some(assigned) => Ok(assigned),
                None => id.ok_or_else(|| {
                    Error::Parse(crate::error::ParseError::MissingChild {
                        element: "publish",
                        child: "item",
                    })
                }),
            }
        }
    }

    /// Retracts items, notifying subscribers when `notify`.
    fn retract(
        &self,
        service: Option<&Jid>,
        node: &str,
        ids: &[&str],
        notify: bool,
    ) -> impl Future<Output = Result<()>> + Send {
        let req = IqRequest::set(service.cloned(), request::retract(node, ids, notify));
        async move { self.send_iq(req).await.map(|_| ()) }
    }

    /// Fetches one page of items as `query` says.
    fn get_items(
        &self,
        service: Option<&Jid>,
        node: &str,
        query: &ItemsQuery,
    ) -> impl Future<Output = Result<ItemsPage>> + Send {
        let req = IqRequest::get(service.cloned(), request::get_items(node, query));
        self.iq_parsed(req, "pubsub", parse::parse_items_result)
    }

    /// Fetches items by id.
    fn get_items_by_id(
        &self,
        service: Option<&Jid>,
        node: &str,
        ids: &[&str],
    ) -> impl Future<Output = Result<Vec<Item>>> + Send {
        let q = ItemsQuery {
            ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        };
        let req = IqRequest::get(service.cloned(), request::get_items(node, &q));
        let page = self.iq_parsed(req, "pubsub", parse::parse_items_result);
        async move { Ok(page.await?.items) }
    }

    /// Fetches every item of a node (at most `limit`, the most recent ones when the service does not
    /// page): RSM pages of `page_size` when the service pages, else one request (with `max_items` =
    /// `limit` if the whole node is larger than `limit`). Items keep the service's order.
    fn get_all_items(
        &self,
        service: Option<&Jid>,
        node: &str,
        page_size: usize,
        limit: Option<usize>,
    ) -> impl Future<Output = Result<Vec<Item>>> + Send {
        let service = service.cloned();
        let node = node.to_owned();
        async move {
            let page_size = page_size.max(1);
            let mut all: Vec<Item> = Vec::new();
            let mut query = ItemsQuery {
                rsm: Some(RsmRequest::first(page_size)),
                ..Default::default()
            };
            for _ in 0..MAX_PAGES {
                let page = self.get_items(service.as_ref(), &node, &query).await?;
                let got = page.items.len();
                let Some(rsm) = page.rsm else {
                    // The service ignored RSM and sent what it had.
                    match limit {
                        Some(l) if got > l => {
                            let q = ItemsQuery {
                                max_items: Some(u32::try_from(l).unwrap_or(u32::MAX)),
                                ..Default::default()
                            };
                            return Ok(self.get_items(service.as_ref(), &node, &q).await?.items);
                        }
                        _ => return Ok(page.items),
                    }
                };
                all.extend(page.items);
                if let Some(l) = limit {
                    if all.len() >= l {
                        all.truncate(l);
                        return Ok(all);
                    }
                }
                let done = got == 0
                    || rsm.last.is_none()
                    || rsm.count.is_some_and(|c| all.len() >= c)
                    || (rsm.count.is_none() && got < page_size);
                if done {
                    return Ok(all);
                }
                query.rsm = Some(RsmRequest::after(page_size, rsm.last.unwrap_or_default()));
            }
            Ok(all)
        }
    }

    /// Subscribes the account's bare JID to a node.
    fn subscribe(
        &self,
        service: Option<&Jid>,
        node: &str,
    ) -> impl Future<Output = Result<Option<Subscription>>> + Send {
        let me: Jid = self.jid().to_bare().into();
        let req = IqRequest::set(service.cloned(), request::subscribe(node, &me));
        async move {
            Ok(parse::parse_subscribe_result(
                self.send_iq(req).await?.as_ref(),
            )?)
        }
    }

    /// Unsubscribes the account's bare JID from a node.
    fn unsubscribe(
        &self,
        service: Option<&Jid>,
        node: &str,
        subid: Option<&str>,
    ) -> impl Future<Output = Result<()>> + Send {
        let me: Jid = self.jid().to_bare().into();
        let req = IqRequest::set(service.cloned(), request::unsubscribe(node, &me, subid));
        async move { self.send_iq(req).await.map(|_| ()) }
    }

    /// The account's subscriptions on a service (or one node).
    fn subscriptions(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Subscription>>> + Send {
        let req = IqRequest::get(service.cloned(), request::subscriptions(node));
        async move {
            Ok(parse::parse_subscriptions_result(
                self.send_iq(req).await?.as_ref(),
            )?)
        }
    }

    /// The account's affiliations on a service (or one node).
    fn affiliations(
        &self,
        service: Option<&Jid>,
        node: Option<&str>,
    ) -> impl Future<Output = Result<Vec<AffiliationEntry>>> + Send {
        let req = IqRequest::get(service.cloned(), request::affiliations(node));
        async move {
            Ok(parse::parse_affiliations_result(
                self.send_iq(req).await?.as_ref(),
            )?)
        }
    }

    /// Every affiliation with a node (owner only).
    fn node_affiliations(
        &self,
        service: Option<&Jid>,
        node: &str,
    ) -> impl Future<Output = Result<Vec<AffiliationEntry>>> + Send {
        let req = IqRequest::get(service.cloned(), request::node_affiliations(node));
        async move {
            Ok(parse::parse_affiliations_result(
                self.send_iq(req).await?.as_ref(),
            )?)
        }
    }

    /// Changes affiliations with a node (owner only).
    fn set_node_affiliations(
        &self,
        service: Option<&Jid>,
        node: &str,
        entries: &[AffiliationEntry],
    ) -> impl Future<Output = Result<()>> + Send {
        let req = IqRequest::set(
            service.cloned(),
            request::set_node_affiliations(node, entries),
        );
        async move { self.send_iq(req).await.map(|_| ()) }
    }

    /// Removes every item of a node (owner only).
    fn purge(&self, service: Option<&Jid>, node: &str) -> impl Future<Output = Result<()>> + Send {
        let req = IqRequest::set(service.cloned(), request::purge(node));
        async move { self.send_iq(req).await.map(|_| ()) }
    }

    /// XEP-0030 `disco#info` of an entity (or one of its nodes).
    fn disco_info(
        &self,
        target: Option<&Jid>,
        node: Option<&str>,
    ) -> impl Future<Output = Result<DiscoInfo>> + Send {
        use crate::xml::BuilderExt;
        let payload = Element::builder("query", NS_DISCO_INFO)
            .a_opt("node", node)
            .build();
        let req = IqRequest::get(target.cloned(), payload);
        async move {
            let r = self
                .send_iq(req)
                .await?
                .ok_or(crate::error::ParseError::MissingChild {
                    element: "iq",
                    child: "query",
                })?;
            crate::xml::expect_element(&r, NS_DISCO_INFO, "query")?;
            let mut info = DiscoInfo::default();
            for c in r.children() {
                if c.is("feature", NS_DISCO_INFO) {
                    if let Some(v) = c.attr("var") {
                        info.features.push(v.to_owned());
                    }
                } else if c.is("identity", NS_DISCO_INFO) {
                    info.identities.push((
                        c.attr("category").unwrap_or_default().to_owned(),
                        c.attr("type").unwrap_or_default().to_owned(),
                    ));
                }
            }
            Ok(info)
        }
    }

    /// XEP-0030 `disco#items` of an entity: `(jid, node)` of each item.
    fn disco_items(
        &self,
        target: Option<&Jid>,
    ) -> impl Future<Output = Result<Vec<(Jid, Option<String>)>>> + Send {
        let ns = "http://jabber.org/protocol/disco#items";
        let req = IqRequest::get(target.cloned(), Element::builder("query", ns).build());
        async move {
            let r = self
                .send_iq(req)
                .await?
                .ok_or(crate::error::ParseError::MissingChild {
                    element: "iq",
                    child: "query",
                })?;
            crate::xml::expect_element(&r, ns, "query")?;
            let mut out = Vec::new();
            for c in r.children().filter(|c| c.is("item", ns)) {
                if let Some(j) = c.attr("jid").and_then(|j| Jid::new(j).ok()) {
                    out.push((j, c.attr("node").map(str::to_owned)));
                }
            }
            Ok(out)
        }
    }

    /// Finds a pubsub service (identity `pubsub/service`) among the items of the account's server.
    fn find_pubsub_service(&self) -> impl Future<Output = Result<Option<Jid>>> + Send {
        let domain = Jid::new(self.jid().domain().as_str());
        async move {
            let domain = domain.map_err(|e| Error::InvalidArgument(e.to_string()))?;
            for (item, node) in self.disco_items(Some(&domain)).await? {
                if node.is_some() {
                    continue;
                }
                if let Ok(info) = self.disco_info(Some(&item), None).await {
                    if info
                        .identities
                        .iter()
                        .any(|(c, t)| c == "pubsub" && t == "service")
                    {
                        return Ok(Some(item));
                    }
                }
            }
            Ok(None)
        }
    }

    /// A stream of pubsub notifications received from now on.
    fn pubsub_events(&self) -> PubSubEvents {
        PubSubEvents::new(self.incoming())
    }
}

impl<C: Connection + ?Sized> PubSubExt for C {}
