//! A real Prometheus (the Debian package's `prometheus` binary) scrapes two exporters on the
//! fake NVML, one with MIG instances and one with MPS clients; its query API must return
//! per-MIG-instance and per-MPS-client memory series with the metric contract's labels.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

fn exporter(scenario: &str) -> Exporter {
    let root = repo_root();
    start(
        &[
            "--simulate",
            root.join(format!("scenarios/{scenario}.toml"))
                .to_str()
                .unwrap(),
            "--nvml-lib",
            fake_nvml().to_str().unwrap(),
            "--procfs",
            root.join("tests/fixtures/procfs").to_str().unwrap(),
            "--interval",
            "500ms",
        ],
        &[("HEADROOM_FAKE_FREEZE_AT", "200")],
    )
}

/// `/api/v1/query` result vector, once non-empty (or panics after 60 s).
fn query(prom: std::net::SocketAddr, q: &str) -> Vec<serde_json::Value> {
    query_until(prom, q, |r| !r.is_empty())
}

#[test]
fn prometheus_scrapes_mig_and_mps_series() {
    let mig = exporter("h100-mig");
    let mps = exporter("h100-mps-wan22");
    let dir = std::env::temp_dir().join(format!("headroom-prom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: headroom\n    static_configs:\n      - targets: ['{}', '{}']\n",
        mig.addr, mps.addr
    );
    let prom = Prometheus::start(&dir, &config);
    let addr = prom.addr;

    // Both targets scraped successfully (Prometheus accepted the OpenMetrics exposition).
    let up = query_until(addr, "sum(up{job=\"headroom\"})", |r| {
        r.first().is_some_and(|s| s["value"][1] == "2")
    });
    assert_eq!(up[0]["value"][1], "2");

    let mig_series = query(addr, "headroom_mig_memory_used_bytes");
    assert!(mig_series.len() >= 2, "{mig_series:?}");
    for s in &mig_series {
        let m = &s["metric"];
        for label in [
            "gpu",
            "gpu_uuid",
            "mig_uuid",
            "gpu_instance_id",
            "compute_instance_id",
            "mig_profile",
        ] {
            assert!(m[label].is_string(), "MIG series lacks {label}: {m}");
        }
        assert!(m["mig_uuid"].as_str().unwrap().starts_with("MIG-"));
    }
    let total = query(addr, "headroom_mig_memory_total_bytes");
    assert_eq!(total.len(), mig_series.len());

    let clients = query(addr, "headroom_process_memory_used_bytes{mps=\"true\"}");
    assert!(clients.len() >= 2, "{clients:?}");
    for s in &clients {
        let m = &s["metric"];
        for label in ["gpu", "gpu_uuid", "pid", "process", "mps"] {
            assert!(m[label].is_string(), "MPS client series lacks {label}: {m}");
        }
        let v: f64 = s["value"][1].as_str().unwrap().parse().unwrap();
        assert!(v > 0.0, "client memory must be positive: {s}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
