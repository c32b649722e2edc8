//! The `xid` collector: Xid critical-error events, counted per GPU and Xid, from an NVML
//! event set that a listener thread waits on (`nvmlEventSetCreate`,
//! `nvmlDeviceRegisterEvents`, `nvmlEventSetWait_v2`, `nvmlEventSetFree`). Counts only grow;
//! memory is one entry per (GPU, Xid) seen, however many events arrive.

use crate::nvml::{CallError, NvmlBackend};
use nvml_wrapper::bitmasks::event::EventTypes;
use nvml_wrapper::enums::event::XidError;
use nvml_wrapper::error::NvmlError;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long one wait blocks; bounds how fast the listener notices `stop`.
const WAIT: Duration = Duration::from_millis(250);

/// Counts shared between the listener and the sampler.
#[derive(Debug, Default)]
pub struct XidCounts {
    inner: Mutex<XidState>,
}

#[derive(Debug, Default, Clone)]
pub struct XidState {
    /// (GPU index, Xid) → events seen.
    pub counts: BTreeMap<(u32, u64), u64>,
    /// Why the listener is not (fully) working, if it is not.
    pub error: Option<CallError>,
    /// Whether the listener has registered and is waiting.
    pub listening: bool,
}

impl XidCounts {
    /// A copy of the current state.
    pub fn state(&self) -> XidState {
        self.inner
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn update(&self, f: impl FnOnce(&mut XidState)) {
        let mut guard = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard);
    }
}

/// Calls of the wait loop: their error clears once a wait succeeds again (with an event or a
/// timeout). Errors of setting up the event set stay.
const LOOP_CALLS: [&str; 2] = ["nvmlEventSetWait_v2", "nvmlDeviceGetIndex"];

fn clear_loop_error(s: &mut XidState) {
    if s.error
        .as_ref()
        .is_some_and(|e| LOOP_CALLS.contains(&e.call))
    {
        s.error = None;
    }
}

/// Waits for Xid events until told to stop.
#[derive(Debug)]
pub struct XidListener<'a> {
    pub backend: &'a NvmlBackend,
    pub counts: &'a XidCounts,
    pub stop: &'a AtomicBool,
}

impl XidListener<'_> {
    /// Runs on its own thread until `stop` is set.
    pub fn run(self) {
        let nvml = self.backend.nvml();
        let mut set = match nvml.create_event_set() {
            Ok(s) => s,
            Err(e) => {
                self.counts
                    .update(|s| s.error = Some(CallError::new("nvmlEventSetCreate", None, &e)));
                return;
            }
        };
        let count = match self.backend.device_count() {
            Ok(c) => c,
            Err(e) => {
                self.counts.update(|s| s.error = Some(e));
                return;
            }
        };
        // Register only devices that support Xid events; a registration that still fails
        // releases the whole set (NVML's rule), so the listener reports it and stops.
        let mut registered = 0;
        for index in 0..count {
            let Ok(device) = self.backend.device(index) else {
                continue;
            };
            match device.supported_event_types() {
                Ok(t) if t.contains(EventTypes::CRITICAL_XID_ERROR) => {}
                Ok(_) | Err(NvmlError::NotSupported) => continue,
                Err(e) => {
                    let err = CallError::new(
                        "nvmlDeviceGetSupportedEventTypes",
                        Some(index.to_string()),
                        &e,
                    );
                    self.counts.update(|s| s.error = Some(err));
                    continue;
                }
            }
            match device.register_events(EventTypes::CRITICAL_XID_ERROR, set) {
                Ok(s) => {
                    set = s;
                    registered += 1;
                }
                Err(e) => {
                    let err = CallError::new(
                        "nvmlDeviceRegisterEvents",
                        Some(index.to_string()),
                        &e.error,
                    );
                    self.counts.update(|s| s.error = Some(err));
                    return;
                }
            }
        }
        self.counts.update(|s| s.listening = registered > 0);
        let wait_ms = u32::try_from(WAIT.as_millis()).unwrap_or(250);
        while !self.stop.load(Ordering::Relaxed) {
            match set.wait(wait_ms) {
                Ok(event) => {
                    let xid = match event.event_data {
                        Some(XidError::Value(x)) => x,
                        _ => continue,
                    };
                    match event.device.index() {
                        Ok(i) => self.counts.update(|s| {
                            *s.counts.entry((i, xid)).or_insert(0) += 1;
                            clear_loop_error(s);
                        }),
                        // The event cannot be attributed to a GPU: it is lost, and reported.
                        Err(e) => self.counts.update(|s| {
                            s.error = Some(CallError::new("nvmlDeviceGetIndex", None, &e));
                        }),
                    }
                }
                Err(NvmlError::Timeout) => self.counts.update(clear_loop_error),
                Err(e) => {
                    self.counts.update(|s| {
                        s.error = Some(CallError::new("nvmlEventSetWait_v2", None, &e))
                    });
                    std::thread::sleep(WAIT);
                }
            }
        }
    }
}
