//! NVML faults under the admission daemon: while the device's memory cannot be read (an
//! injected `NO_PERMISSION` on `nvmlDeviceGetMemoryInfo_v2`), a real `headroom-sidecar run`
//! waits with reason `device_memory_unknown` and is never admitted; once the memory reads
//! again it is admitted and completes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn status(w: &World) -> String {
    let mut s = UnixStream::connect(&w.socket).unwrap();
    write!(
        s,
        "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

#[test]
fn unknown_device_memory_queues_and_never_admits() {
    const SCALE: f64 = 40.0;
    let mut w = World::h100("faults", SCALE);
    // Memory unreadable from 3 s to 9 s of wall time after the epoch written here.
    let text = std::fs::read_to_string(&w.scenario).unwrap();
    let fault = format!(
        "\n[[fault]]\ncall = \"nvmlDeviceGetMemoryInfo_v2\"\ngpu = 0\nerror = \"NO_PERMISSION\"\nfrom_s = {}\nuntil_s = {}\n",
        3.0 * SCALE,
        9.0 * SCALE
    );
    std::fs::write(&w.scenario, text + &fault).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    std::fs::write(w.fake_state.join("epoch"), format!("{}", now.as_secs_f64())).unwrap();
    let t0 = Instant::now();
    w.start_daemon(&[]);
    std::thread::sleep(Duration::from_secs_f64(3.5).saturating_sub(t0.elapsed()));
    let job = w.run("ti2v-5b", &["--peak", "36GiB"], &[]);
    // The client reaches the queue...
    let deadline = Instant::now() + Duration::from_secs(3);
    while !status(&w).contains("\"queued\":1") {
        assert!(Instant::now() < deadline, "never queued: {}", status(&w));
        std::thread::sleep(Duration::from_millis(20));
    }
    // ...and stays there while the memory is unknown.
    let mut polls = 0;
    while t0.elapsed() < Duration::from_secs_f64(8.5) {
        let st = status(&w);
        assert!(
            st.contains("\"queued\":1") && st.contains("\"running\":0"),
            "admitted while device memory is unknown: {st}"
        );
        polls += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(polls > 20, "{polls} polls");
    let out = job.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}\n{}", w.log());
    assert!(stderr.contains("(device_memory_unknown)"), "{stderr}");
    let admitted = t0.elapsed();
    assert!(
        admitted > Duration::from_secs(9),
        "finished at {admitted:?}"
    );
}
