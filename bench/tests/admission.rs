//! `headroom-bench admission` as operators run it: the real binary on a shipped scenario.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::process::Command;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_headroom-bench"))
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/goodput")
        .join(name)
}

#[test]
fn json_has_every_policy_and_the_chart_is_a_png() {
    let dir = std::env::temp_dir().join(format!("headroom-bench-adm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let chart = dir.join("mem.png");
    let out = bench()
        .args(["admission", "--json", "--seed", "3", "--scenario"])
        .arg(scenario("h100-3x-ti2v5b.toml"))
        .arg("--chart")
        .arg(&chart)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["seed"], 3);
    for key in [
        "all_at_once",
        "fixed_stagger",
        "mig",
        "sequential",
        "headroom_cold",
        "headroom_warm",
        "oracle",
    ] {
        let p = &v[key];
        for field in [
            "finished",
            "ooms",
            "makespan_s",
            "jobs_per_hour",
            "wait_p50_s",
            "wait_p95_s",
            "memory_time_utilisation",
        ] {
            assert!(p[field].is_number(), "{key}.{field} in {p}");
        }
    }
    assert_eq!(v["all_at_once"]["ooms"], 1);
    assert_eq!(v["headroom_warm"]["ooms"], 0);
    assert_eq!(v["headroom_warm"]["finished"], 3);
    let png = std::fs::read(&chart).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!(width, 1200);
    assert!(height > 1000, "one panel per policy: {height}");
    // No temporary file left beside it.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_table_names_every_policy_and_the_time_taken() {
    let out = bench()
        .args(["admission", "--scenario"])
        .arg(scenario("h100-s2v14b-ti2v5b.toml"))
        .args(["--seeds", "2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for key in [
        "all_at_once",
        "fixed_stagger",
        "mig",
        "sequential",
        "headroom_cold",
        "headroom_warm",
        "oracle",
    ] {
        assert_eq!(
            text.matches(&format!("\n{key} ")).count(),
            2,
            "{key} in {text}"
        );
    }
    assert!(text.contains("simulated in "), "{text}");
    assert!(text.contains("\"headroom_warm_ooms\":0"), "{text}");
}

#[test]
fn bad_input_is_a_usage_error_naming_the_problem() {
    let out = bench()
        .args(["admission", "--scenario", "/nonexistent/x.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/x.toml"), "{err}");

    let bad = std::env::temp_dir().join(format!("headroom-bench-bad-{}.toml", std::process::id()));
    std::fs::write(
        &bad,
        "name = \"x\"\n[gpu]\nname = \"g\"\nmemory_total = \"1GiB\"\nsm_count = 1\n",
    )
    .unwrap();
    let out = bench()
        .args(["admission", "--scenario"])
        .arg(&bad)
        .output()
        .unwrap();
    std::fs::remove_file(&bad).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no [[workload]]") && err.contains("no jobs"),
        "{err}"
    );

    let out = bench()
        .args(["admission", "--seeds", "0", "--scenario"])
        .arg(scenario("h100-3x-ti2v5b.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--seeds"));
}
