//! MPS control daemons: whether one answers in a pipe directory ([`control_up`]), and, with
//! `serve --manage-mps`, one `nvidia-cuda-mps-control -d` per managed GPU or MIG instance
//! ([`Manager`]) with a private pipe and log directory under `--mps-root`:
//! `ROOT/<device id>/pipe` (0755: clients of any user connect there) and
//! `ROOT/<device id>/log` (0750).
//!
//! A daemon already answering in its pipe directory (a sidecar restart) is adopted, not
//! started twice. One that stops answering is started again on the next sampling round.
//! On shutdown a daemon is told `quit` only when no admitted process still runs on its
//! device; otherwise it is left for the clients (and the next start re-adopts it). Every
//! command is exec'd as argv; directories are created without following symlinks.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest path a unix socket can be bound at (`sun_path` minus its NUL), less room for the
/// names the MPS daemon creates in the pipe directory.
const SOCKET_PATH_MAX: usize = 107 - "/control_privileged".len();

/// How long a starting daemon may take to answer on its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Why MPS daemons could not be managed.
#[derive(Debug, thiserror::Error)]
pub enum MpsError {
    #[error("--mps-root {path}: {why}")]
    Root { path: PathBuf, why: String },
    #[error(
        "MPS pipe directory {path} is {len} bytes long; unix sockets allow {max}: use a shorter --mps-root"
    )]
    PathTooLong {
        path: PathBuf,
        len: usize,
        max: usize,
    },
    #[error("cannot run {bin} for {device}: {why}")]
    Spawn {
        bin: PathBuf,
        device: String,
        why: String,
    },
    #[error(
        "MPS control daemon for {device} did not answer on {socket} within {secs} s (log: {log})"
    )]
    NoAnswer {
        device: String,
        socket: PathBuf,
        log: PathBuf,
        secs: u64,
    },
}

/// Whether an MPS control daemon answers on `dir/control`.
///
/// The daemon leaves its socket file behind when it quits, so the file alone says nothing:
/// connect. Its socket is SOCK_SEQPACKET, so a stream connect to a live daemon fails with
/// EPROTOTYPE (and never reaches it); a stale file is refused.
pub fn control_up(dir: &Path) -> bool {
    match std::os::unix::net::UnixStream::connect(dir.join("control")) {
        Ok(_) => true,
        Err(e) => e.raw_os_error() == Some(nix::errno::Errno::EPROTOTYPE as i32),
    }
}

/// One managed daemon.
#[derive(Debug, Clone)]
pub struct Daemon {
    /// GPU or MIG UUID (its CUDA_VISIBLE_DEVICES).
    pub device: String,
    pub pipe: PathBuf,
    pub log: PathBuf,
}

/// The daemons of `serve --manage-mps`.
#[derive(Debug)]
pub struct Manager {
    bin: PathBuf,
    daemons: Vec<Daemon>,
}

/// Creates `path` with `mode` if missing; refuses a symlink, a non-directory or a directory
/// owned by someone else.
fn private_dir(path: &Path, mode: u32) -> Result<(), String> {
    match std::fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(format!(
            "{} is not a directory (symlinks are refused)",
            path.display()
        ));
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(format!(
            "{} is owned by uid {}, not by this daemon",
            path.display(),
            meta.uid()
        ));
    }
    // The umask may have narrowed the mode; set it exactly.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))
}

/// A directory name for a device id: its letters, digits and `-`, nothing else.
fn slug(device: &str) -> String {
    device
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Manager {
    /// Prepares the directories of every device and starts (or adopts) their daemons.
    pub fn start(bin: &Path, root: &Path, devices: &[String]) -> Result<Self, MpsError> {
        let root_err = |why: String| MpsError::Root {
            path: root.to_path_buf(),
            why,
        };
        private_dir(root, 0o755).map_err(root_err)?;
        let mut daemons = Vec::new();
        for device in devices {
            let dir = root.join(slug(device));
            let pipe = dir.join("pipe");
            let len = pipe.as_os_str().len();
            if len > SOCKET_PATH_MAX {
                return Err(MpsError::PathTooLong {
                    path: pipe,
                    len,
                    max: SOCKET_PATH_MAX,
                });
            }
            let log = dir.join("log");
            private_dir(&dir, 0o755).map_err(root_err)?;
            private_dir(&pipe, 0o755).map_err(root_err)?;
            private_dir(&log, 0o750).map_err(root_err)?;
            daemons.push(Daemon {
                device: device.clone(),
                pipe,
                log,
            });
        }
        let m = Manager {
            bin: bin.to_path_buf(),
            daemons,
        };
        for d in &m.daemons {
            if control_up(&d.pipe) {
                headroom_core::log::info(
                    "MPS control daemon already running: adopted",
                    &[("device", &d.device), ("pipe", &d.pipe.display())],
                );
            } else {
                m.launch(d)?;
            }
        }
        Ok(m)
    }

    /// The pipe directory of `device`'s daemon.
    pub fn pipe_for(&self, device: &str) -> Option<&Path> {
        self.daemons
            .iter()
            .find(|d| d.device == device)
            .map(|d| d.pipe.as_path())
    }

    fn command(&self, d: &Daemon) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("CUDA_VISIBLE_DEVICES", &d.device)
            .env("CUDA_MPS_PIPE_DIRECTORY", &d.pipe)
            .env("CUDA_MPS_LOG_DIRECTORY", &d.log)
            .env_remove("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT")
            .env_remove("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE");
        cmd
    }

    /// `nvidia-cuda-mps-control -d` for `d`, then waits until it answers.
    fn launch(&self, d: &Daemon) -> Result<(), MpsError> {
        let spawn_err = |why: String| MpsError::Spawn {
            bin: self.bin.clone(),
            device: d.device.clone(),
            why,
        };
        let status = self
            .command(d)
            .arg("-d")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| spawn_err(e.to_string()))?;
        if !status.success() {
            return Err(spawn_err(format!("`-d` exited with {status}")));
        }
        let deadline = Instant::now() + START_TIMEOUT;
        while !control_up(&d.pipe) {
            if Instant::now() > deadline {
                return Err(MpsError::NoAnswer {
                    device: d.device.clone(),
                    socket: d.pipe.join("control"),
                    log: d.log.clone(),
                    secs: START_TIMEOUT.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        headroom_core::log::info(
            "MPS control daemon started",
            &[
                ("device", &d.device),
                ("pipe", &d.pipe.display()),
                ("log", &d.log.display()),
            ],
        );
        Ok(())
    }

    /// Starts again every daemon that stopped answering. Returns whether all answer.
    pub fn keep_up(&self) -> bool {
        let mut all = true;
        for d in &self.daemons {
            if control_up(&d.pipe) {
                continue;
            }
            headroom_core::log::warn(
                "MPS control daemon not answering: starting it again",
                &[("device", &d.device), ("pipe", &d.pipe.display())],
            );
            if let Err(e) = self.launch(d) {
                headroom_core::log::error(&e.to_string(), &[]);
                all = false;
            }
        }
        all
    }

    /// Tells each daemon to quit, except where `busy(device)` (admitted processes still run
    /// there: they keep their MPS server, and the next start adopts the daemon). Waits up to
    /// `timeout` in all for the daemons to stop answering.
    pub fn stop(&self, busy: impl Fn(&str) -> bool, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut asked = Vec::new();
        for d in &self.daemons {
            if busy(&d.device) {
                headroom_core::log::info(
                    "MPS control daemon left running: admitted processes still use it",
                    &[("device", &d.device), ("pipe", &d.pipe.display())],
                );
                continue;
            }
            if !control_up(&d.pipe) {
                continue;
            }
            let quit = self
                .command(d)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .and_then(|mut child| {
                    use std::io::Write;
                    if let Some(mut stdin) = child.stdin.take() {
                        stdin.write_all(b"quit\n")?;
                    }
                    child.wait()
                });
            match quit {
                Ok(_) => asked.push(d),
                Err(e) => headroom_core::log::warn(
                    "cannot tell the MPS control daemon to quit",
                    &[("device", &d.device), ("error", &e)],
                ),
            }
        }
        for d in asked {
            while control_up(&d.pipe) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if control_up(&d.pipe) {
                headroom_core::log::warn(
                    "MPS control daemon still running after quit",
                    &[("device", &d.device), ("pipe", &d.pipe.display())],
                );
            } else {
                headroom_core::log::info("MPS control daemon stopped", &[("device", &d.device)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_keep_uuids_and_neutralise_separators() {
        assert_eq!(
            slug("MIG-5c2f8a7e-1f0b-5a4e-9c5d-0e8f4b1a2c3d"),
            "MIG-5c2f8a7e-1f0b-5a4e-9c5d-0e8f4b1a2c3d"
        );
        assert_eq!(slug("../x/y"), "___x_y");
    }

    #[test]
    fn private_dir_refuses_symlinks() {
        let base = std::env::temp_dir().join(format!("headroom-mps-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let real = base.join("real");
        private_dir(&real, 0o750).unwrap();
        let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o750);
        let link = base.join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = private_dir(&link, 0o755).unwrap_err();
        assert!(err.contains("symlinks are refused"), "{err}");
        let _ = std::fs::remove_dir_all(&base);
    }
}
