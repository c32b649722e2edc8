//! State shared between the sampler thread and the HTTP server: the latest published
//! snapshot (swapped whole, so a scrape never waits for NVML), a readiness latch (set by the
//! first publish) and the sampler's heartbeat for liveness.

use crate::published::Published;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Shared {
    latest: RwLock<Option<Arc<Published>>>,
    ready: AtomicBool,
    started: Instant,
    /// Milliseconds after `started` of the sampler's last heartbeat.
    heartbeat_ms: AtomicU64,
    /// The sampling interval, for judging the heartbeat.
    pub interval: Duration,
}

impl Shared {
    pub fn new(interval: Duration) -> Self {
        Self {
            latest: RwLock::new(None),
            ready: AtomicBool::new(false),
            started: Instant::now(),
            heartbeat_ms: AtomicU64::new(0),
            interval,
        }
    }

    pub fn publish(&self, p: Arc<Published>) {
        match self.latest.write() {
            Ok(mut g) => *g = Some(p),
            Err(poisoned) => *poisoned.into_inner() = Some(p),
        }
        self.ready.store(true, Ordering::Release);
        self.beat();
    }

    pub fn latest(&self) -> Option<Arc<Published>> {
        match self.latest.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn beat(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.heartbeat_ms.store(ms, Ordering::Relaxed);
    }

    /// Time since the sampler last showed life.
    pub fn since_heartbeat(&self) -> Duration {
        let beat = Duration::from_millis(self.heartbeat_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(beat)
    }
}
