//! Runs every policy on the same jobs (one scenario, one seed) and summarises each run:
//! jobs finished, OOMs, makespan, jobs per hour, queue-wait percentiles and GPU memory-time
//! utilisation. Policies, keyed as in the JSON output: `all_at_once`, `fixed_stagger` (the
//! scenario's stagger tuned with hindsight over jitter draws, [`tuned_stagger`]), `mig` (best maximal layout of the GPU's MIG
//! table, with hindsight), `sequential`, `headroom_cold` (no profiles at first),
//! `headroom_warm` (profiles learned on an earlier run of the same scenario with other
//! jitter) and `oracle`.

use crate::engine::{End, Record, RunResult, Sim, Slot};
use crate::policy::headroom::{Headroom, Knowledge};
use crate::policy::mig::{Mig, maximal_layouts};
use crate::policy::oracle;
use crate::policy::simple::{AllAtOnce, Sequential, Stagger};
use crate::scenario::{Arrivals, Job, Scenario};
use serde::Serialize;
use std::time::Instant;

/// Policy keys in report order.
pub const POLICIES: [&str; 7] = [
    "all_at_once",
    "fixed_stagger",
    "mig",
    "sequential",
    "headroom_cold",
    "headroom_warm",
    "oracle",
];

/// Batches up to this many jobs get the oracle's local search.
const SEARCH_MAX_JOBS: usize = 8;

/// One policy's run, summarised.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PolicyReport {
    /// What was chosen (`60 s`, `3g.40gb+3g.40gb`), when the policy has a choice.
    pub detail: String,
    pub jobs: usize,
    pub finished: usize,
    pub ooms: usize,
    /// OOMs of runs admitted before their workload had a profile (Headroom only).
    pub ooms_first_runs: usize,
    pub never_started: usize,
    pub makespan_s: f64,
    pub jobs_per_hour: f64,
    pub wait_p50_s: f64,
    pub wait_p95_s: f64,
    /// ∫ used memory dt / (usable GPU memory × makespan).
    pub memory_time_utilisation: f64,
    /// Wall-clock seconds the simulation of this policy took (choices included).
    pub sim_seconds: f64,
}

/// Every policy on one scenario and seed.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    pub jobs: usize,
    pub policies: Vec<(String, PolicyReport)>,
    /// Wall-clock seconds for all policies.
    pub sim_seconds: f64,
    #[serde(skip)]
    pub runs: Vec<(String, RunResult)>,
}

impl Report {
    pub fn get(&self, policy: &str) -> Option<&PolicyReport> {
        self.policies.iter().find(|p| p.0 == policy).map(|p| &p.1)
    }

    pub fn run(&self, policy: &str) -> Option<&RunResult> {
        self.runs.iter().find(|p| p.0 == policy).map(|p| &p.1)
    }
}

/// Runs every policy. `trace` records per-tick memory (for charts).
pub fn compare(scenario: &Scenario, seed: u64, trace: bool) -> Report {
    let all = Instant::now();
    let jobs = scenario.jobs(seed);
    let record = Record {
        samples: false,
        trace,
    };
    let whole = whole_gpu(scenario);
    let mut out: Vec<(String, PolicyReport, RunResult)> = Vec::new();

    // Two threads: the baselines and a cold Headroom; the warm-up and a warm Headroom.
    type Done = (&'static str, String, RunResult, f64, usize);
    let (mut first, second): (Vec<Done>, Vec<Done>) = std::thread::scope(|sc| {
        let warm = sc.spawn(|| {
            let t = Instant::now();
            let knowledge = warm_up(scenario, seed);
            let (r, first) = run_headroom(scenario, &jobs, knowledge, record);
            vec![(
                "headroom_warm",
                String::new(),
                r,
                t.elapsed().as_secs_f64(),
                first,
            )]
        });
        let mut done: Vec<Done> = Vec::new();
        let t = Instant::now();
        let r = Sim::new(scenario, &jobs, whole.clone(), record).run(&mut AllAtOnce);
        done.push((
            "all_at_once",
            String::new(),
            r,
            t.elapsed().as_secs_f64(),
            0,
        ));

        let t = Instant::now();
        if let Some(gap) = tuned_stagger(scenario) {
            let r = Sim::new(scenario, &jobs, whole.clone(), record).run(&mut Stagger::new(gap));
            done.push((
                "fixed_stagger",
                format!("{gap:.0} s"),
                r,
                t.elapsed().as_secs_f64(),
                0,
            ));
        }

        if let Some(table) = scenario.gpu.mig {
            let t = Instant::now();
            let mut best: Option<(String, RunResult)> = None;
            for layout in maximal_layouts(table) {
                let slots = layout.slots(&scenario.gpu, &scenario.contention);
                let r = Sim::new(scenario, &jobs, slots, record).run(&mut Mig);
                if best.as_ref().is_none_or(|b| better(&r, &b.1)) {
                    best = Some((layout.name(), r));
                }
            }
            if let Some((name, r)) = best {
                done.push(("mig", name, r, t.elapsed().as_secs_f64(), 0));
            }
        }

        let t = Instant::now();
        let r = Sim::new(scenario, &jobs, whole.clone(), record).run(&mut Sequential);
        done.push(("sequential", String::new(), r, t.elapsed().as_secs_f64(), 0));

        let t = Instant::now();
        let (r, first) = run_headroom(scenario, &jobs, Knowledge::default(), record);
        done.push((
            "headroom_cold",
            String::new(),
            r,
            t.elapsed().as_secs_f64(),
            first,
        ));
        // A panic in the other thread is a bug; report the runs that did finish.
        let second = warm.join().unwrap_or_default();
        (done, second)
    });
    first.extend(second);
    for (key, detail, r, secs, ooms_first) in first {
        let rep = summarise(scenario, &jobs, &r, detail, ooms_first, secs);
        out.push((key.to_string(), rep, r));
    }

    // The oracle plans with every job's true duration and with memory at the top of the
    // noise range (a schedule that fits only because of this run's lucky draw is not one
    // anybody could choose); it starts from the greedy schedule and from every OOM-free
    // run on the whole GPU, and its schedule is then scored on the true jobs.
    let t = Instant::now();
    let planned: Vec<Job> = jobs
        .iter()
        .map(|j| Job {
            memory_factor: 1.0 + scenario.noise.peak,
            ..*j
        })
        .collect();
    let greedy =
        Sim::new(scenario, &planned, whole.clone(), Record::default()).run(&mut oracle::Greedy);
    let mut seeds = vec![oracle::starts_of(&planned, &greedy)];
    for (key, _, r) in &out {
        if key != "mig" && r.jobs.iter().all(|j| j.outcome == Some(End::Completed)) {
            seeds.push(oracle::starts_of(&jobs, r));
        }
    }
    let batch = matches!(scenario.arrivals, Arrivals::Batch(_)) && jobs.len() <= SEARCH_MAX_JOBS;
    let best = if batch {
        oracle::search(scenario, &planned, &whole, &seeds).map(|b| b.0)
    } else {
        seeds
            .iter()
            .filter_map(|s| oracle::evaluate(scenario, &planned, &whole, s).map(|m| (s, m)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|b| b.0.clone())
    };
    let at = best.unwrap_or_else(|| oracle::starts_of(&planned, &greedy));
    let r = oracle::run_schedule(scenario, &jobs, &whole, &at, record);
    let rep = summarise(
        scenario,
        &jobs,
        &r,
        "searched start times".into(),
        0,
        t.elapsed().as_secs_f64(),
    );
    out.push(("oracle".to_string(), rep, r));

    out.sort_by_key(|(k, _, _)| POLICIES.iter().position(|p| p == k));
    let mut policies = Vec::new();
    let mut runs = Vec::new();
    for (k, rep, r) in out {
        policies.push((k.clone(), rep));
        runs.push((k, r));
    }
    Report {
        scenario: scenario.name.clone(),
        seed,
        jobs: jobs.len(),
        policies,
        sim_seconds: all.elapsed().as_secs_f64(),
        runs,
    }
}

/// Jitter draws a stagger is tuned on.
const TUNING_DRAWS: u64 = 20;

/// The stagger an operator would have tuned for this scenario, with hindsight: of the
/// scenario's gaps, the one with the fewest OOMs over [`TUNING_DRAWS`] jitter draws of its
/// jobs, then the shortest mean makespan. (Choosing per run would mean knowing that run's
/// random draws in advance.)
pub fn tuned_stagger(scenario: &Scenario) -> Option<f64> {
    let whole = whole_gpu(scenario);
    let mut best: Option<(f64, (usize, f64))> = None;
    for &gap in &scenario.staggers_s {
        let mut ooms = 0;
        let mut makespan = 0.0;
        for draw in 0..TUNING_DRAWS {
            let jobs = scenario.jobs(0x7475_6E65 + draw);
            let r = Sim::new(scenario, &jobs, whole.clone(), Record::default())
                .run(&mut Stagger::new(gap));
            ooms += r
                .jobs
                .iter()
                .filter(|j| j.outcome.is_some_and(End::is_oom))
                .count();
            makespan += r.end_time;
        }
        let key = (ooms, makespan / TUNING_DRAWS as f64);
        if best
            .as_ref()
            .is_none_or(|b| key.0 < b.1.0 || (key.0 == b.1.0 && key.1 < b.1.1))
        {
            best = Some((gap, key));
        }
    }
    best.map(|b| b.0)
}

/// The whole GPU as one MPS device.
pub fn whole_gpu(scenario: &Scenario) -> Vec<Slot> {
    vec![Slot {
        name: scenario.gpu.name.clone(),
        capacity: scenario.gpu.capacity(),
        speed: 1.0,
        unmanaged: scenario.gpu.unmanaged,
    }]
}

/// Headroom on `jobs`, starting from `knowledge`; also returns how many OOMs were first
/// runs of a workload (admitted without a profile).
pub fn run_headroom(
    scenario: &Scenario,
    jobs: &[Job],
    knowledge: Knowledge,
    record: Record,
) -> (RunResult, usize) {
    let mut policy = Headroom::new(scenario, knowledge);
    let record = Record {
        samples: true,
        ..record
    };
    let r = Sim::new(scenario, jobs, whole_gpu(scenario), record).run(&mut policy);
    let first = policy
        .admitted_unknown
        .iter()
        .filter(|&&j| {
            r.jobs
                .get(j)
                .and_then(|x| x.outcome)
                .is_some_and(End::is_oom)
        })
        .count();
    (r, first)
}

/// Jobs a warm-up sees at most: enough for a full learning window of each workload.
const WARM_UP_JOBS: usize = 60;

/// Profiles learned by a cold Headroom on the same scenario with other jitter (the first
/// [`WARM_UP_JOBS`] jobs of a stream).
pub fn warm_up(scenario: &Scenario, seed: u64) -> Knowledge {
    let mut jobs = scenario.jobs(seed ^ 0x5741_524D);
    jobs.truncate(WARM_UP_JOBS);
    let mut policy = Headroom::new(scenario, Knowledge::default());
    let record = Record {
        samples: true,
        trace: false,
    };
    let _ = Sim::new(scenario, &jobs, whole_gpu(scenario), record).run(&mut policy);
    policy.knowledge
}

/// More jobs finished, then fewer OOMs, then the shorter makespan.
fn better(a: &RunResult, b: &RunResult) -> bool {
    let key = |r: &RunResult| {
        let fin = r
            .jobs
            .iter()
            .filter(|j| j.outcome == Some(End::Completed))
            .count();
        let oom = r
            .jobs
            .iter()
            .filter(|j| j.outcome.is_some_and(End::is_oom))
            .count();
        (fin, std::cmp::Reverse(oom))
    };
    match key(a).cmp(&key(b)) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => a.end_time < b.end_time,
    }
}

fn summarise(
    scenario: &Scenario,
    jobs: &[Job],
    r: &RunResult,
    detail: String,
    ooms_first_runs: usize,
    sim_seconds: f64,
) -> PolicyReport {
    let finished = r
        .jobs
        .iter()
        .filter(|j| j.outcome == Some(End::Completed))
        .count();
    let ooms = r
        .jobs
        .iter()
        .filter(|j| j.outcome.is_some_and(End::is_oom))
        .count();
    let never_started = r.jobs.iter().filter(|j| j.start.is_none()).count();
    let first_arrival = jobs.iter().map(|j| j.arrival).fold(f64::INFINITY, f64::min);
    let first_arrival = if first_arrival.is_finite() {
        first_arrival
    } else {
        0.0
    };
    let makespan = (r.end_time - first_arrival).max(0.0);
    let mut waits: Vec<f64> = jobs
        .iter()
        .zip(&r.jobs)
        .filter_map(|(j, res)| res.start.map(|s| s - j.arrival))
        .collect();
    waits.sort_by(f64::total_cmp);
    let capacity = scenario.gpu.capacity() as f64;
    PolicyReport {
        detail,
        jobs: jobs.len(),
        finished,
        ooms,
        ooms_first_runs,
        never_started,
        makespan_s: makespan,
        jobs_per_hour: if makespan > 0.0 {
            finished as f64 * 3600.0 / makespan
        } else {
            0.0
        },
        wait_p50_s: percentile(&waits, 0.50),
        wait_p95_s: percentile(&waits, 0.95),
        memory_time_utilisation: if makespan > 0.0 && capacity > 0.0 {
            r.memory_time / (capacity * makespan)
        } else {
            0.0
        },
        sim_seconds,
    }
}

/// Nearest-rank percentile of sorted values (0 when empty).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Most processes running at once in a run.
pub(crate) fn peak_concurrency(r: &RunResult) -> u32 {
    let mut events: Vec<(f64, i32)> = Vec::new();
    for j in &r.jobs {
        if let (Some(s), Some(e)) = (j.start, j.end) {
            events.push((s, 1));
            events.push((e, -1));
        }
    }
    // Ends before starts at the same instant.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut now = 0i32;
    let mut peak = 0i32;
    for (_, d) in events {
        now += d;
        peak = peak.max(now);
    }
    u32::try_from(peak).unwrap_or(0)
}
