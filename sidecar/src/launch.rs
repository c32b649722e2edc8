//! `headroom-sidecar run`: asks the daemon for admission, waits in the queue (showing position
//! and predicted start on stderr), then starts the command as argv — never through a shell —
//! with the environment the daemon chose, passes stdin/stdout through, tees stderr while
//! watching for out-of-memory messages, forwards SIGINT/SIGTERM/SIGHUP to the child, reports
//! the outcome, and exits with the child's status (128 + N when a signal N ended it).
//!
//! Its own exit codes: 2 bad input; 3 the daemon is unreachable or refused the request;
//! 75 still queued after `--timeout`; 126 the command cannot be executed; 127 not found;
//! 130/143 interrupted while queued (the request leaves the queue first).

use crate::api::{AdmissionRequest, AdmissionStatus, Finished, NOT_PLANNED_YET, Started};
use crate::client::{Client, ClientError};
use crate::oom_text::OomWatcher;
use headroom_core::procfs::ProcFs;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Polling interval bounds while queued: fast when a start is near or being planned, slow when
/// it is far off (a thousand queued clients then cost the daemon little).
const POLL_MIN: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_secs(1);

/// A request the daemon has not planned yet (`pending`: enqueued after its last decision).
/// It plans arrivals together within a few tens of milliseconds and may admit this one
/// right then, so it is asked again soon and nothing is shown meanwhile.
fn being_planned(reason: &str) -> bool {
    reason == "pending" || reason == NOT_PLANNED_YET
}

/// How long to wait before asking again, given the predicted start and the queue reason.
fn poll_after(predicted_start_in_s: Option<f64>, reason: &str) -> Duration {
    match predicted_start_in_s {
        Some(s) if s.is_finite() => {
            Duration::from_secs_f64((s / 4.0).max(0.0)).clamp(POLL_MIN, POLL_MAX)
        }
        _ if being_planned(reason) => POLL_MIN,
        _ => Duration::from_millis(100),
    }
}

/// What `run` was asked to do.
#[derive(Debug)]
pub struct RunRequest {
    pub request: AdmissionRequest,
    pub timeout: Option<Duration>,
    pub command: Vec<String>,
}

fn say(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "headroom: {msg}");
}

fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

fn client_error(e: &ClientError) -> ExitCode {
    say(&e.to_string());
    exit(3)
}

/// Runs the command under admission control.
pub fn run(client: &Client, req: RunRequest) -> ExitCode {
    // Signals: while queued they mean "leave the queue"; once the child runs they are forwarded.
    let pending = Arc::new(AtomicI32::new(0));
    let child_pid = Arc::new(AtomicU32::new(0));
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            say(&format!("cannot install signal handlers: {e}"));
            return exit(3);
        }
    };
    {
        let (pending, child_pid) = (pending.clone(), child_pid.clone());
        std::thread::spawn(move || {
            for sig in signals.forever() {
                let pid = child_pid.load(Ordering::SeqCst);
                if pid != 0 {
                    if let (Ok(s), Ok(p)) = (Signal::try_from(sig), i32::try_from(pid)) {
                        let _ = kill(Pid::from_raw(p), s);
                    }
                } else {
                    pending.store(sig, Ordering::SeqCst);
                }
            }
        });
    }

    let status: AdmissionStatus = match client.call("POST", "/v1/admissions", Some(&req.request)) {
        Ok(s) => s,
        Err(e) => return client_error(&e),
    };
    let id = match &status {
        AdmissionStatus::Queued { id, .. } | AdmissionStatus::Admitted { id, .. } => id.clone(),
        other => {
            say(&format!("unexpected answer from the daemon: {other:?}"));
            return exit(3);
        }
    };
    let path = format!("/v1/admissions/{id}");
    let leave = |why: &str| {
        if let Err(e) = client.send("DELETE", &path, None::<&()>) {
            say(&format!("could not leave the queue cleanly: {e}"));
        }
        say(why);
    };
    let queued_at = Instant::now();
    let mut status = status;
    let mut last_shown = String::new();
    let mut poll;
    let (device, env) = loop {
        match status {
            AdmissionStatus::Admitted { device, env, .. } => break (device, env),
            AdmissionStatus::Queued {
                position,
                predicted_start_in_s,
                reason,
                ..
            } => {
                poll = poll_after(predicted_start_in_s, &reason);
                let when = predicted_start_in_s.map_or_else(
                    || "start not predictable yet".to_string(),
                    |s| format!("predicted start in {s:.0} s"),
                );
                let line = format!(
                    "queued for {}: position {position}, {when} ({reason})",
                    req.request.workload
                );
                // Nothing to show until the daemon has planned it (tens of milliseconds;
                // most runs on an idle GPU are admitted right then).
                if line != last_shown && !being_planned(&reason) {
                    say(&line);
                    last_shown = line;
                }
            }
            other => {
                say(&format!("unexpected admission state: {other:?}"));
                return exit(3);
            }
        }
        let sig = pending.load(Ordering::SeqCst);
        if sig != 0 {
            leave("interrupted while queued; left the queue");
            return exit(128 + u8::try_from(sig).unwrap_or(0));
        }
        if req.timeout.is_some_and(|t| queued_at.elapsed() >= t) {
            leave("still queued after --timeout; left the queue");
            return exit(75);
        }
        std::thread::sleep(poll);
        status = match client.call("GET", &path, None::<&()>) {
            Ok(s) => s,
            Err(e) => return client_error(&e),
        };
    };

    let Some((program, args)) = req.command.split_first() else {
        leave("no command given");
        return exit(2);
    };
    let spawned = Command::new(program)
        .args(args)
        .envs(&env)
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            leave(&format!("cannot start {program}: {e}"));
            return exit(code);
        }
    };
    child_pid.store(child.id(), Ordering::SeqCst);
    // A signal that arrived between admission and spawn goes to the child now.
    let early = pending.swap(0, Ordering::SeqCst);
    if let (true, Ok(s), Ok(p)) = (
        early != 0,
        Signal::try_from(early),
        i32::try_from(child.id()),
    ) {
        let _ = kill(Pid::from_raw(p), s);
    }
    say(&format!(
        "admitted on {device}; started {program} as pid {}",
        child.id()
    ));
    let started = Started {
        pid: child.id(),
        start_time: ProcFs::default().start_time(child.id()),
    };
    if let Err(e) = client.send("POST", &format!("{path}/started"), Some(&started)) {
        say(&format!("could not report the start to the daemon: {e}"));
    }

    let tee = child.stderr.take().map(|stderr| {
        std::thread::spawn(move || {
            let mut watcher = OomWatcher::default();
            let mut reader = BufReader::new(stderr);
            let mut line = Vec::new();
            let mut out = std::io::stderr();
            while reader
                .read_until(b'\n', &mut line)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                let _ = out.write_all(&line);
                watcher.line(&String::from_utf8_lossy(&line));
                line.clear();
            }
            watcher.message().map(str::to_string)
        })
    });
    let waited = child.wait();
    child_pid.store(0, Ordering::SeqCst);
    let oom_message = tee.and_then(|t| t.join().ok()).flatten();
    let status = match waited {
        Ok(s) => s,
        Err(e) => {
            say(&format!("lost track of the child: {e}"));
            return exit(3);
        }
    };
    let finished = Finished {
        exit_code: status.code(),
        signal: status.signal(),
        oom: oom_message.is_some(),
        oom_message,
    };
    if let Err(e) = client.send("POST", &format!("{path}/finished"), Some(&finished)) {
        say(&format!("could not report the outcome to the daemon: {e}"));
    }
    match (status.code(), status.signal()) {
        (Some(c), _) => exit(u8::try_from(c & 0xff).unwrap_or(1)),
        (None, Some(s)) => exit(128u8.saturating_add(u8::try_from(s).unwrap_or(0))),
        _ => exit(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_faster_as_the_start_nears() {
        assert_eq!(poll_after(Some(0.0), "ready"), POLL_MIN);
        assert_eq!(poll_after(Some(3600.0), "memory"), POLL_MAX);
        assert_eq!(poll_after(Some(2.0), "stagger"), Duration::from_millis(500));
        assert_eq!(
            poll_after(None, "device_memory_unknown"),
            Duration::from_millis(100)
        );
        // Just enqueued: the daemon decides within its batch window.
        assert_eq!(poll_after(None, "pending"), POLL_MIN);
        assert_eq!(poll_after(None, NOT_PLANNED_YET), POLL_MIN);
    }
}
