//! The admission API and CLI against bad input: each gets a clear 4xx JSON error or a clear
//! CLI error and non-zero exit, and nothing enters the queue. Also the socket's mode and a
//! profile export/import round trip between two daemons.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::Command;

fn request(w: &World, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut s = UnixStream::connect(&w.socket).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
    let _ = s.write_all(body);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (
        status,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    )
}

#[test]
fn bad_requests_get_clear_errors_and_queue_nothing() {
    let mut w = World::h100("api", 40.0);
    w.start_daemon(&[]);
    let mode = std::fs::metadata(&w.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660, "socket mode");

    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "POST",
            "/v1/admissions",
            b"{not json".to_vec(),
            400,
            "invalid JSON",
        ),
        (
            "POST",
            "/v1/admissions",
            br#"{"workload":"a","bogus":1}"#.to_vec(),
            400,
            "unknown field",
        ),
        (
            "POST",
            "/v1/admissions",
            br#"{"workload":"../x"}"#.to_vec(),
            400,
            "workload name",
        ),
        (
            "POST",
            "/v1/admissions",
            br#"{"workload":"a","peak_bytes":-1}"#.to_vec(),
            400,
            "invalid JSON",
        ),
        (
            "POST",
            "/v1/admissions",
            br#"{"workload":"a","device":"GPU-nope"}"#.to_vec(),
            404,
            "unknown device",
        ),
        (
            "POST",
            "/v1/admissions",
            br#"{"workload":"a","peak_bytes":214748364800}"#.to_vec(),
            422,
            "larger than any managed device",
        ),
        (
            "POST",
            "/v1/admissions",
            vec![b' '; 300 * 1024],
            413,
            "larger than",
        ),
        (
            "GET",
            "/v1/admissions/12345",
            Vec::new(),
            404,
            "no admission",
        ),
        ("DELETE", "/v1/status", Vec::new(), 405, "not allowed"),
        ("GET", "/v2/anything", Vec::new(), 404, "no route"),
    ];
    for (method, path, body, want, text) in cases {
        let (status, reply) = request(&w, method, path, &body);
        assert_eq!(status, want, "{method} {path}: {reply}");
        let err: serde_json::Value = serde_json::from_str(&reply)
            .unwrap_or_else(|e| panic!("{method} {path}: non-JSON error {reply:?}: {e}"));
        assert!(
            err["error"].as_str().unwrap().contains(text),
            "{method} {path}: {reply}"
        );
    }
    let (status, reply) = request(&w, "GET", "/v1/status", b"");
    assert_eq!(status, 200);
    let st: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(
        (st["queued"].as_u64(), st["running"].as_u64()),
        (Some(0), Some(0)),
        "bad requests must not queue: {reply}"
    );

    // The CLI refuses bad sizes and a missing command before talking to the daemon.
    for (args, needle) in [
        (vec!["--peak", "-1"], "negative"),
        (vec!["--peak", "33XB"], "33XB"),
        (vec!["--timeout", "soon"], "soon"),
        (vec!["--workload", "a b"], "workload"),
    ] {
        let out = Command::new(sidecar_bin())
            .arg("run")
            .arg("--socket")
            .arg(&w.socket)
            .args(&args)
            .args(["--", "true"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(sidecar_bin())
        .arg("run")
        .arg("--socket")
        .arg(&w.socket)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a missing command is a usage error"
    );
    let out = Command::new(sidecar_bin())
        .args(["run", "--socket", "/nonexistent/s.sock", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach the headroom-sidecar daemon")
    );
}

#[test]
fn profiles_export_and_import_round_trip() {
    let mut a = World::h100("export", 40.0);
    a.start_daemon(&[]);
    let learn = a
        .run("ti2v-5b", &["--peak", "34GiB"], &[])
        .wait_with_output()
        .unwrap();
    assert!(learn.status.success());
    let file = a.dir.join("profiles.toml");
    let out = a.profiles(&["export", "--output", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("[[profile]]") && text.contains("ti2v-5b"),
        "{text}"
    );

    let mut b = World::h100("import", 40.0);
    b.start_daemon(&[]);
    let out = b.profiles(&["import", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = String::from_utf8_lossy(&a.profiles(&["list"]).stdout).into_owned();
    let after = String::from_utf8_lossy(&b.profiles(&["list"]).stdout).into_owned();
    assert_eq!(
        before, after,
        "the imported profile must read back the same"
    );
    let show = b.profiles(&["show", "ti2v-5b"]);
    assert!(
        String::from_utf8_lossy(&show.stdout).contains("peak"),
        "{}",
        String::from_utf8_lossy(&show.stdout)
    );

    let bad = b.dir.join("bad.toml");
    std::fs::write(&bad, "[[profile]]\nname = \"x\"\n").unwrap();
    let out = b.profiles(&["import", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml"));
}

#[test]
fn socket_group_owns_the_api_socket_and_a_bad_group_is_a_usage_error() {
    use std::os::unix::fs::MetadataExt;
    // Whoever runs the tests may hand a socket to a group it belongs to; root to any group.
    let gid = nix_gid();
    let mut w = World::h100("api-group", 40.0);
    w.start_daemon(&["--socket-group", &gid.to_string()]);
    let meta = std::fs::metadata(&w.socket).unwrap();
    assert_eq!(meta.gid(), gid, "socket group");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660, "socket mode");
    w.stop_daemon();

    let out = Command::new(sidecar_bin())
        .args([
            "serve",
            "--socket-group",
            "no-such-group-hdrm",
            "--socket-mode",
            "777",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    // Every bad flag at once.
    assert!(
        err.contains("no group named \"no-such-group-hdrm\""),
        "{err}"
    );
    assert!(err.contains("--socket-mode"), "{err}");
}

/// A group the test process may give a file to: `daemon` (gid 1) when running as root,
/// otherwise the process's own primary group.
fn nix_gid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    let probe = std::env::temp_dir().join(format!("headroom-gid-{}", std::process::id()));
    std::fs::write(&probe, b"").unwrap();
    let own = std::fs::metadata(&probe).unwrap().gid();
    let uid = std::fs::metadata(&probe).unwrap().uid();
    std::fs::remove_file(&probe).unwrap();
    if uid == 0 { 1 } else { own }
}

/// Polls `GET /v1/admissions/{id}` until its JSON satisfies `done` (or panics after 20 s).
fn status_until(
    w: &World,
    id: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (code, body) = request(w, "GET", &format!("/v1/admissions/{id}"), b"");
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        if done(&v) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "last status: {v}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn admission_pauses_while_the_mps_control_daemon_is_gone() {
    let mut w = World::h100("api-mps", 40.0);
    let pipe = w.dir.join("mps-pipe");
    std::fs::create_dir_all(&pipe).unwrap();
    let control = pipe.join("control");
    // A listening socket stands in for a live control daemon.
    let live = std::os::unix::net::UnixListener::bind(&control).unwrap();
    w.start_daemon(&["--mps-pipe-directory", pipe.to_str().unwrap()]);
    let enqueue = |w: &World| {
        let (code, body) = request(
            w,
            "POST",
            "/v1/admissions",
            br#"{"workload":"w","peak_bytes":1073741824}"#,
        );
        assert!(code == 200 || code == 201 || code == 202, "{code} {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["id"].as_str().unwrap().to_string()
    };
    let first = enqueue(&w);
    status_until(&w, &first, |v| v["state"] != "queued");

    // The daemon quits but leaves its socket file (as nvidia-cuda-mps-control does).
    drop(live);
    assert!(control.exists());
    std::thread::sleep(std::time::Duration::from_millis(500));
    let second = enqueue(&w);
    let v = status_until(&w, &second, |v| v["reason"] == "mps_unavailable");
    assert_eq!(v["state"], "queued", "{v}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let v = status_until(&w, &second, |_| true);
    assert_eq!(v["state"], "queued", "still paused: {v}");
    assert!(w.log().contains("admission paused"), "{}", w.log());

    // Back: the request is admitted.
    std::fs::remove_file(&control).unwrap();
    let _live = std::os::unix::net::UnixListener::bind(&control).unwrap();
    status_until(&w, &second, |v| v["state"] != "queued");
    assert!(w.log().contains("admission resumed"), "{}", w.log());
}
