//! Xid events in virtual time: single `[[xid]]` events and `[[xid_storm]]` bursts, merged
//! into one ordered stream. A reader keeps only a cursor (the key of the last event it got),
//! so following the stream costs O(1) memory however many events a storm holds.

/// One `[[xid]]`: GPU `gpu` reports `xid` at virtual second `at_s`.
#[derive(Debug, Clone, PartialEq)]
pub struct XidEvent {
    pub gpu: usize,
    pub at_s: f64,
    pub xid: u64,
}

/// One `[[xid_storm]]`: `rate_per_s` events per virtual second from `from_s` for
/// `duration_s` seconds (the k-th at `from_s + k / rate_per_s`).
#[derive(Debug, Clone, PartialEq)]
pub struct XidStorm {
    pub gpu: usize,
    pub from_s: f64,
    pub duration_s: f64,
    pub rate_per_s: f64,
    pub xid: u64,
}

impl XidStorm {
    /// Number of events in the storm.
    pub fn count(&self) -> u64 {
        let n = (self.duration_s * self.rate_per_s).ceil();
        if n.is_finite() && n > 0.0 {
            n as u64
        } else {
            0
        }
    }

    fn time_of(&self, k: u64) -> f64 {
        self.from_s + k as f64 / self.rate_per_s
    }
}

/// Position in the event stream: events are ordered by time, then source, then index
/// within the source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventKey {
    pub t: f64,
    pub source: usize,
    pub k: u64,
}

impl EventKey {
    fn after(&self, other: &EventKey) -> bool {
        self.t
            .total_cmp(&other.t)
            .then(self.source.cmp(&other.source))
            .then(self.k.cmp(&other.k))
            .is_gt()
    }
}

/// An event of the merged stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Delivered {
    pub key: EventKey,
    pub gpu: usize,
    pub xid: u64,
}

/// All Xid sources of a scenario: sources `0..events.len()` are the single events, the
/// storms follow.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct XidSchedule {
    pub events: Vec<XidEvent>,
    pub storms: Vec<XidStorm>,
}

impl XidSchedule {
    /// The first event strictly after `cursor` (from the start when `None`) on a GPU that
    /// `wanted` accepts.
    pub fn next_after(
        &self,
        cursor: Option<EventKey>,
        wanted: impl Fn(usize) -> bool,
    ) -> Option<Delivered> {
        let mut best: Option<Delivered> = None;
        let mut consider = |d: Delivered| {
            if cursor.is_none_or(|c| d.key.after(&c)) && best.is_none_or(|b| b.key.after(&d.key)) {
                best = Some(d);
            }
        };
        for (source, e) in self.events.iter().enumerate() {
            if wanted(e.gpu) {
                consider(Delivered {
                    key: EventKey {
                        t: e.at_s,
                        source,
                        k: 0,
                    },
                    gpu: e.gpu,
                    xid: e.xid,
                });
            }
        }
        for (i, s) in self.storms.iter().enumerate() {
            if !wanted(s.gpu) {
                continue;
            }
            let source = self.events.len() + i;
            let n = s.count();
            // Jump near the cursor, then step over the few events not after it.
            let mut k = match cursor {
                Some(c) if c.t > s.from_s => {
                    (((c.t - s.from_s) * s.rate_per_s).floor() as u64).saturating_sub(1)
                }
                _ => 0,
            };
            while k < n {
                let key = EventKey {
                    t: s.time_of(k),
                    source,
                    k,
                };
                if cursor.is_none_or(|c| key.after(&c)) {
                    consider(Delivered {
                        key,
                        gpu: s.gpu,
                        xid: s.xid,
                    });
                    break;
                }
                k += 1;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> XidSchedule {
        XidSchedule {
            events: vec![
                XidEvent {
                    gpu: 0,
                    at_s: 30.0,
                    xid: 79,
                },
                XidEvent {
                    gpu: 1,
                    at_s: 10.0,
                    xid: 48,
                },
                XidEvent {
                    gpu: 0,
                    at_s: 10.0,
                    xid: 13,
                },
            ],
            storms: vec![XidStorm {
                gpu: 1,
                from_s: 20.0,
                duration_s: 2.0,
                rate_per_s: 5.0,
                xid: 31,
            }],
        }
    }

    fn drain(s: &XidSchedule, wanted: impl Fn(usize) -> bool + Copy) -> Vec<(f64, usize, u64)> {
        let mut cursor = None;
        let mut out = Vec::new();
        while let Some(d) = s.next_after(cursor, wanted) {
            out.push((d.key.t, d.gpu, d.xid));
            cursor = Some(d.key);
        }
        out
    }

    #[test]
    fn merges_in_time_order_each_once() {
        let all = drain(&schedule(), |_| true);
        assert_eq!(all.len(), 3 + 10);
        assert_eq!(all[0], (10.0, 1, 48));
        assert_eq!(all[1], (10.0, 0, 13));
        assert_eq!(all[2], (20.0, 1, 31));
        assert!((all[3].0 - 20.2).abs() < 1e-9);
        assert_eq!(all.last(), Some(&(30.0, 0, 79)));
        assert!(all.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn filters_by_gpu() {
        let gpu0 = drain(&schedule(), |g| g == 0);
        assert_eq!(gpu0, vec![(10.0, 0, 13), (30.0, 0, 79)]);
    }

    #[test]
    fn large_storm_is_cheap_to_follow() {
        let s = XidSchedule {
            events: vec![],
            storms: vec![XidStorm {
                gpu: 0,
                from_s: 0.0,
                duration_s: 1000.0,
                rate_per_s: 1000.0,
                xid: 31,
            }],
        };
        assert_eq!(s.storms[0].count(), 1_000_000);
        let cursor = EventKey {
            t: 500.0005,
            source: 0,
            k: 500_000,
        };
        let next = s.next_after(Some(cursor), |_| true).unwrap();
        assert_eq!(next.key.k, 500_001);
    }
}
