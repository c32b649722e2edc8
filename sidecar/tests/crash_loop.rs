//! Crash harness (issue 7, "Crashes"): `kill -9` of the real daemon at random moments (seeded)
//! while a stream of real `headroom-sidecar run` clients launch real `fake-gpu-job`
//! processes, restarting it on the same state directory each time. Checked from the store's
//! own records (the SQLite file opened read-only by the test), after every kill and every
//! restart:
//!
//! - `PRAGMA integrity_check` is `ok`;
//! - no committed run is lost: every run seen in the store (just before the kill, right after
//!   it, and after the restart) is still there, with the same admission record and a state
//!   that never goes back (admitted → running → an end; an end never changes);
//! - the admission invariant: at every admission, the reservations of the runs the store
//!   records as admitted or running on the device sum to at most capacity − reserve.
//!
//! At the end, against what the clients saw: every admission a client was told about is in
//! the store; no admission started two processes and no client started two; every outcome a
//! client reported successfully is the stored one; nothing is left open.
//!
//! What a `run` client does when the daemon vanishes (see `sidecar/src/launch.rs`): while
//! queued it exits 3 (connection refused, or 404 from the restarted daemon, which does not
//! keep queues); once its child runs it keeps it running, reports the start and the end when
//! it can, and exits with the child's status. It never retries a request, so it never starts a
//! second process. The restarted daemon re-adopts running children (pid + start time) and
//! closes everything else as `interrupted`.
//!
//! CI runs [`CI_KILLS`] kills (about 30 s); `HEADROOM_FULL=1` runs [`FULL_KILLS`] (the
//! figures in docs/reliability.md). `HEADROOM_CRASH_SEED` picks the seed (printed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use rusqlite::{Connection, OpenFlags};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CI_KILLS: usize = 25;
/// Full run (`HEADROOM_FULL=1`).
const FULL_KILLS: usize = 250;
const DEFAULT_SEED: u64 = 0x4865_6164_726f_6f6d;
/// `run` clients alive at once.
const IN_FLIGHT: usize = 6;
const GIB: u64 = 1 << 30;
/// `--reserve` given to the daemon.
const RESERVE: u64 = 2 * GIB;

/// Job classes: (workload, declared peak GiB, fake workload, its flat memory, virtual s).
/// At 40× virtual time they last 0.3–0.75 s alone; three fit at once (75 ≤ 77.18 GiB).
const CLASSES: [(&str, u64, &str, u64, u32); 3] = [
    ("crash-a", 20, "flat-20g", 20, 20),
    ("crash-b", 25, "flat-25g", 25, 30),
    ("crash-c", 30, "flat-30g", 30, 12),
];

fn full() -> bool {
    std::env::var("HEADROOM_FULL").is_ok_and(|v| v == "1")
}

/// splitmix64: a seeded, dependency-free RNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Run {
    id: String,
    workload: String,
    device: String,
    state: String,
    admitted_at: f64,
    started_at: Option<f64>,
    ended_at: Option<f64>,
    pid: Option<i64>,
    pid_start_time: Option<i64>,
    reserved: u64,
    limit: u64,
    exit_code: Option<i64>,
}

fn rank(state: &str) -> u8 {
    match state {
        "admitted" => 0,
        "running" => 1,
        _ => 2,
    }
}

/// Opens the daemon's database read-only (never writing, never checkpointing) and returns
/// `PRAGMA integrity_check` and every run.
fn read_store(db: &Path) -> (String, BTreeMap<String, Run>) {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap_or_else(|e| panic!("opening {} read-only: {e}", db.display()));
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT id, workload, device, state, admitted_at, started_at, ended_at, pid,
                    pid_start_time, reserved_bytes, memory_limit_bytes, exit_code FROM runs",
        )
        .unwrap();
    let runs = stmt
        .query_map([], |r| {
            Ok(Run {
                id: r.get(0)?,
                workload: r.get(1)?,
                device: r.get(2)?,
                state: r.get(3)?,
                admitted_at: r.get(4)?,
                started_at: r.get(5)?,
                ended_at: r.get(6)?,
                pid: r.get(7)?,
                pid_start_time: r.get(8)?,
                reserved: r.get::<_, i64>(9)? as u64,
                limit: r.get::<_, i64>(10)? as u64,
                exit_code: r.get(11)?,
            })
        })
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (r.id.clone(), r)
        })
        .collect();
    (integrity, runs)
}

/// Every run of `old` is in `new` with the same admission record and a state not gone back.
fn check_kept(when: &str, old: &BTreeMap<String, Run>, new: &BTreeMap<String, Run>) {
    for (id, o) in old {
        let n = new
            .get(id)
            .unwrap_or_else(|| panic!("{when}: committed run {id} lost ({o:?})"));
        assert_eq!(
            (&n.workload, &n.device, n.admitted_at, n.reserved, n.limit),
            (&o.workload, &o.device, o.admitted_at, o.reserved, o.limit),
            "{when}: admission record of {id} changed"
        );
        assert!(
            rank(&n.state) >= rank(&o.state),
            "{when}: run {id} went back from {} to {}",
            o.state,
            n.state
        );
        if rank(&o.state) == 2 {
            assert_eq!(
                (&n.state, n.ended_at, n.exit_code),
                (&o.state, o.ended_at, o.exit_code),
                "{when}: finished run {id} changed"
            );
        }
        if o.pid.is_some() {
            assert_eq!(
                (n.pid, n.pid_start_time, n.started_at),
                (o.pid, o.pid_start_time, o.started_at),
                "{when}: process of run {id} changed"
            );
        }
    }
}

/// The admission invariant over the whole recorded history: sweeping admissions and ends in
/// time order, the reservations open on a device never exceed `budget` after an admission.
/// Returns the largest sum seen.
fn check_invariant(when: &str, runs: &BTreeMap<String, Run>, budget: u64) -> u64 {
    let mut by_device: HashMap<&str, Vec<(f64, bool, u64, &str)>> = HashMap::new();
    for r in runs.values() {
        let ev = by_device.entry(&r.device).or_default();
        ev.push((r.admitted_at, true, r.reserved, &r.id));
        if let Some(e) = r.ended_at {
            assert!(
                e >= r.admitted_at,
                "{when}: run {} ends before it starts",
                r.id
            );
            ev.push((e, false, r.reserved, &r.id));
        }
    }
    let mut worst = 0;
    for (device, mut ev) in by_device {
        // Ends before admissions at the same instant (intervals are [admitted, ended)).
        ev.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut open: u64 = 0;
        for (t, admit, bytes, id) in ev {
            if admit {
                open += bytes;
                worst = worst.max(open);
                assert!(
                    open <= budget,
                    "{when}: admission invariant broken on {device} at {t:.3} by run {id}: {open} B reserved > budget {budget} B"
                );
            } else {
                open -= bytes;
            }
        }
    }
    worst
}

/// What one `run` client did.
#[derive(Debug)]
struct ClientResult {
    class: usize,
    code: Option<i32>,
    stderr: String,
}

impl ClientResult {
    fn admissions(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter_map(|l| l.strip_prefix("crash-loop: admission "))
            .map(str::trim)
            .collect()
    }

    fn started_pid(&self) -> Option<i64> {
        self.stderr
            .lines()
            .find_map(|l| l.split(" as pid ").nth(1))
            .and_then(|p| p.trim().parse().ok())
    }
}

/// What a client needs of the world.
#[derive(Debug, Clone)]
struct ClientEnv {
    socket: PathBuf,
    scenario: PathBuf,
    fake_state: PathBuf,
}

fn spawn_client(w: &ClientEnv, class: usize) -> std::process::Child {
    let (workload, peak, fake, _, _) = CLASSES[class];
    // The child is a real process that names its admission (from the environment the daemon
    // chose) and then becomes the fake job: `sh` execs it, so the pid the client reports is
    // the job's.
    Command::new(sidecar_bin())
        .arg("run")
        .arg("--socket")
        .arg(&w.socket)
        .args(["--workload", workload, "--peak", &format!("{peak}GiB")])
        .args(["--timeout", "20s", "--", "sh", "-c"])
        .arg(r#"echo "crash-loop: admission $HEADROOM_ADMISSION_ID" >&2; exec "$0" "$@""#)
        .arg(target_bin("fake-gpu-job"))
        .args(["--workload", fake])
        .env("HEADROOM_FAKE_SCENARIO", &w.scenario)
        .env("HEADROOM_FAKE_STATE_DIR", &w.fake_state)
        .env_remove("HEADROOM_FAKE_FREEZE_AT")
        .env_remove("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT")
        .env_remove("CUDA_VISIBLE_DEVICES")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Keeps [`IN_FLIGHT`] clients running until `stop`; each finished client's result is kept.
fn submitter(
    w: ClientEnv,
    seed: u64,
    stop: Arc<AtomicBool>,
    results: Arc<Mutex<Vec<ClientResult>>>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut rng = Rng(seed ^ 0x5eed);
        let live = Arc::new(AtomicUsize::new(0));
        let mut reapers = Vec::new();
        let mut submitted = 0;
        while !stop.load(Ordering::SeqCst) {
            if live.load(Ordering::SeqCst) >= IN_FLIGHT {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let class = rng.below(CLASSES.len() as u64) as usize;
            let child = spawn_client(&w, class);
            submitted += 1;
            live.fetch_add(1, Ordering::SeqCst);
            let (live, results) = (live.clone(), results.clone());
            reapers.push(std::thread::spawn(move || {
                let out = child.wait_with_output().unwrap();
                results.lock().unwrap().push(ClientResult {
                    class,
                    code: out.status.code(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                });
                live.fetch_sub(1, Ordering::SeqCst);
            }));
            std::thread::sleep(Duration::from_millis(rng.below(80)));
        }
        for r in reapers {
            r.join().unwrap();
        }
        submitted
    })
}

fn scenario_with_flat_workloads(w: &World) {
    let mut text = std::fs::read_to_string(&w.scenario).unwrap();
    for (_, _, fake, gib, secs) in CLASSES {
        text.push_str(&format!(
            "\n[[workload]]\nname = \"{fake}\"\ntimeline = [[0, \"{gib}GiB\"], [{secs}, \"{gib}GiB\"]]\n"
        ));
    }
    std::fs::write(&w.scenario, text).unwrap();
}

fn status_capacity(socket: &Path) -> u64 {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    write!(
        s,
        "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let body = out.split_once("\r\n\r\n").unwrap().1;
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["devices"][0]["capacity_bytes"].as_u64().unwrap()
}

fn restart(w: &mut World, extra: &[&str], readopted: &mut usize, closed: &mut usize) {
    w.start_daemon(extra);
    let log = w.log();
    *readopted += log.matches("re-adopted running process").count();
    *closed += log
        .matches("closing run left open by a previous daemon")
        .count();
}

#[test]
fn kill_9_at_random_moments_loses_nothing() {
    let kills = if full() { FULL_KILLS } else { CI_KILLS };
    let seed = std::env::var("HEADROOM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    eprintln!("crash loop: {kills} kills, seed {seed}");
    let mut rng = Rng(seed);
    let t_start = Instant::now();

    let mut w = World::h100("crash", 40.0);
    scenario_with_flat_workloads(&w);
    let extra = ["--reserve", "2GiB"];
    w.start_daemon(&extra);
    let db: PathBuf = w.state.join("headroom.db");
    let capacity = status_capacity(&w.socket);
    assert_eq!(capacity, 81079 << 20, "H100 capacity (81559 - 480 MiB)");
    let budget = capacity - RESERVE;

    let env = ClientEnv {
        socket: w.socket.clone(),
        scenario: w.scenario.clone(),
        fake_state: w.fake_state.clone(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let results = Arc::new(Mutex::new(Vec::new()));
    let sub = submitter(env, seed, stop.clone(), results.clone());

    let mut known: BTreeMap<String, Run> = BTreeMap::new();
    let (mut readopted, mut closed, mut worst) = (0, 0, 0);
    let mut runs_at_kill = Vec::new();
    for k in 0..kills {
        // A random moment up to 1.2 s after the daemon is up (some while it still
        // re-adopts and re-plans, most while jobs run and report).
        std::thread::sleep(Duration::from_millis(rng.below(1200)));
        let (integrity, alive) = read_store(&db);
        assert_eq!(integrity, "ok", "kill {k}: live database");
        check_kept(&format!("kill {k}, live"), &known, &alive);

        let mut daemon = w.daemon.take().unwrap();
        daemon.kill().unwrap(); // SIGKILL
        daemon.wait().unwrap();

        let (integrity, crashed) = read_store(&db);
        assert_eq!(integrity, "ok", "kill {k}: database after kill -9");
        check_kept(&format!("kill {k}, after the kill"), &alive, &crashed);
        runs_at_kill.push(crashed.values().filter(|r| rank(&r.state) < 2).count());

        restart(&mut w, &extra, &mut readopted, &mut closed);
        let (integrity, restarted) = read_store(&db);
        assert_eq!(integrity, "ok", "kill {k}: database after restart");
        check_kept(&format!("kill {k}, after restart"), &crashed, &restarted);
        worst = worst.max(check_invariant(
            &format!("kill {k}, after restart"),
            &restarted,
            budget,
        ));
        known = restarted;
    }

    // Drain: no more clients; every client ends (bounded by --timeout and the job length).
    stop.store(true, Ordering::SeqCst);
    let submitted = sub.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (integrity, last) = loop {
        let (integrity, runs) = read_store(&db);
        if runs.values().all(|r| rank(&r.state) == 2) {
            break (integrity, runs);
        }
        assert!(
            Instant::now() < deadline,
            "runs left open after every client ended: {:?}\n{}",
            runs.values()
                .filter(|r| rank(&r.state) < 2)
                .collect::<Vec<_>>(),
            w.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(integrity, "ok", "final database");
    check_kept("final", &known, &last);
    worst = worst.max(check_invariant("final", &last, budget));

    // Against what the clients saw.
    let results = results.lock().unwrap();
    assert_eq!(results.len(), submitted);
    let mut codes: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_admission: HashMap<&str, &ClientResult> = HashMap::new();
    for c in results.iter() {
        let adm = c.admissions();
        assert!(
            adm.len() <= 1,
            "a client started {} processes:\n{}",
            adm.len(),
            c.stderr
        );
        let oom = c.stderr.contains("CUDA out of memory");
        let daemon_gone = [
            "cannot reach the headroom-sidecar daemon",
            "talking to the daemon",
            "the daemon refused",
            "malformed response",
        ]
        .iter()
        .any(|m| c.stderr.contains(m));
        let label = match c.code {
            Some(0) => "0 completed",
            Some(1) if oom => "1 job out of memory",
            Some(3) if daemon_gone => "3 daemon gone while queued",
            Some(75) => "75 still queued at --timeout",
            other => panic!("unexpected client exit {other:?}:\n{}", c.stderr),
        };
        *codes.entry(label.to_string()).or_default() += 1;
        if c.code == Some(3) {
            assert!(
                adm.is_empty(),
                "exit 3 after starting a child:\n{}",
                c.stderr
            );
        }
        let Some(id) = adm.first() else { continue };
        assert!(
            by_admission.insert(id, c).is_none(),
            "admission {id} started two processes"
        );
        let run = last
            .get(*id)
            .unwrap_or_else(|| panic!("admission {id} told to a client is not in the store"));
        assert_eq!(run.workload, CLASSES[c.class].0, "admission {id}");
        let start_reported = !c.stderr.contains("could not report the start");
        let end_reported = !c.stderr.contains("could not report the outcome");
        if start_reported {
            assert_eq!(run.pid, c.started_pid(), "admission {id}: pid");
        }
        if start_reported && end_reported {
            let want = match c.code {
                Some(0) => "completed",
                Some(1) => "oom",
                _ => "failed",
            };
            assert_eq!(run.state, want, "admission {id}: acknowledged outcome");
        }
    }
    assert!(
        last.len() <= submitted,
        "{} runs from {submitted} requests",
        last.len()
    );
    let mut pids: HashMap<(i64, Option<i64>), &str> = HashMap::new();
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for r in last.values() {
        *states.entry(r.state.clone()).or_default() += 1;
        if let Some(pid) = r.pid {
            assert!(
                by_admission.contains_key(r.id.as_str()),
                "run {} has a process no client started",
                r.id
            );
            if let Some(other) = pids.insert((pid, r.pid_start_time), &r.id) {
                panic!("runs {other} and {} share process {pid}", r.id);
            }
        } else if !by_admission.contains_key(r.id.as_str()) {
            // Admitted, but the client never heard of it (the daemon died first).
            assert_eq!(r.state, "interrupted", "orphan admission {}", r.id);
        }
    }
    let started = results
        .iter()
        .filter(|c| !c.admissions().is_empty())
        .count();
    let unreported = |what: &str| {
        results
            .iter()
            .filter(|c| c.stderr.contains(&format!("could not report the {what}")))
            .count()
    };
    let (no_start, no_end) = (unreported("start"), unreported("outcome"));
    assert!(
        codes.get("0 completed").copied().unwrap_or(0) >= kills / 5,
        "too few jobs completed to mean anything: {codes:?}"
    );
    eprintln!(
        "crash loop (seed {seed}): {kills} kill -9s in {:.0} s; {submitted} run clients, \
         {started} started a job ({no_start} could not report the start, {no_end} the \
         outcome); client exits {codes:?}; store: {} runs {states:?}; \
         open runs at the kills: max {} (sum {}); re-adopted {readopted}, closed at restart \
         {closed}; largest reservation sum {:.2} GiB of a {:.2} GiB budget; integrity ok {} times",
        t_start.elapsed().as_secs_f64(),
        last.len(),
        runs_at_kill.iter().max().unwrap_or(&0),
        runs_at_kill.iter().sum::<usize>(),
        worst as f64 / GIB as f64,
        budget as f64 / GIB as f64,
        3 * kills + 1,
    );
}
