//! The kubelet's assignments, refreshed in the background and read by the sampler.
//!
//! [`refresh`] runs as its own task: it calls `List` every `refresh` interval and swaps the
//! result into the [`Cache`] whole. Readers ([`Cache::current`]) take an `Arc` under a
//! short lock and never wait for the kubelet, so neither a scrape nor a collection cycle ever
//! blocks on it. When a call fails, the task retries with exponential backoff (from
//! [`FIRST_RETRY`] or the refresh interval if shorter, doubling, up to [`MAX_RETRY`] or the
//! refresh interval if longer) and logs one line when the kubelet becomes unavailable and one
//! when it answers again, not one per retry. The last good list is served for at most
//! [`STALE_AFTER_REFRESHES`] refresh intervals after it was fetched; after that no
//! assignments are served and pod labels disappear rather than go stale.

use crate::attribute::Assignments;
use crate::client;
use headroom_core::log;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// First retry after a failure (or the refresh interval, if shorter).
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between retries (or the refresh interval, if longer).
pub const MAX_RETRY: Duration = Duration::from_secs(30);
/// How many refresh intervals the last good list outlives a failing kubelet.
pub const STALE_AFTER_REFRESHES: u32 = 3;
/// Longest a single `List` call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how often to ask the kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub socket: PathBuf,
    pub refresh: Duration,
}

impl Settings {
    fn stale_after(&self) -> Duration {
        self.refresh.saturating_mul(STALE_AFTER_REFRESHES)
    }

    /// Wait before retry number `n` (0-based) after consecutive failures.
    pub fn backoff(&self, n: u32) -> Duration {
        let first = FIRST_RETRY.min(self.refresh);
        let max = MAX_RETRY.max(self.refresh);
        first
            .saturating_mul(2u32.saturating_pow(n.min(20)))
            .min(max)
    }
}

#[derive(Debug, Default)]
struct State {
    assignments: Option<(Arc<Assignments>, Instant)>,
    /// Outcome of the last call; `None` before the first one ends.
    last_ok: Option<bool>,
}

/// The latest assignments and the kubelet's health, shared between the refresh task and
/// its readers.
#[derive(Debug)]
pub struct Cache {
    settings: Settings,
    state: RwLock<State>,
}

impl Cache {
    pub fn new(settings: Settings) -> Self {
        Self {
            settings,
            state: RwLock::new(State::default()),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The assignments to use at `now`: the last good list unless it is stale.
    pub fn current(&self, now: Instant) -> Option<Arc<Assignments>> {
        let state = self.read();
        let (a, at) = state.assignments.as_ref()?;
        (now.saturating_duration_since(*at) <= self.settings.stale_after()).then(|| a.clone())
    }

    /// Whether the last `List` call succeeded; `None` before the first one ends.
    pub fn last_ok(&self) -> Option<bool> {
        self.read().last_ok
    }

    fn store_ok(&self, a: Assignments, at: Instant) -> Option<bool> {
        let mut s = self.write();
        s.assignments = Some((Arc::new(a), at));
        s.last_ok.replace(true)
    }

    fn store_failed(&self) -> Option<bool> {
        self.write().last_ok.replace(false)
    }
}

/// Refreshes `cache` until `stop` completes.
pub async fn refresh(cache: Arc<Cache>, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let settings = cache.settings().clone();
    let mut failures: u32 = 0;
    loop {
        let wait = match client::list(&settings.socket, CALL_TIMEOUT).await {
            Ok(pods) => {
                let a = Assignments::from_pods(&pods);
                let (n_pods, n_devices) = (a.pod_count(), a.device_count());
                if cache.store_ok(a, Instant::now()) != Some(true) {
                    log::info(
                        "kubelet pod-resources available; pod labels on",
                        &[
                            ("socket", &settings.socket.display()),
                            ("pods", &n_pods),
                            ("gpu_devices_assigned", &n_devices),
                        ],
                    );
                }
                failures = 0;
                settings.refresh
            }
            Err(e) => {
                let wait = settings.backoff(failures);
                failures = failures.saturating_add(1);
                if cache.store_failed() != Some(false) {
                    log::warn(
                        "kubelet pod-resources unavailable; pod labels absent until it answers (retrying with backoff)",
                        &[
                            ("socket", &settings.socket.display()),
                            ("error", &e),
                            ("retry_in", &format!("{wait:?}")),
                        ],
                    );
                }
                wait
            }
        };
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(refresh_ms: u64) -> Settings {
        Settings {
            socket: "/nonexistent".into(),
            refresh: Duration::from_millis(refresh_ms),
        }
    }

    #[test]
    fn backoff_doubles_within_bounds() {
        let s = settings(10_000);
        let got: Vec<u64> = (0..8).map(|n| s.backoff(n).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(s.backoff(u32::MAX), MAX_RETRY);
        let fast = settings(200);
        assert_eq!(fast.backoff(0), Duration::from_millis(200));
        assert_eq!(fast.backoff(2), Duration::from_millis(800));
        // A refresh slower than the cap caps the backoff instead.
        let slow = settings(120_000);
        assert_eq!(slow.backoff(30), Duration::from_secs(120));
    }

    #[test]
    fn stale_lists_are_not_served() {
        let c = Cache::new(settings(100));
        let t = Instant::now();
        assert!(c.current(t).is_none());
        assert_eq!(c.last_ok(), None);
        assert_eq!(c.store_ok(Assignments::default(), t), None);
        assert!(c.current(t + Duration::from_millis(300)).is_some());
        assert!(c.current(t + Duration::from_millis(301)).is_none());
        assert_eq!(c.store_failed(), Some(true));
        assert_eq!(c.last_ok(), Some(false));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_missing_socket_fails_and_the_task_stops_on_request() {
        let cache = Arc::new(Cache::new(settings(10)));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(refresh(cache.clone(), async {
            let _ = rx.await;
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(cache.last_ok(), Some(false));
        assert!(cache.current(Instant::now()).is_none());
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
