//! `headroom-sidecar plan`, run as the real binary: the seeds' MIG facts (layouts that leave
//! no slice idle, wasted compute and memory slices, which model fits which slice, the "max
//! videos in parallel" table), the NVML path through the fake NVML (`--gpu 0 --simulate`),
//! the table check, and invalid input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{repo_root, sidecar_bin};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Output, Stdio};

const WAN22: &str = "scenarios/h100-mps-wan22.toml";

fn plan(args: &[&str]) -> Output {
    Command::new(sidecar_bin())
        .arg("plan")
        .args(args)
        .current_dir(repo_root())
        .env_remove("HEADROOM_SIMULATE")
        .env_remove("HEADROOM_FAKE_SCENARIO")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn json(args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let o = plan(&a);
    assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn options(v: &Value) -> &Vec<Value> {
    v["options"].as_array().unwrap()
}

fn of_kind<'a>(v: &'a Value, kind: &str) -> Vec<&'a Value> {
    options(v).iter().filter(|o| o["kind"] == kind).collect()
}

fn layout<'a>(v: &'a Value, kind: &str, name: &str) -> &'a Value {
    of_kind(v, kind)
        .into_iter()
        .find(|o| o["layout"] == name)
        .unwrap_or_else(|| panic!("no {kind} layout {name}"))
}

fn idle(o: &Value) -> (u64, u64) {
    (
        o["idle_compute_slices"].as_u64().unwrap(),
        o["idle_memory_slices"].as_u64().unwrap(),
    )
}

fn best_parallel(v: &Value, kind: &str) -> u64 {
    of_kind(v, kind)
        .iter()
        .filter(|o| o["feasible"] == true)
        .map(|o| o["jobs_in_parallel"].as_u64().unwrap())
        .max()
        .unwrap_or(0)
}

#[test]
fn h100_layouts_that_leave_no_slice_idle() {
    // A tiny workload fits every slice, so every maximal layout is a feasible option.
    let v = json(&["--gpu", "h100-80gb", "--mix", "tiny=7@1GiB"]);
    let no_idle: BTreeSet<String> = of_kind(&v, "mig")
        .iter()
        .filter(|o| idle(o) == (0, 0))
        .map(|o| o["layout"].as_str().unwrap().to_string())
        .collect();
    // The seed table "Which combinations leave no slice?" (6×1g.10gb + 1g.20gb written as
    // 1g.20gb+6×1g.10gb) ...
    let seed = [
        "7g.80gb",
        "4g.40gb+3g.40gb",
        "3g.40gb+2×2g.20gb",
        "4g.40gb+2g.20gb+1g.20gb",
        "3×2g.20gb+1g.20gb",
        "3g.40gb+2g.20gb+2×1g.10gb",
        "3g.40gb+4×1g.10gb",
        "1g.20gb+6×1g.10gb",
    ];
    for s in seed {
        assert!(no_idle.contains(s), "{s} missing from {no_idle:?}");
    }
    // ... and the three the seed table does not list (docs/planner.md).
    let more = [
        "4g.40gb+1g.20gb+2×1g.10gb",
        "2×2g.20gb+1g.20gb+2×1g.10gb",
        "2g.20gb+1g.20gb+4×1g.10gb",
    ];
    let all: BTreeSet<String> = seed.iter().chain(&more).map(|s| s.to_string()).collect();
    assert_eq!(no_idle, all);
}

#[test]
fn wasted_potential_is_flagged() {
    let v = json(&["--gpu", "h100-80gb", "--mix", "tiny=7@1GiB"]);
    // 3g.40gb + 3g.40gb: all 8 memory slices, 6 of 7 compute slices.
    assert_eq!(idle(layout(&v, "mig", "2×3g.40gb")), (1, 0));
    // 7 × 1g.10gb: all 7 compute slices, 7 of 8 memory slices.
    assert_eq!(idle(layout(&v, "mig", "7×1g.10gb")), (0, 1));
    // And in the table.
    let o = plan(&["--gpu", "h100-80gb", "--mix", "tiny=7@1GiB", "--top", "0"]);
    let text = stdout(&o);
    let row = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(2) == Some(name))
            .unwrap_or_else(|| panic!("no row {name} in\n{text}"))
            .to_string()
    };
    assert!(row("2×3g.40gb").contains(" 1/0 "), "{}", row("2×3g.40gb"));
    assert!(row("7×1g.10gb").contains(" 0/1 "), "{}", row("7×1g.10gb"));
}

#[test]
fn s2v_fits_no_h100_slice_but_7g() {
    let v = json(&["--gpu", "h100-80gb", "--mix", "s2v-14b=1"]);
    let mig = of_kind(&v, "mig");
    assert!(mig.len() > 20);
    for o in mig {
        let has_7g = o["instances"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["profile"] == "7g.80gb");
        assert_eq!(o["feasible"], has_7g, "{}", o["layout"]);
        if !has_7g {
            assert_eq!(o["unplaced"], serde_json::json!(["s2v-14b"]));
        }
    }
    assert_eq!(v["commands"][1], "nvidia-smi mig -cgi 0:0 -C");
    // On a B200 it fits the 3g/4g instances: two at once.
    let v = json(&["--gpu", "b200-180gb", "--mix", "s2v-14b=2"]);
    let o = layout(&v, "mig", "4g.90gb+3g.90gb");
    assert_eq!(
        (o["feasible"].clone(), o["jobs_in_parallel"].clone()),
        (true.into(), 2.into())
    );
}

#[test]
fn max_videos_in_parallel_as_in_the_seeds() {
    // Seeds: H100 MPS 2 (3 staggered) / 1, B200 MPS 5 / 3, H100 MIG 2 / 1, B200 MIG 3-4 / 2.
    for (gpu, workload, mps, mig) in [
        ("h100-80gb", "ti2v-5b", 2, 2),
        ("h100-80gb", "s2v-14b", 1, 1),
        ("b200-180gb", "ti2v-5b", 5, 4),
        ("b200-180gb", "s2v-14b", 3, 2),
    ] {
        let v = json(&["--gpu", gpu, "--mix", &format!("{workload}=8")]);
        assert_eq!(best_parallel(&v, "mps"), mps, "{gpu} {workload} MPS");
        assert_eq!(best_parallel(&v, "mig"), mig, "{gpu} {workload} MIG");
        // The goodput model predicts a makespan for every option that runs the whole mix.
        for o in options(&v) {
            if o["jobs_in_parallel"].as_u64().unwrap_or(0) > 0 && o["kind"] == "mig" {
                assert!(o["makespan_s"].as_f64().is_some_and(|m| m > 0.0), "{o}");
            }
        }
    }
    // H100, TI2V-5B under MPS with admission: the seeds' "3 (staggered)".
    let v = json(&["--gpu", "h100-80gb", "--mix", "ti2v-5b=8"]);
    let mps = options(&v).iter().find(|o| o["kind"] == "mps").unwrap();
    assert_eq!(mps["peak_concurrency"], 3, "{mps}");
    // Three TI2V-5B under MPS admission: the seeds' 10m30s for three a minute apart, ±15 %.
    let v = json(&["--gpu", "h100-80gb", "--mix", "ti2v-5b=3"]);
    let mps = options(&v).iter().find(|o| o["kind"] == "mps").unwrap();
    let m = mps["makespan_s"].as_f64().unwrap();
    assert!((m - 630.0).abs() <= 0.15 * 630.0, "{mps}");
    let o = plan(&["--gpu", "h100-80gb", "--mix", "ti2v-5b=3"]);
    let text = stdout(&o);
    assert!(text.contains("MAKESPAN"), "{text}");
    assert!(text.contains("10m"), "{text}");
    // A workload known only by its peak has no timeline: no makespan is made up for it.
    let v = json(&["--gpu", "h100-80gb", "--mix", "a=2@30GiB"]);
    assert!(options(&v).iter().all(|o| o["makespan_s"].is_null()));
    let text = stdout(&plan(&["--gpu", "h100-80gb", "--mix", "a=2@30GiB"]));
    assert!(text.contains(" —  "), "{text}");
}

#[test]
fn chosen_mig_layout_comes_with_its_nvidia_smi_commands() {
    let o = plan(&["--gpu", "h100-80gb", "--mix", "ti2v-5b=2"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("Chosen MIG layout: #1 MIG 4g.40gb+3g.40gb"),
        "{text}"
    );
    assert!(
        text.contains("  nvidia-smi mig -cgi 5:0,9:4 -C\n"),
        "{text}"
    );
    // Placements matter: 3g + 2g + 2 × 1g only fits with the 3g at slice 4.
    let v = json(&[
        "--gpu",
        "h100-80gb",
        "--mix",
        "a=1@30GiB,b=1@15GiB,c=2@8GiB",
    ]);
    let o = layout(&v, "mig", "3g.40gb+2g.20gb+2×1g.10gb");
    assert_eq!(o["jobs_in_parallel"], 4);
    assert_eq!(
        o["commands"][1],
        "nvidia-smi mig -cgi 14:0,19:2,19:3,9:4 -C"
    );
}

#[test]
fn nvml_path_reads_the_fake_gpu_and_plans_the_same() {
    let mix = "ti2v-5b=3,s2v-14b=1";
    let nvml = json(&["--gpu", "0", "--simulate", WAN22, "--mix", mix]);
    let builtin = json(&["--gpu", "h100-80gb", "--mix", mix]);
    assert_eq!(nvml["gpu"]["source"]["kind"], "nvml");
    assert_eq!(nvml["gpu"]["name"], "NVIDIA H100 80GB HBM3");
    // NVML's total minus reserved (81559 − 480 MiB) equals the built-in assumption.
    assert_eq!(nvml["usable_bytes"], builtin["usable_bytes"]);
    let shape = |v: &Value| -> Vec<String> {
        options(v)
            .iter()
            .map(|o| {
                format!(
                    "{} {} {} {:?} {}",
                    o["kind"],
                    o["layout"],
                    o["jobs_in_parallel"],
                    idle(o),
                    o["slots"]
                )
            })
            .collect()
    };
    assert_eq!(shape(&nvml), shape(&builtin));
    let cmds = nvml["commands"].as_array().unwrap();
    assert_eq!(cmds[0], "nvidia-smi -i 0 -mig 1");
    assert!(
        cmds[1]
            .as_str()
            .unwrap()
            .starts_with("nvidia-smi mig -i 0 -cgi ")
    );
}

#[test]
fn profiles_from_stdin_survive_the_simulate_reexec() {
    let mut child = Command::new(sidecar_bin())
        .args(["plan", "--gpu", "0", "--simulate", WAN22, "--profiles", "-"])
        .args(["--mix", "my-job=2", "--json"])
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"[[profile]]\nname = \"my-job\"\nduration_s = 100.0\nruns = 2\n\
              points = [[0.0, 1073741824], [0.5, 48318382080]]\n",
        )
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["mix"][0]["source"], "profiles");
    assert_eq!(v["mix"][0]["peak_bytes"], 45u64 << 30);
    assert_eq!(v["mix"][0]["duration_s"], 100.0);
    // 45 GiB: only the 7g instance holds it; two do not fit the whole GPU at once.
    assert_eq!(best_parallel(&v, "mps"), 1);
    assert_eq!(best_parallel(&v, "mig"), 1);
}

#[test]
fn dump_and_check_table_through_nvml() {
    let o = plan(&["--gpu", "0", "--simulate", WAN22, "--dump-table"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["name"], "NVIDIA H100 80GB HBM3");
    assert_eq!(v["memory_total_mib"], 81559);
    let profiles = v["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 7);
    let p9 = profiles.iter().find(|p| p["id"] == 9).unwrap();
    assert_eq!(p9["name"], "MIG 3g.40gb");
    assert_eq!(p9["placements"], serde_json::json!([[0, 4], [4, 4]]));

    let o = plan(&["--gpu", "0", "--simulate", WAN22, "--check-table"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("agree"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("built-in table h100-80gb"),
        "{}",
        stdout(&o)
    );

    // Compared with another model's table: every difference is listed, exit 1.
    let o = plan(&[
        "--gpu",
        "0",
        "--simulate",
        WAN22,
        "--check-table",
        "--table",
        "h200-141gb",
    ]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let text = stdout(&o);
    assert!(text.contains("differ in"), "{text}");
    assert!(
        text.contains("3g.71gb (index 2): memory: built-in 71424 MiB, NVML 40448 MiB"),
        "{text}"
    );
    assert!(text.contains("1g.18gb (index 0): name"), "{text}");
}

#[test]
fn check_table_catches_a_gpu_whose_table_differs() {
    // A fake GPU named like an H100 that serves the H200 table.
    let dir = std::env::temp_dir().join(format!("headroom-plan-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(repo_root().join(WAN22)).unwrap();
    let text = text.replace(
        "mig_profiles = \"h100-80gb\"",
        "mig_profiles = \"h200-141gb\"",
    );
    assert!(text.contains("h200-141gb"));
    let scenario = dir.join("h100-with-h200-table.toml");
    std::fs::write(&scenario, text).unwrap();
    let o = plan(&[
        "--gpu",
        "0",
        "--simulate",
        scenario.to_str().unwrap(),
        "--check-table",
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("compared with built-in table h100-80gb"),
        "{out}"
    );
    assert!(
        out.contains(
            "7g.80gb (index 4): memory: built-in 81152 MiB, NVML 143360 MiB (Δ +62208 MiB)"
        ),
        "{out}"
    );
}

#[test]
fn unknown_gpu_model_lists_the_known_ones() {
    let o = plan(&["--gpu", "z100-7gb", "--mix", "ti2v-5b=1"]);
    assert_eq!(code(&o), 2);
    let e = stderr(&o);
    assert!(e.contains("unknown GPU model \"z100-7gb\""), "{e}");
    for k in [
        "h100-80gb",
        "h200-141gb",
        "b200-180gb",
        "a100-40gb",
        "a100-80gb",
    ] {
        assert!(e.contains(k), "{e}");
    }
    assert!(stdout(&o).is_empty());
    // Names work in any spelling; A100 tables are built in.
    for g in ["H100 80GB", "NVIDIA A100-SXM4-40GB", "a100-80gb"] {
        let o = plan(&["--gpu", g, "--mix", "tiny=1@1GiB"]);
        assert_eq!(code(&o), 0, "{g}: {}", stderr(&o));
    }
    let o = plan(&["--gpu", "7", "--simulate", WAN22, "--mix", "ti2v-5b=1"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("--gpu 7: NVML reports 1 GPU"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unknown_workload_without_a_peak_says_how_to_declare_it() {
    let o = plan(&["--gpu", "h100-80gb", "--mix", "ti2v-5b=1,flux-dev=2"]);
    assert_eq!(code(&o), 2);
    let e = stderr(&o);
    assert!(e.contains("unknown workload \"flux-dev\""), "{e}");
    assert!(e.contains("--profiles"), "{e}");
    assert!(e.contains("flux-dev=N@PEAK"), "{e}");
    assert!(stdout(&o).is_empty());
    // Declared inline, it plans.
    let v = json(&["--gpu", "h100-80gb", "--mix", "ti2v-5b=1,flux-dev=2@20GiB"]);
    assert_eq!(v["mix"][1]["source"], "inline");
    let o = plan(&[
        "--gpu",
        "h100-80gb",
        "--mix",
        "x=1",
        "--profiles",
        "/nonexistent.toml",
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("--profiles /nonexistent.toml"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_mix_that_fits_nowhere_gets_an_answer_not_an_empty_table() {
    let o = plan(&["--gpu", "h100-80gb", "--mix", "ti2v-5b=1,huge=1@100GiB"]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    let e = stderr(&o);
    assert!(
        e.contains("no option runs this mix on NVIDIA H100 80GB HBM3"),
        "{e}"
    );
    assert!(
        e.contains("huge needs 100.00 GiB")
            && e.contains("more than the whole GPU (79.18 GiB usable)"),
        "{e}"
    );
    assert!(e.contains("7g.80gb, 79.25 GiB"), "{e}");
    assert!(!e.contains("ti2v-5b needs"), "ti2v-5b fits: {e}");
    // A margin can be what makes it not fit: 33.19 GiB + 50% > 39.5 GiB 3g slices, and
    // 2 × 49.8 GiB exceed the whole GPU.
    let v = json(&[
        "--gpu",
        "h100-80gb",
        "--mix",
        "ti2v-5b=2",
        "--margin",
        "50%",
    ]);
    assert_eq!(best_parallel(&v, "mps"), 1);
    assert_eq!(best_parallel(&v, "mig"), 1);
    // --json gives the same answer as an object, with exit 1.
    let o = plan(&["--gpu", "h100-80gb", "--mix", "huge=1@100GiB", "--json"]);
    assert_eq!(code(&o), 1);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["feasible"], false);
    assert!(v["problems"][0].as_str().unwrap().contains("huge needs"));
}

#[test]
fn bad_mix_syntax_exits_2_naming_the_token() {
    for (mix, token) in [
        ("ti2v-5b=3,s2v-14b", "\"s2v-14b\""),
        ("ti2v-5b=three", "\"ti2v-5b=three\""),
        ("ti2v-5b=0", "\"ti2v-5b=0\""),
        ("x=1@lots", "\"x=1@lots\""),
        ("ti2v-5b=1,,s2v-14b=1", "\"\""),
    ] {
        let o = plan(&["--gpu", "h100-80gb", "--mix", mix]);
        assert_eq!(code(&o), 2, "{mix}");
        let e = stderr(&o);
        assert!(
            e.contains(&format!("--mix: bad entry {token}")),
            "{mix}: {e}"
        );
    }
    let o = plan(&["--gpu", "h100-80gb"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--mix is required"), "{}", stderr(&o));
    let o = plan(&[
        "--gpu",
        "h100-80gb",
        "--mix",
        "ti2v-5b=1",
        "--margin",
        "lots",
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--margin"), "{}", stderr(&o));
    let o = plan(&["--gpu", "h100-80gb", "--check-table"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--gpu INDEX"), "{}", stderr(&o));
}
