//! `headroom-bench admission`: the goodput benchmark. Runs every policy of
//! `headroom-sim` on the same jobs of one scenario and prints, per policy, jobs finished,
//! OOMs, makespan, jobs per hour, p50/p95 queue wait and GPU memory-time utilisation
//! (`--json`: one object keyed by policy name). `--seeds N` repeats over N seeds and adds a
//! summary of Headroom (warm) against the oracle and the best fixed stagger (per seed, and
//! mean makespans over the seeds); `--chart PNG`
//! draws memory over time per policy for the first seed.

use anyhow::Context;
use headroom_sim::{POLICIES, Report, Scenario, compare};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Goodput scenario file (scenarios/goodput/*.toml).
    #[arg(long)]
    scenario: PathBuf,
    /// Seed of the arrivals and the per-run jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run this many seeds (seed, seed+1, ...) and summarise them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    seeds: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write a PNG of memory over time per policy (first seed).
    #[arg(long)]
    chart: Option<PathBuf>,
}

pub fn run(a: &Args) -> anyhow::Result<()> {
    let scenario = Scenario::load(&a.scenario)?;
    let started = Instant::now();
    let mut reports = Vec::new();
    for i in 0..a.seeds {
        let seed = a.seed.wrapping_add(i);
        reports.push(compare(&scenario, seed, i == 0 && a.chart.is_some()));
    }
    let wall = started.elapsed().as_secs_f64();
    if let (Some(path), Some(first)) = (&a.chart, reports.first()) {
        crate::chart::draw(path, &scenario, first)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if a.json {
        let value = if reports.len() == 1 {
            reports.first().map(json_of).unwrap_or_default()
        } else {
            serde_json::json!({
                "scenario": scenario.name,
                "seeds": reports.iter().map(json_of).collect::<Vec<_>>(),
                "summary": summary(&reports),
                "sim_seconds": wall,
            })
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    for r in &reports {
        print_table(r);
    }
    if reports.len() > 1 {
        let s = summary(&reports);
        println!("{} seeds: {}", reports.len(), serde_json::to_string(&s)?);
    }
    println!("simulated in {wall:.3} s (wall clock)");
    Ok(())
}

fn json_of(r: &Report) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    obj.insert("scenario".into(), r.scenario.clone().into());
    obj.insert("seed".into(), r.seed.into());
    obj.insert("jobs".into(), r.jobs.into());
    obj.insert("sim_seconds".into(), r.sim_seconds.into());
    for (k, p) in &r.policies {
        obj.insert(k.clone(), serde_json::to_value(p).unwrap_or_default());
    }
    serde_json::Value::Object(obj)
}

/// Headroom (warm) against the oracle and the tuned stagger over all seeds.
fn summary(reports: &[Report]) -> serde_json::Value {
    let mut warm_ooms = 0;
    let mut cold_ooms = 0;
    let mut cold_ooms_later_runs = 0;
    let mut stagger_ooms = 0;
    let mut sums: std::collections::BTreeMap<&str, f64> = std::collections::BTreeMap::new();
    let mut stagger_ooms_any = false;
    let mut worst_vs_oracle: f64 = 0.0;
    let mut worst_vs_stagger: f64 = 0.0;
    let mut slower_than_stagger = 0;
    for r in reports {
        let (Some(w), Some(c), Some(o), Some(s)) = (
            r.get("headroom_warm"),
            r.get("headroom_cold"),
            r.get("oracle"),
            r.get("fixed_stagger"),
        ) else {
            continue;
        };
        for key in POLICIES {
            if let Some(p) = r.get(key) {
                *sums.entry(key).or_default() += p.makespan_s;
            }
        }
        stagger_ooms_any |= s.ooms > 0;
        warm_ooms += w.ooms;
        cold_ooms += c.ooms;
        cold_ooms_later_runs += c.ooms - c.ooms_first_runs;
        stagger_ooms += s.ooms;
        if o.makespan_s > 0.0 {
            worst_vs_oracle = worst_vs_oracle.max(w.makespan_s / o.makespan_s);
        }
        if s.makespan_s > 0.0 && s.ooms == 0 {
            worst_vs_stagger = worst_vs_stagger.max(w.makespan_s / s.makespan_s);
            if w.makespan_s > s.makespan_s {
                slower_than_stagger += 1;
            }
        }
    }
    let n = reports.len().max(1) as f64;
    let mean: serde_json::Map<String, serde_json::Value> = sums
        .iter()
        .map(|(k, v)| ((*k).to_string(), (v / n).into()))
        .collect();
    // The stagger is a baseline for makespan only where it never ran out of memory: on a
    // seed where it did, it lost a job, and its makespan on the lucky seeds alone would be
    // survivorship.
    let mean_vs_stagger = match (sums.get("headroom_warm"), sums.get("fixed_stagger")) {
        (Some(w), Some(s)) if !stagger_ooms_any && *s > 0.0 => serde_json::Value::from(w / s),
        _ => serde_json::Value::Null,
    };
    serde_json::json!({
        "seeds": reports.len(),
        "mean_makespan_s": mean,
        "mean_warm_makespan_over_stagger": mean_vs_stagger,
        "headroom_warm_ooms": warm_ooms,
        "headroom_cold_ooms": cold_ooms,
        "headroom_cold_ooms_after_first_run": cold_ooms_later_runs,
        "fixed_stagger_ooms": stagger_ooms,
        "worst_warm_makespan_over_oracle": worst_vs_oracle,
        "worst_warm_makespan_over_oom_free_stagger": worst_vs_stagger,
        "seeds_warm_slower_than_oom_free_stagger": slower_than_stagger,
    })
}

fn print_table(r: &Report) {
    println!(
        "scenario: {} (seed {}, {} jobs)",
        r.scenario, r.seed, r.jobs
    );
    println!(
        "{:<14} {:>8} {:>5} {:>10} {:>9} {:>9} {:>9} {:>8}  choice",
        "policy", "finished", "OOMs", "makespan", "jobs/h", "wait p50", "wait p95", "mem-time"
    );
    for key in POLICIES {
        let Some(p) = r.get(key) else {
            println!("{key:<14} {:>8}", "n/a");
            continue;
        };
        println!(
            "{:<14} {:>4}/{:<3} {:>5} {:>9.0}s {:>9.2} {:>8.0}s {:>8.0}s {:>7.1}%  {}",
            key,
            p.finished,
            p.jobs,
            p.ooms,
            p.makespan_s,
            p.jobs_per_hour,
            p.wait_p50_s,
            p.wait_p95_s,
            p.memory_time_utilisation * 100.0,
            p.detail
        );
    }
    println!();
}
