//! Outbound delivery: planning (one POST per shared inbox), a persistent queue in the
//! [`GatewayStore`], retries with exponential backoff, dead letters, and a worker with bounded
//! concurrency. The HTTP POST itself is behind [`Deliverer`], so the policy is tested without a network
//! and the gateway plugs its signed, SSRF-guarded client in.
//!
//! Everything queued is in the store before any attempt: a gateway restarted with deliveries pending
//! resumes them (leases of deliveries in flight at the crash expire and they are retried).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::store::{Delivery, GatewayStore, QueuedDelivery, RemoteActor, StoreResult};

/// When to retry a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure, in seconds.
    pub base: i64,
    /// Longest delay, in seconds.
    pub max: i64,
    /// Attempts before the delivery becomes a dead letter.
    pub max_attempts: u32,
}

impl Default for Backoff {
    /// 30 s, doubling up to 6 h, 12 attempts (about two days in all).
    fn default() -> Self {
        Backoff {
            base: 30,
            max: 6 * 3600,
            max_attempts: 12,
        }
    }
}

impl Backoff {
    /// The time of the next try after the failure of attempt number `attempts` (1 for the first) at
    /// `now`, or `None` when the delivery is given up.
    pub fn next_try(&self, attempts: u32, now: i64) -> Option<i64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exp = attempts.saturating_sub(1).min(40);
        let delay = self.base.saturating_mul(1i64 << exp).min(self.max).max(1);
        Some(now.saturating_add(delay))
    }
}

/// The inboxes to POST one activity to for `recipients`: the shared inbox of a server once, instead of
/// each follower's own inbox. Sorted and de-duplicated.
pub fn plan_inboxes<'a>(recipients: impl IntoIterator<Item = &'a RemoteActor>) -> Vec<String> {
    let mut inboxes: Vec<String> = recipients
        .into_iter()
        .map(|a| a.shared_inbox.clone().unwrap_or_else(|| a.inbox.clone()))
        .collect();
    inboxes.sort();
    inboxes.dedup();
    inboxes
}

/// Queues `body` (an activity signed by local actor `signer`) for every inbox, due now.
pub fn enqueue_all(
    store: &dyn GatewayStore,
    signer: &str,
    body: &str,
    inboxes: &[String],
    now: i64,
) -> StoreResult<Vec<i64>> {
    inboxes
        .iter()
        .map(|inbox| {
            store.enqueue(
                &Delivery {
                    inbox: inbox.clone(),
                    body: body.to_owned(),
                    signer: signer.to_owned(),
                },
                now,
            )
        })
        .collect()
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    /// Whether trying again may help (network errors, 5xx, 429) or not (4xx: the peer refuses).
    pub retryable: bool,
    /// What happened (kept in the dead letter).
    pub reason: String,
}

/// Performs one signed POST.
pub trait Deliverer: Send + Sync + 'static {
    /// Delivers `delivery`; `Ok` when the inbox accepted it (2xx).
    fn deliver(
        &self,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

/// Settings of the [`run_worker`] loop.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Retry policy.
    pub backoff: Backoff,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// How long a taken delivery is reserved before another worker may take it, in seconds.
    pub lease: i64,
    /// Pause when nothing is due.
    pub idle: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            backoff: Backoff::default(),
            concurrency: 8,
            lease: 300,
            idle: Duration::from_millis(500),
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Records the outcome of one attempt.
pub fn settle(
    store: &dyn GatewayStore,
    backoff: &Backoff,
    queued: &QueuedDelivery,
    outcome: Result<(), DeliveryError>,
    now: i64,
) -> StoreResult<()> {
    match outcome {
        Ok(()) => store.complete(queued.id),
        Err(e) => {
            let retry = if e.retryable {
                backoff.next_try(queued.attempts + 1, now)
            } else {
                None
            };
            store.fail(queued.id, &e.reason, retry)
        }
    }
}

/// Delivers due deliveries until `stop` resolves, at most `config.concurrency` at a time.
pub async fn run_worker<S, D>(
    store: Arc<S>,
    deliverer: Arc<D>,
    config: WorkerConfig,
    stop: impl Future<Output = ()>,
) where
    S: GatewayStore + 'static,
    D: Deliverer,
{
    let limit = Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1)));
    let work = async {
        loop {
            let free = limit.available_permits();
            let due = if free == 0 {
                Vec::new()
            } else {
                match store.take_due(unix_now(), config.lease, free) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(error = %e, "delivery queue unavailable");
                        Vec::new()
                    }
                }
            };
            if due.is_empty() {
                tokio::time::sleep(config.idle).await;
                continue;
            }
            for queued in due {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    return;
                };
                let store = store.clone();
                let deliverer = deliverer.clone();
                let backoff = config.backoff;
                tokio::spawn(async move {
                    let outcome = deliverer.deliver(&queued.delivery).await;
                    if let Err(e) = &outcome {
                        tracing::debug!(inbox = %queued.delivery.inbox, reason = %e.reason,
                            "delivery failed");
                    }
                    if let Err(e) = settle(&*store, &backoff, &queued, outcome, unix_now()) {
                        tracing::warn!(error = %e, "could not record a delivery outcome");
                    }
                    drop(permit);
                });
            }
        }
    };
    tokio::select! {
        () = work => {}
        () = stop => {}
    }
}
