//! `headroom-sidecar profiles list|show|export|import`: read and seed learned profiles through
//! the daemon's API. Export/import use TOML: `[[profile]]` tables with `name`, `points`
//! (`[[progress, bytes], ...]` on 0..1), `duration_s`, `runs` and stretch parameters — the
//! form `docs/admission.md` documents, so operators can seed profiles from measurements.

use crate::api::ProfileSummary;
use crate::chart;
use crate::client::Client;
use headroom_admission::Profile;
use headroom_core::units::Bytes;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Serialize, Deserialize)]
struct ProfileFile {
    #[serde(default)]
    profile: Vec<Profile>,
}

fn fail(msg: impl std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("headroom-sidecar: {msg}");
    ExitCode::from(code)
}

pub fn list(client: &Client) -> ExitCode {
    match client.call::<Vec<ProfileSummary>>("GET", "/v1/profiles", None::<&()>) {
        Ok(list) => {
            println!(
                "{:<24} {:>5} {:>12} {:>12} {:>10}",
                "WORKLOAD", "RUNS", "PEAK", "STEADY", "DURATION"
            );
            for p in list {
                println!(
                    "{:<24} {:>5} {:>12} {:>12} {:>9.0}s",
                    p.name,
                    p.runs,
                    Bytes(p.peak_bytes).to_string(),
                    Bytes(p.steady_bytes).to_string(),
                    p.duration_s
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e, 3),
    }
}

pub fn show(client: &Client, name: &str) -> ExitCode {
    match client.call::<Profile>("GET", &format!("/v1/profiles/{name}"), None::<&()>) {
        Ok(p) => {
            println!(
                "{}: {} runs, peak {}, steady {}, {:.0} s alone",
                p.name(),
                p.runs(),
                Bytes(p.peak()),
                Bytes(p.steady()),
                p.duration_s()
            );
            print!("{}", chart::draw(&p.solo_steps(), 60, 12));
            ExitCode::SUCCESS
        }
        Err(e) => fail(e, 3),
    }
}

/// Writes `data` to `path` atomically: a new temp file beside it (never following a
/// symlink), then a rename over the target.
fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("export"),
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    let result = f
        .write_all(data)
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub fn export(client: &Client, output: Option<&Path>) -> ExitCode {
    let list = match client.call::<Vec<ProfileSummary>>("GET", "/v1/profiles", None::<&()>) {
        Ok(l) => l,
        Err(e) => return fail(e, 3),
    };
    let mut file = ProfileFile {
        profile: Vec::new(),
    };
    for s in list {
        match client.call::<Profile>("GET", &format!("/v1/profiles/{}", s.name), None::<&()>) {
            Ok(p) => file.profile.push(p),
            Err(e) => return fail(e, 3),
        }
    }
    let text = match toml::to_string(&file) {
        Ok(t) => t,
        Err(e) => return fail(format!("encoding profiles: {e}"), 1),
    };
    match output {
        None => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Some(path) => match write_atomically(path, text.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(format!("{}: {e}", path.display()), 1),
        },
    }
}

pub fn import(client: &Client, path: &Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return fail(format!("{}: {e}", path.display()), 2),
    };
    let file: ProfileFile = match toml::from_str(&text) {
        Ok(f) => f,
        Err(e) => return fail(format!("{}: {e}", path.display()), 2),
    };
    if file.profile.is_empty() {
        return fail(format!("{}: no [[profile]] tables", path.display()), 2);
    }
    for p in &file.profile {
        if let Err(e) = client.send("PUT", &format!("/v1/profiles/{}", p.name()), Some(p)) {
            return fail(format!("profile {}: {e}", p.name()), 3);
        }
        println!(
            "imported {} (peak {}, {:.0} s)",
            p.name(),
            Bytes(p.peak()),
            p.duration_s()
        );
    }
    ExitCode::SUCCESS
}
