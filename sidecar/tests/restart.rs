//! Issue 3, acceptance 3: `kill -9` of the daemon while an admitted process runs, then a
//! restart: the run's record is kept, the running child is re-adopted (by pid and start
//! time), its client's final report is accepted by the new daemon, and a request that does
//! not fit beside it is not admitted until it ends (no over-admission in between).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn kill_9_restart_readopts_and_does_not_over_admit() {
    let mut w = World::h100("restart", 40.0);
    w.start_daemon(&[]);
    // 40 GiB declared: a second 45 GiB request cannot fit beside it on 79.18 GiB.
    let first = w.run("ti2v-5b", &["--peak", "40GiB"], &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !w.log().contains("msg=\"admitted\"") {
        assert!(
            Instant::now() < deadline,
            "first job not admitted: {}",
            w.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500)); // it reports its start, the job allocates

    let mut daemon = w.daemon.take().unwrap();
    daemon.kill().unwrap(); // SIGKILL
    daemon.wait().unwrap();

    w.start_daemon(&[]);
    let log = w.log();
    assert!(
        log.contains("re-adopted running process"),
        "not re-adopted:\n{log}"
    );

    let second = w.run("ti2v-5b", &["--peak", "45GiB"], &[]);
    let first_out = first.wait_with_output().unwrap();
    assert!(
        first_out.status.success(),
        "first job: {}",
        String::from_utf8_lossy(&first_out.stderr)
    );
    let second_out = second.wait_with_output().unwrap();
    assert!(
        second_out.status.success(),
        "second job: {}",
        String::from_utf8_lossy(&second_out.stderr)
    );

    let log = w.log();
    let finished = log_ts(&log, &["msg=\"finished\"", "outcome=\"completed\""])
        .unwrap_or_else(|| panic!("first run's end not recorded:\n{log}"));
    let admitted = log_ts(&log, &["msg=\"admitted\""])
        .unwrap_or_else(|| panic!("second never admitted:\n{log}"));
    assert!(
        admitted >= finished,
        "over-admission: second admitted at {admitted}, first ended at {finished}\n{log}"
    );
    // The first run's record survived the crash and completed: its profile was learned.
    let list = String::from_utf8_lossy(&w.profiles(&["list"]).stdout).into_owned();
    assert!(list.contains("ti2v-5b"), "{list}");
}
