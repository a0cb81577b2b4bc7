//! The gateway's HTTP side, on axum: WebFinger, actor documents, collections, item objects and the
//! inboxes, plus the signed outbound POST ([`HttpDeliverer`]) the delivery queue uses.
//!
//! Routes (the base path comes from the [`UrlLayout`], e.g. `/_ap`):
//!
//! * `GET /.well-known/webfinger?resource=acct:user@domain` (or the actor URL): `application/jrd+json`
//!   with a `subject` that is always the canonical `acct:` handle (whatever alias was asked for) and a
//!   `self` link of type `application/activity+json`. Handles on the XMPP domain, on the gateway
//!   component's domain and on the public URL's host (what Mastodon asks when it checks
//!   `preferredUsername@<actor host>`) are answered.
//! * `GET {base}/actor/{handle}`: a `Person` with `preferredUsername`, inbox, outbox, followers,
//!   following, `endpoints.sharedInbox` and its own RSA key (`#main-key`), created on first use and
//!   kept in the [`GatewayStore`]. `followers`/`following`: `OrderedCollection`s from the store, paged.
//!   `outbox` and `item/{handle}/{id}` come from an [`ObjectSource`] (the XMPP side).
//!   Content negotiation: `application/activity+json` unless the client asks for
//!   `application/ld+json` only, then that with the ActivityStreams profile.
//! * `POST {base}/inbox/{handle}` and `POST {base}/shared_inbox`: see [`ApServer`] for the checks.
//!   Accepted activities are handed, in order, to a bounded channel the gateway drains
//!   ([`InboundActivity`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use crate::error::{FetchError, HandleError};
use crate::fetch::Fetcher;
use crate::handles::{ActorEndpoint, ApPath, HandleMapper, UrlLayout, XmppTarget};
use crate::queue::{Deliverer, DeliveryError};
use crate::signature::{check_key_owner, prepare_verification, KeyPair, PublicKey};
use crate::store::{Delivery, GatewayStore, RemoteActor, StoreError};

/// Default cap on inbox bodies (1 MiB); bigger bodies are answered 413.
pub const DEFAULT_MAX_INBOX_BODY: usize = 1024 * 1024;
/// Items per page of the followers/following collections.
pub const COLLECTION_PAGE_SIZE: usize = 50;
/// Local actor keys kept in memory.
pub const KEY_CACHE_SIZE: usize = 1024;

const AS_CONTEXT: &str = "https://www.w3.org/ns/activitystreams";
const SECURITY_CONTEXT: &str = "https://w3id.org/security/v1";
const ACTIVITY_JSON: &str = "application/activity+json";
const LD_JSON_AS: &str = "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";
const JRD_JSON: &str = "application/jrd+json";

/// Errors of the HTTP side's own machinery (keys, store).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key could not be generated or loaded.
    #[error(transparent)]
    Signature(#[from] crate::error::SignatureError),
    /// A handle or URL could not be built.
    #[error(transparent)]
    Handle(#[from] HandleError),
    /// A background task failed.
    #[error("background task failed")]
    Task,
}

// ---------------------------------------------------------------------------------------------
// Local actor keys
// ---------------------------------------------------------------------------------------------

/// The local actors' signing keys: one RSA key per actor, generated on first use, kept in the store,
/// cached in memory (bounded). Shared by the HTTP side (actor documents) and [`HttpDeliverer`].
pub struct LocalKeys {
    store: Arc<dyn GatewayStore>,
    cache: Mutex<HashMap<String, Arc<KeyPair>>>,
    generating: tokio::sync::Semaphore,
}

impl std::fmt::Debug for LocalKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKeys").finish_non_exhaustive()
    }
}

impl LocalKeys {
    /// Keys kept in `store`.
    pub fn new(store: Arc<dyn GatewayStore>) -> Self {
        Self {
            store,
            cache: Mutex::new(HashMap::new()),
            // One generation at a time: a flood of requests for new actors cannot eat every core.
            generating: tokio::sync::Semaphore::new(1),
        }
    }

    fn cached(&self, handle: &str) -> Option<Arc<KeyPair>> {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(handle)
            .cloned()
    }

    fn remember(&self, handle: &str, key: Arc<KeyPair>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= KEY_CACHE_SIZE {
            cache.clear();
        }
        cache.insert(handle.to_owned(), key);
    }

    /// The key of local actor `handle` (canonical handle), generated and stored if it has none.
    pub async fn key(&self, handle: &str) -> Result<Arc<KeyPair>, HttpError> {
        if let Some(k) = self.cached(handle) {
            return Ok(k);
        }
        if let Some(pem) = self.store.actor_key(handle)? {
            let key = Arc::new(KeyPair::from_pkcs8_pem(&pem)?);
            self.remember(handle, key.clone());
            return Ok(key);
        }
        let _permit = self
            .generating
            .acquire()
            .await
            .map_err(|_| HttpError::Task)?;
        // Another request may have made it meanwhile.
        if let Some(pem) = self.store.actor_key(handle)? {
            let key = Arc::new(KeyPair::from_pkcs8_pem(&pem)?);
            self.remember(handle, key.clone());
            return Ok(key);
        }
        let generated = tokio::task::spawn_blocking(KeyPair::generate)
            .await
            .map_err(|_| HttpError::Task)??;
        let pem = self
            .store
            .ensure_actor_key(handle, &generated.to_pkcs8_pem())?;
        let key = Arc::new(KeyPair::from_pkcs8_pem(&pem)?);
        self.remember(handle, key.clone());
        Ok(key)
    }
}

// ---------------------------------------------------------------------------------------------
// What the XMPP side provides
// ---------------------------------------------------------------------------------------------

/// A boxed future (the [`ObjectSource`] methods are called through a trait object).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the HTTP side asks the XMPP side: whether an actor exists, items as AS objects, outbox pages.
///
/// The defaults serve every local-domain JID (no existence check), no items and empty outboxes.
pub trait ObjectSource: Send + Sync + 'static {
    /// Whether `target` (from a valid handle) is an actor the gateway serves.
    fn actor_exists<'a>(&'a self, _target: &'a XmppTarget) -> BoxFuture<'a, bool> {
        Box::pin(async { true })
    }
    /// Item `id` of `target`, as an ActivityStreams object (`Note`...), or `None` (404).
    fn item<'a>(
        &'a self,
        _handle: &'a str,
        _target: &'a XmppTarget,
        _id: &'a str,
    ) -> BoxFuture<'a, Option<Value>> {
        Box::pin(async { None })
    }
    /// The outbox of `target`: the collection (no `page`) or a page (`page` as given in the query).
    /// `None` means an empty collection.
    fn outbox<'a>(
        &'a self,
        _handle: &'a str,
        _target: &'a XmppTarget,
        _page: Option<&'a str>,
    ) -> BoxFuture<'a, Option<Value>> {
        Box::pin(async { None })
    }
}

/// An [`ObjectSource`] with only the defaults (tests, or a gateway without an XMPP side yet).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObjects;

impl ObjectSource for NoObjects {}

/// An activity that passed every inbox check, for the gateway to act on.
#[derive(Debug, Clone)]
pub struct InboundActivity {
    /// The canonical handle of the personal inbox it was POSTed to; `None` for the shared inbox.
    pub recipient: Option<String>,
    /// The activity (a JSON object of at most [`HttpConfig::max_inbox_body`] bytes).
    pub activity: Map<String, Value>,
    /// The activity's actor (verified signer), as cached.
    pub actor: RemoteActor,
}

// ---------------------------------------------------------------------------------------------
// Configuration and state
// ---------------------------------------------------------------------------------------------

/// Settings of the HTTP side.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The public URL layout (`https://ap.example.org/_ap`).
    pub layout: UrlLayout,
    /// JID <-> handle mapping (XMPP domain, gateway component domain).
    pub mapper: HandleMapper,
    /// The XMPP domain the gateway serves (`example.org`).
    pub xmpp_domain: String,
    /// The pubsub service whose nodes are actors (`pubsub.example.org`), if any.
    pub pubsub_service: Option<String>,
    /// Cap on inbox bodies.
    pub max_inbox_body: usize,
}

impl HttpConfig {
    /// Settings for `public_base` (e.g. `https://ap.example.org/_ap`), XMPP domain and gateway domain.
    pub fn new(
        public_base: &str,
        xmpp_domain: &str,
        gateway_domain: &str,
        pubsub_service: Option<&str>,
    ) -> Result<Self, HandleError> {
        Ok(Self {
            layout: UrlLayout::new(public_base)?,
            mapper: HandleMapper::new(xmpp_domain, gateway_domain),
            xmpp_domain: xmpp_domain.to_ascii_lowercase(),
            pubsub_service: pubsub_service.map(str::to_ascii_lowercase),
            max_inbox_body: DEFAULT_MAX_INBOX_BODY,
        })
    }

    /// The host (with a non-default port) of the public URL.
    pub fn public_host(&self) -> Option<String> {
        url::Url::parse(self.layout.base())
            .ok()
            .and_then(|u| crate::signature::host_header(&u))
    }

    /// Decodes and resolves a handle to its XMPP target and canonical handle.
    pub fn resolve_handle(&self, handle: &str) -> Result<(XmppTarget, String), HandleError> {
        let decoded = self.mapper.decode(handle)?;
        let is_service = self
            .pubsub_service
            .as_deref()
            .is_some_and(|s| decoded.domain.eq_ignore_ascii_case(s));
        let target = decoded.resolve(is_service)?;
        let canonical = self.mapper.encode(&target.jid, target.node.as_deref())?;
        Ok((target, canonical))
    }

    /// The actor URL of a canonical handle.
    pub fn actor_url(&self, handle: &str) -> Result<String, HandleError> {
        self.layout.actor_url(ActorEndpoint::Actor, handle)
    }

    /// The key id of a canonical handle (`<actor>#main-key`).
    pub fn key_id(&self, handle: &str) -> Result<String, HandleError> {
        Ok(format!("{}#main-key", self.actor_url(handle)?))
    }
}

struct Shared {
    config: HttpConfig,
    store: Arc<dyn GatewayStore>,
    keys: Arc<LocalKeys>,
    fetcher: Fetcher,
    objects: Arc<dyn ObjectSource>,
    inbound: mpsc::Sender<InboundActivity>,
}

/// The HTTP side: build it, then serve [`ApServer::router`].
///
/// # Inbox checks
///
/// In this order, each rejection leaving the store untouched (the signer's actor document is cached
/// only once everything passed):
///
/// 1. body over [`HttpConfig::max_inbox_body`]: 413;
/// 2. [`prepare_verification`] (signature header, signed headers, `Date` window, `Digest`): 401 (so
///    RFC 9421 signers retry with draft-cavage);
/// 3. the body is a bounded JSON object with an `id` and an http(s) `actor`: 400 otherwise;
/// 4. the key: the cached actor's when it has that `keyId`, else fetched from the `keyId` document
///    through the guarded [`Fetcher`] (a key document's `owner` is followed); a signature that fails
///    with a cached key is retried once with a fresh fetch (key rotation); unfetchable or failing: 401;
/// 5. the key's owner is the activity's `actor`, on the same origin ([`check_key_owner`]): 401;
/// 6. the activity id has the actor's origin; for `Create`/`Update` the embedded object's id too, and
///    its `attributedTo` is the actor: 400 otherwise;
/// 7. room in the gateway's inbound queue: 503 otherwise;
/// 8. an activity id seen before ([`GatewayStore::first_sight`]): 202, nothing done.
///
/// Accepted: 202, the actor is cached and the activity queued as an [`InboundActivity`].
#[derive(Clone)]
pub struct ApServer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ApServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApServer")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl ApServer {
    /// An HTTP side. `fetcher` fetches remote keys (its SSRF settings apply); accepted activities go
    /// to `inbound`.
    pub fn new(
        config: HttpConfig,
        store: Arc<dyn GatewayStore>,
        keys: Arc<LocalKeys>,
        fetcher: Fetcher,
        objects: Arc<dyn ObjectSource>,
        inbound: mpsc::Sender<InboundActivity>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                store,
                keys,
                fetcher,
                objects,
                inbound,
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &HttpConfig {
        &self.shared.config
    }

    /// The axum router: `/.well-known/webfinger` and everything under the layout's base path.
    pub fn router(&self) -> Router {
        let base = url::Url::parse(self.shared.config.layout.base())
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Router::new()
            .route("/.well-known/webfinger", get(webfinger))
            .route(
                &format!("{base}/{{*rest}}"),
                get(ap_get).post(ap_post).head(ap_get),
            )
            .with_state(self.shared.clone())
    }

    /// Serves the router on `listener` until `shutdown` resolves.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

fn status(code: StatusCode, reason: &str) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        reason.to_owned(),
    )
        .into_response()
}

fn wants_ld_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    accept.contains("application/ld+json") && !accept.contains(ACTIVITY_JSON)
}

fn ap_json(headers: &HeaderMap, value: &Value) -> Response {
    let content_type = if wants_ld_json(headers) {
        LD_JSON_AS
    } else {
        ACTIVITY_JSON
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::VARY, "Accept"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        value.to_string(),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// WebFinger
// ---------------------------------------------------------------------------------------------

async fn webfinger(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(resource) = query.get("resource") else {
        return status(StatusCode::BAD_REQUEST, "resource parameter required");
    };
    if resource.len() > 2048 {
        return status(StatusCode::BAD_REQUEST, "resource too long");
    }
    let config = &shared.config;
    let handle = if resource.starts_with("http://") || resource.starts_with("https://") {
        match config.layout.parse_url(resource) {
            Ok(ApPath::Actor {
                endpoint: ActorEndpoint::Actor,
                handle,
            }) => handle,
            _ => return status(StatusCode::NOT_FOUND, "not an actor of this gateway"),
        }
    } else {
        let acct = resource.strip_prefix("acct:").unwrap_or(resource);
        let acct = acct.strip_prefix('@').unwrap_or(acct);
        let Some((user, domain)) = acct.rsplit_once('@') else {
            return status(StatusCode::BAD_REQUEST, "not an acct: resource");
        };
        // The public host stands for the XMPP domain (Mastodon's preferredUsername@actor-host check).
        let public = config.public_host().unwrap_or_default();
        if domain.eq_ignore_ascii_case(&public) && !public.is_empty() {
            format!("{user}@{}", config.xmpp_domain)
        } else {
            acct.to_owned()
        }
    };
    let Ok((target, canonical)) = config.resolve_handle(&handle) else {
        return status(StatusCode::NOT_FOUND, "unknown handle");
    };
    if !shared.objects.actor_exists(&target).await {
        return status(StatusCode::NOT_FOUND, "unknown actor");
    }
    let Ok(actor) = config.actor_url(&canonical) else {
        return status(StatusCode::NOT_FOUND, "unknown handle");
    };
    let jrd = json!({
        "subject": format!("acct:{canonical}"),
        "aliases": [actor],
        "links": [
            {"rel": "self", "type": ACTIVITY_JSON, "href": actor},
        ],
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, JRD_JSON),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        jrd.to_string(),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// GET: actors, collections, items
// ---------------------------------------------------------------------------------------------

/// The actor document of a canonical handle.
pub fn actor_document(
    config: &HttpConfig,
    handle: &str,
    target: &XmppTarget,
    key: &KeyPair,
) -> Result<Value, HandleError> {
    let url = |e| config.layout.actor_url(e, handle);
    let actor = url(ActorEndpoint::Actor)?;
    let username = handle.rsplit_once('@').map_or(handle, |(u, _)| u);
    let name = match &target.node {
        Some(node) => format!("{} ({node})", target.jid),
        None => target.jid.to_string(),
    };
    Ok(json!({
        "@context": [AS_CONTEXT, SECURITY_CONTEXT],
        "id": actor,
        "type": "Person",
        "preferredUsername": username,
        "name": name,
        "inbox": url(ActorEndpoint::Inbox)?,
        "outbox": url(ActorEndpoint::Outbox)?,
        "followers": url(ActorEndpoint::Followers)?,
        "following": url(ActorEndpoint::Following)?,
        "endpoints": {"sharedInbox": config.layout.shared_inbox_url()},
        "manuallyApprovesFollowers": false,
        "publicKey": {
            "id": format!("{actor}#main-key"),
            "owner": actor,
            "publicKeyPem": key.public_key_pem(),
        },
    }))
}

/// An `OrderedCollection` of `items` (ids) at `id`, paged by [`COLLECTION_PAGE_SIZE`]: without
/// `page` the collection with its size and first page link, with `page=N` (from 1) that page.
pub fn paged_collection(id: &str, items: &[String], page: Option<&str>) -> Value {
    let pages = items.len().div_ceil(COLLECTION_PAGE_SIZE).max(1);
    match page.and_then(|p| p.parse::<usize>().ok()) {
        None => json!({
            "@context": AS_CONTEXT,
            "id": id,
            "type": "OrderedCollection",
            "totalItems": items.len(),
            "first": format!("{id}?page=1"),
        }),
        Some(n) => {
            let n = n.clamp(1, pages);
            let start = (n - 1) * COLLECTION_PAGE_SIZE;
            let slice: Vec<&String> = items
                .iter()
                .skip(start)
                .take(COLLECTION_PAGE_SIZE)
                .collect();
            let mut page = json!({
                "@context": AS_CONTEXT,
                "id": format!("{id}?page={n}"),
                "type": "OrderedCollectionPage",
                "partOf": id,
                "totalItems": items.len(),
                "orderedItems": slice,
            });
            if n < pages {
                page["next"] = json!(format!("{id}?page={}", n + 1));
            }
            if n > 1 {
                page["prev"] = json!(format!("{id}?page={}", n - 1));
            }
            page
        }
    }
}

fn query_param<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then_some(v)
    })
}

async fn ap_get(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let config = &shared.config;
    let path = match config.layout.parse_path(uri.path()) {
        Ok(p) => p,
        Err(_) => return status(StatusCode::NOT_FOUND, "not found"),
    };
    let (handle, endpoint, item) = match path {
        ApPath::Actor { endpoint, handle } => (handle, endpoint, None),
        ApPath::Item { handle, id } => (handle, ActorEndpoint::Actor, Some(id)),
        ApPath::SharedInbox => return status(StatusCode::METHOD_NOT_ALLOWED, "POST only"),
    };
    let Ok((target, canonical)) = config.resolve_handle(&handle) else {
        return status(StatusCode::NOT_FOUND, "unknown handle");
    };
    if !shared.objects.actor_exists(&target).await {
        return status(StatusCode::NOT_FOUND, "unknown actor");
    }
    if let Some(id) = item {
        return match shared.objects.item(&canonical, &target, &id).await {
            Some(object) => ap_json(&headers, &object),
            None => status(StatusCode::NOT_FOUND, "no such item"),
        };
    }
    let page = query_param(&uri, "page");
    let url = match config.layout.actor_url(endpoint, &canonical) {
        Ok(u) => u,
        Err(_) => return status(StatusCode::NOT_FOUND, "unknown handle"),
    };
    match endpoint {
        ActorEndpoint::Actor => {
            let key = match shared.keys.key(&canonical).await {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(error = %e, "actor key unavailable");
                    return status(StatusCode::SERVICE_UNAVAILABLE, "key unavailable");
                }
            };
            match actor_document(config, &canonical, &target, &key) {
                Ok(doc) => ap_json(&headers, &doc),
                Err(_) => status(StatusCode::NOT_FOUND, "unknown handle"),
            }
        }
        ActorEndpoint::Followers => match shared.store.followers(&canonical) {
            Ok(items) => ap_json(&headers, &paged_collection(&url, &items, page)),
            Err(_) => status(StatusCode::SERVICE_UNAVAILABLE, "store unavailable"),
        },
        ActorEndpoint::Following => match shared.store.following(target.jid.as_str()) {
            Ok(items) => {
                let items: Vec<String> = items
                    .into_iter()
                    .filter(|(_, accepted)| *accepted)
                    .map(|(a, _)| a)
                    .collect();
                ap_json(&headers, &paged_collection(&url, &items, page))
            }
            Err(_) => status(StatusCode::SERVICE_UNAVAILABLE, "store unavailable"),
        },
        ActorEndpoint::Outbox => {
            let outbox = shared.objects.outbox(&canonical, &target, page).await;
            let outbox = outbox.unwrap_or_else(|| paged_collection(&url, &[], page));
            ap_json(&headers, &outbox)
        }
        ActorEndpoint::Inbox => status(StatusCode::METHOD_NOT_ALLOWED, "POST only"),
    }
}

// ---------------------------------------------------------------------------------------------
// POST: inboxes
// ---------------------------------------------------------------------------------------------

/// Why an inbox refused a POST (the HTTP status it answered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxRejection {
    /// 413.
    TooLarge,
    /// 401: not authenticated (signature, key, owner).
    Unauthorized(String),
    /// 400: malformed, or an origin check failed.
    BadRequest(String),
    /// 404: not one of our inboxes.
    NotFound,
    /// 503: the gateway cannot take more now.
    Unavailable,
}

impl InboxRejection {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

async fn ap_post(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match inbox_post(&shared, &method, &uri, &headers, body).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(rejection) => {
            tracing::debug!(?rejection, path = %uri.path(), "inbox POST refused");
            let text = match &rejection {
                InboxRejection::Unauthorized(r) | InboxRejection::BadRequest(r) => r.as_str(),
                InboxRejection::TooLarge => "body too large",
                InboxRejection::NotFound => "not found",
                InboxRejection::Unavailable => "try again later",
            };
            let mut response = status(rejection.status(), text);
            if rejection.status() == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static(
                        "Signature realm=\"inbox\",headers=\"(request-target) host date digest\"",
                    ),
                );
            }
            response
        }
    }
}

fn origin_of(url: &str) -> Option<url::Origin> {
    let u = url::Url::parse(url).ok()?;
    matches!(u.scheme(), "http" | "https").then(|| u.origin())
}

fn value_id(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("id").and_then(Value::as_str),
        _ => None,
    }
}

/// Reads an actor document into a [`RemoteActor`] whose key is `key_id` (`None` if it is not an
/// actor or does not publish that key).
pub fn remote_actor_from_document(
    doc: &Map<String, Value>,
    key_id: &str,
    now: i64,
) -> Option<RemoteActor> {
    let id = doc.get("id")?.as_str()?;
    let inbox = doc.get("inbox").and_then(value_id)?;
    let shared_inbox = doc
        .get("endpoints")
        .and_then(|e| e.get("sharedInbox"))
        .and_then(value_id)
        .map(str::to_owned);
    let keys: Vec<&Value> = match doc.get("publicKey")? {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    let key = keys
        .into_iter()
        .find(|k| k.get("id").and_then(Value::as_str) == Some(key_id))?;
    let pem = key.get("publicKeyPem")?.as_str()?;
    if let Some(owner) = key.get("owner").and_then(value_id) {
        if owner != id {
            return None;
        }
    }
    Some(RemoteActor {
        id: id.to_owned(),
        inbox: inbox.to_owned(),
        shared_inbox,
        key_id: key_id.to_owned(),
        public_key_pem: pem.to_owned(),
        document: Value::Object(doc.clone()).to_string(),
        fetched_at: now,
    })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Shared {
    /// Fetches the key `key_id` and its owner: a document that is an actor publishing the key, or a
    /// key document whose `owner` is then fetched (and must publish the key).
    async fn fetch_key_owner(&self, key_id: &str, doc_url: &str) -> Result<RemoteActor, String> {
        let reason = |e: FetchError| format!("cannot fetch the key: {e}");
        let doc = self.fetcher.fetch_object(doc_url).await.map_err(reason)?;
        let now = unix_now();
        if let Some(actor) = remote_actor_from_document(&doc, key_id, now) {
            return Ok(actor);
        }
        // A key document (GoToSocial-style `keyId`s): follow `owner`.
        let owner = doc
            .get("owner")
            .and_then(value_id)
            .ok_or("the keyId document is neither an actor with that key nor a key")?
            .to_owned();
        let actor_doc = self.fetcher.fetch_object(&owner).await.map_err(reason)?;
        remote_actor_from_document(&actor_doc, key_id, now)
            .ok_or_else(|| "the key's owner does not publish that key".to_owned())
    }
}

async fn inbox_post(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<(), InboxRejection> {
    let config = &shared.config;
    let recipient = match config.layout.parse_path(uri.path()) {
        Ok(ApPath::SharedInbox) => None,
        Ok(ApPath::Actor {
            endpoint: ActorEndpoint::Inbox,
            handle,
        }) => {
            let (_, canonical) = config
                .resolve_handle(&handle)
                .map_err(|_| InboxRejection::NotFound)?;
            Some(canonical)
        }
        _ => return Err(InboxRejection::NotFound),
    };
    // 1. Body cap.
    let max = config.max_inbox_body;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|l| l > max as u64) {
        return Err(InboxRejection::TooLarge);
    }
    let body = axum::body::to_bytes(body, max)
        .await
        .map_err(|_| InboxRejection::TooLarge)?;
    // 2. Everything but the RSA check.
    let target = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let pending = prepare_verification(
        method.as_str(),
        &target,
        headers,
        Some(&body),
        SystemTime::now(),
    )
    .map_err(|e| InboxRejection::Unauthorized(e.to_string()))?;
    // 3. The activity.
    let value: Value = serde_json::from_slice(&body)
        .map_err(|_| InboxRejection::BadRequest("body is not JSON".into()))?;
    // serde_json limits nesting (128) and the body is capped; the gateway reads the activity with the
    // bounded vocabulary parser.
    let Value::Object(activity) = value else {
        return Err(InboxRejection::BadRequest("not a JSON object".into()));
    };
    let actor_id = activity
        .get("actor")
        .and_then(value_id)
        .ok_or_else(|| InboxRejection::BadRequest("no actor".into()))?
        .to_owned();
    let actor_origin = origin_of(&actor_id)
        .ok_or_else(|| InboxRejection::BadRequest("actor is not an http(s) URL".into()))?;
    let activity_id = activity
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| InboxRejection::BadRequest("no activity id".into()))?
        .to_owned();
    // 4. The key: cached for this actor, else fetched; one refetch when a cached key fails.
    let key_id = pending.key_id().to_owned();
    let cached = shared
        .store
        .remote_actor(&actor_id)
        .ok()
        .flatten()
        .filter(|a| a.key_id == key_id);
    let verify = |actor: &RemoteActor| -> Result<(), String> {
        let key = PublicKey::from_pem(&actor.public_key_pem).map_err(|e| e.to_string())?;
        pending.verify(&key).map(|_| ()).map_err(|e| e.to_string())
    };
    let (signer, fetched) = match cached {
        Some(actor) if verify(&actor).is_ok() => (actor, false),
        _ => {
            let actor = shared
                .fetch_key_owner(&key_id, pending.key_document_url())
                .await
                .map_err(InboxRejection::Unauthorized)?;
            verify(&actor).map_err(InboxRejection::Unauthorized)?;
            (actor, true)
        }
    };
    // 5. The signer is the activity's actor.
    check_key_owner(&key_id, &signer.id, &actor_id)
        .map_err(|e| InboxRejection::Unauthorized(e.to_string()))?;
    // 6. Origins.
    if origin_of(&activity_id).as_ref() != Some(&actor_origin) {
        return Err(InboxRejection::BadRequest(
            "activity id not on the actor's origin".into(),
        ));
    }
    let kind = activity.get("type").and_then(Value::as_str).unwrap_or("");
    if matches!(kind, "Create" | "Update") {
        if let Some(Value::Object(object)) = activity.get("object") {
            let id = object.get("id").and_then(Value::as_str).unwrap_or("");
            if origin_of(id).as_ref() != Some(&actor_origin) {
                return Err(InboxRejection::BadRequest(
                    "object id not on the actor's origin".into(),
                ));
            }
            if let Some(by) = object.get("attributedTo").and_then(value_id) {
                if by != actor_id && object.get("type").and_then(Value::as_str) != Some("Person") {
                    return Err(InboxRejection::BadRequest(
                        "object attributed to another actor".into(),
                    ));
                }
            }
        }
    }
    // 7. Room to act on it.
    let permit = shared
        .inbound
        .try_reserve()
        .map_err(|_| InboxRejection::Unavailable)?;
    // 8. De-duplication, then accept.
    let fresh = shared
        .store
        .first_sight(&activity_id, unix_now())
        .map_err(|_| InboxRejection::Unavailable)?;
    if !fresh {
        return Ok(());
    }
    if fetched {
        if let Err(e) = shared.store.store_remote_actor(&signer) {
            tracing::warn!(error = %e, "could not cache a remote actor");
        }
    }
    permit.send(InboundActivity {
        recipient,
        activity,
        actor: signer,
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Outbound
// ---------------------------------------------------------------------------------------------

/// The [`Deliverer`] of the delivery queue: a signed POST (draft-cavage `rsa-sha256`, `Digest`,
/// `Host` with its port) through the SSRF-guarded [`Fetcher`]. 2xx is success; 4xx is final except
/// 408 and 429; 5xx, network errors and timeouts are retried.
pub struct HttpDeliverer {
    fetcher: Fetcher,
    keys: Arc<LocalKeys>,
    config: HttpConfig,
}

impl std::fmt::Debug for HttpDeliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDeliverer").finish_non_exhaustive()
    }
}

impl HttpDeliverer {
    /// A deliverer signing with `keys` (key ids from `config`'s layout).
    pub fn new(fetcher: Fetcher, keys: Arc<LocalKeys>, config: HttpConfig) -> Self {
        Self {
            fetcher,
            keys,
            config,
        }
    }
}

/// How a delivery status is treated (see [`HttpDeliverer`]).
pub fn classify_status(status: u16) -> Result<(), DeliveryError> {
    match status {
        200..=299 => Ok(()),
        408 | 429 => Err(DeliveryError {
            retryable: true,
            reason: format!("HTTP {status}"),
        }),
        400..=499 => Err(DeliveryError {
            retryable: false,
            reason: format!("HTTP {status}"),
        }),
        _ => Err(DeliveryError {
            retryable: true,
            reason: format!("HTTP {status}"),
        }),
    }
}

impl Deliverer for HttpDeliverer {
    async fn deliver(&self, delivery: &Delivery) -> Result<(), DeliveryError> {
        let key = self
            .keys
            .key(&delivery.signer)
            .await
            .map_err(|e| DeliveryError {
                retryable: true,
                reason: format!("signing key: {e}"),
            })?;
        let key_id = self
            .config
            .key_id(&delivery.signer)
            .map_err(|e| DeliveryError {
                retryable: false,
                reason: format!("signer: {e}"),
            })?;
        let status = self
            .fetcher
            .post_activity(
                &delivery.inbox,
                &key,
                &key_id,
                delivery.body.as_bytes().to_vec(),
            )
            .await
            .map_err(|e| DeliveryError {
                retryable: matches!(
                    e,
                    FetchError::Timeout | FetchError::Transport(_) | FetchError::Dns { .. }
                ),
                reason: e.to_string(),
            })?;
        classify_status(status)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn statuses() {
        assert!(classify_status(202).is_ok());
        assert!(!classify_status(403).unwrap_err().retryable);
        assert!(classify_status(429).unwrap_err().retryable);
        assert!(classify_status(503).unwrap_err().retryable);
    }

    #[test]
    fn pages() {
        let items: Vec<String> = (0..120).map(|i| format!("https://x/{i}")).collect();
        let c = paged_collection("https://g/f", &items, None);
        assert_eq!(c["totalItems"], 120);
        let p = paged_collection("https://g/f", &items, Some("3"));
        assert_eq!(p["orderedItems"].as_array().unwrap().len(), 20);
        assert!(p.get("next").is_none());
        let p = paged_collection("https://g/f", &items, Some("1"));
        assert_eq!(p["next"], "https://g/f?page=2");
    }

    #[test]
    fn actor_from_document() {
        let doc = json!({"id": "https://r/u", "type": "Person", "inbox": "https://r/u/inbox",
            "endpoints": {"sharedInbox": "https://r/inbox"},
            "publicKey": {"id": "https://r/u#k", "owner": "https://r/u", "publicKeyPem": "PEM"}});
        let Value::Object(doc) = doc else { panic!() };
        let a = remote_actor_from_document(&doc, "https://r/u#k", 1).unwrap();
        assert_eq!(a.shared_inbox.as_deref(), Some("https://r/inbox"));
        assert!(remote_actor_from_document(&doc, "https://r/u#other", 1).is_none());
    }
}
