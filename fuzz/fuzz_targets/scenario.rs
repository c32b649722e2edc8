//! The fake GPU's scenario loader (`fake/src/scenario.rs`, `Scenario::from_toml`: TOML
//! parsing, then validation of every GPU, MIG layout, process, workload, fault and Xid
//! event) on arbitrary text.
//!
//! Properties beyond "no panic": a refused scenario names at least one problem, each with a
//! location and a message, and the error names the file; a loaded one is deterministic
//! (loading it again gives an equal scenario) and keeps what validation promises: GPUs
//! numbered in order, GPU and MIG UUIDs and pids unique, reserved memory within the total,
//! faults and Xid events on existing GPUs, storms of at most 10,000,000 events, workload
//! timelines starting at 0 s, a positive finite time scale. Memory tracks answer at any time
//! without panicking.
#![no_main]
#![forbid(unsafe_code)]

use headroom_fake::Scenario;
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;

const ORIGIN: &str = "fuzz.toml";

fn check_loaded(s: &Scenario, text: &str) {
    assert_eq!(Scenario::from_toml(text, ORIGIN).ok().as_ref(), Some(s));
    assert!(s.time_scale.is_finite() && s.time_scale > 0.0);
    let mut uuids = HashSet::new();
    let mut pids = HashSet::new();
    for (i, g) in s.gpus.iter().enumerate() {
        assert_eq!(g.index, i);
        assert!(uuids.insert(g.uuid.as_str()), "uuid {} twice", g.uuid);
        assert!(g.memory_reserved <= g.memory_total, "gpu[{i}]");
        for (slot, m) in g.migs.iter().enumerate() {
            assert_eq!(m.slot, slot);
            assert!(uuids.insert(m.uuid.as_str()), "uuid {} twice", m.uuid);
        }
        for p in &g.processes {
            assert!(pids.insert(p.pid), "pid {} twice", p.pid);
            if let Some(slot) = p.mig {
                assert!(
                    slot < g.migs.len(),
                    "process {} in missing MIG {slot}",
                    p.pid
                );
            }
            for t in [0.0, 0.5, 1e3, 1e9, f64::MAX] {
                let _ = p.memory.at(t);
            }
            let _ = p.memory.breakpoints(1e6);
        }
    }
    let mut names = HashSet::new();
    for w in &s.workloads {
        assert!(!w.name.trim().is_empty() && names.insert(w.name.as_str()));
        assert_eq!(w.timeline.start(), 0.0);
        assert!(w.timeline.end() > 0.0);
        let _ = (w.duration_s(), w.peak_bytes());
    }
    for f in &s.faults {
        if let Some(g) = f.gpu {
            assert!(g < s.gpus.len());
        }
    }
    for e in &s.xids.events {
        assert!(e.gpu < s.gpus.len() && e.xid > 0);
    }
    for storm in &s.xids.storms {
        assert!(storm.gpu < s.gpus.len() && storm.count() <= 10_000_000);
    }
}

fuzz_target!(|data: &[u8]| {
    // Scenario files are read with `read_to_string`: only UTF-8 reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Scenario::from_toml(text, ORIGIN) {
        Ok(s) => check_loaded(&s, text),
        Err(e) => {
            let problems = e.problems();
            assert!(!problems.is_empty(), "{e}");
            for p in problems {
                assert!(!p.at.is_empty() && !p.message.is_empty(), "{p:?}");
            }
            assert!(
                e.to_string().starts_with(&format!("scenario {ORIGIN}: ")),
                "{e}"
            );
        }
    }
});
