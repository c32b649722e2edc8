//! The live job registry shared by `fake-gpu-job` processes and fake NVML readers through
//! `$HEADROOM_FAKE_STATE_DIR`:
//!
//! - `procs/<pid>`: one small TOML file per live job (device uuid, current memory, name, MPS
//!   flag, workload), replaced atomically (temp file + rename) on every change;
//! - `lock`: an exclusive `flock` that serialises allocation decisions (check capacity, then
//!   write the new memory value);
//! - `epoch`: the shared clock epoch (see [`crate::clock`]).
//!
//! Readers skip and remove entries whose process is gone (`/proc/<pid>` missing, a zombie,
//! or a different process that reused the pid: the entry records the start time from
//! `/proc/<pid>/stat`). That is also how a job killed by a signal leaves the registry: std
//! has no signal API and this crate has no unsafe code, so the job cannot clean up itself.

use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One live job, as stored in `procs/<pid>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveJob {
    pub pid: u32,
    /// Start time of the process in clock ticks since boot (`/proc/<pid>/stat` field 22),
    /// to tell the job from a later process that reuses its pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ticks: Option<u64>,
    /// The GPU or MIG uuid the job runs on.
    pub device_uuid: String,
    /// Device memory the job holds now, bytes.
    pub memory_bytes: u64,
    /// Process name as NVML shows it (`python3`).
    pub name: String,
    /// Whether the job is an MPS client.
    pub mps: bool,
    /// Workload profile the job plays.
    pub workload: String,
    /// Its `CUDA_MPS_PINNED_DEVICE_MEM_LIMIT` for its device, bytes, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<u64>,
}

/// A state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// Holds the registry's exclusive lock until dropped.
#[derive(Debug)]
pub struct StateLock {
    file: File,
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

impl StateDir {
    /// Opens (creating if needed) the state directory `root`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(root.join("procs"))?;
        Ok(Self { root })
    }

    /// The state directory named by `$HEADROOM_FAKE_STATE_DIR`, if set.
    pub fn from_env() -> Option<io::Result<Self>> {
        let dir = std::env::var_os(crate::ENV_STATE_DIR)?;
        if dir.is_empty() {
            return None;
        }
        Some(Self::open(PathBuf::from(dir)))
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn procs(&self) -> PathBuf {
        self.root.join("procs")
    }

    /// Takes the exclusive registry lock (blocks until it is free).
    pub fn lock(&self) -> io::Result<StateLock> {
        let path = self.root.join("lock");
        refuse_symlink(&path)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok(StateLock { file })
    }

    /// Writes (or replaces) `job`'s entry atomically.
    pub fn write(&self, job: &LiveJob) -> io::Result<()> {
        let text =
            toml::to_string(job).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let procs = self.procs();
        let tmp = procs.join(format!(
            ".tmp.{}.{}",
            job.pid,
            crate::clock::unique_suffix()
        ));
        let result = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            f.write_all(text.as_bytes())?;
            // rename(2) replaces the name itself, never what a symlink points to.
            fs::rename(&tmp, procs.join(job.pid.to_string()))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Removes `pid`'s entry (no error if it is already gone).
    pub fn remove(&self, pid: u32) -> io::Result<()> {
        match fs::remove_file(self.procs().join(pid.to_string())) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every live job, sorted by pid. Entries of dead processes are removed; unreadable
    /// entries, symlinks and temp files are skipped.
    pub fn jobs(&self) -> io::Result<Vec<LiveJob>> {
        let mut jobs = Vec::new();
        for entry in fs::read_dir(self.procs())? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let Ok(text) = fs::read_to_string(entry.path()) else {
                continue; // removed meanwhile
            };
            let Ok(job) = toml::from_str::<LiveJob>(&text) else {
                continue;
            };
            if job.pid != pid {
                continue;
            }
            if is_alive(&job) {
                jobs.push(job);
            } else {
                let _ = self.remove(pid);
            }
        }
        jobs.sort_by_key(|j| j.pid);
        Ok(jobs)
    }
}

fn refuse_symlink(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is a symlink; refusing to follow it", path.display()),
        )),
        _ => Ok(()),
    }
}

/// Start time (clock ticks since boot) of process `pid`, or `None` if it does not exist or
/// is a zombie.
pub fn process_start_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses; fields resume after
    // the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // After the state (field 3), starttime is field 22: 18 fields further on.
    fields.nth(18)?.parse().ok()
}

/// Whether `job`'s process still runs (and is the same process).
pub fn is_alive(job: &LiveJob) -> bool {
    match process_start_ticks(job.pid) {
        None => false,
        Some(ticks) => job.start_ticks.is_none_or(|t| t == ticks),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh, empty directory for one test, removed when dropped.
    pub(crate) struct TempDir(PathBuf);

    impl std::ops::Deref for TempDir {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl AsRef<Path> for TempDir {
        fn as_ref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    pub(crate) fn temp_dir(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "headroom-fake-{tag}-{}-{}",
            std::process::id(),
            crate::clock::unique_suffix()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn job(pid: u32) -> LiveJob {
        LiveJob {
            pid,
            start_ticks: process_start_ticks(pid),
            device_uuid: "GPU-1".into(),
            memory_bytes: 21 << 30,
            name: "python3".into(),
            mps: true,
            workload: "ti2v-5b".into(),
            memory_limit_bytes: Some(34 << 30),
        }
    }

    #[test]
    fn writes_atomically_and_reads_back() {
        let dir = temp_dir("state");
        let state = StateDir::open(&*dir).unwrap();
        let me = job(std::process::id());
        state.write(&me).unwrap();
        let mut bigger = me.clone();
        bigger.memory_bytes = 33 << 30;
        state.write(&bigger).unwrap();
        assert_eq!(state.jobs().unwrap(), vec![bigger]);
        // Only the entry remains: no temp files.
        let names: Vec<_> = fs::read_dir(state.root().join("procs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![std::process::id().to_string()]);
        state.remove(std::process::id()).unwrap();
        state.remove(std::process::id()).unwrap();
        assert!(state.jobs().unwrap().is_empty());
    }

    #[test]
    fn dead_and_reused_pids_are_dropped_and_removed() {
        let dir = temp_dir("state-dead");
        let state = StateDir::open(&*dir).unwrap();
        // A child that has exited and been reaped: its pid is gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let mut gone = job(dead);
        gone.start_ticks = None;
        state.write(&gone).unwrap();
        // This process, but with a different start time: a reused pid.
        let mut reused = job(std::process::id());
        reused.start_ticks = reused.start_ticks.map(|t| t + 1);
        state.write(&reused).unwrap();
        assert!(state.jobs().unwrap().is_empty());
        assert!(!state.root().join("procs").join(dead.to_string()).exists());
        assert!(
            !state
                .root()
                .join("procs")
                .join(std::process::id().to_string())
                .exists()
        );
    }

    #[test]
    fn zombies_count_as_dead() {
        let child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Not reaped yet: a zombie once it exits.
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(process_start_ticks(pid), None);
        drop(child);
    }

    #[test]
    fn skips_garbage_and_symlinks() {
        let dir = temp_dir("state-garbage");
        let state = StateDir::open(&*dir).unwrap();
        let procs = state.root().join("procs");
        fs::write(procs.join("123"), "not toml at all").unwrap();
        fs::write(procs.join(".tmp.1.2"), "pid = 1").unwrap();
        let real = state.root().join("real");
        fs::write(&real, toml::to_string(&job(std::process::id())).unwrap()).unwrap();
        std::os::unix::fs::symlink(&real, procs.join(std::process::id().to_string())).unwrap();
        assert!(state.jobs().unwrap().is_empty());
    }

    #[test]
    fn lock_is_exclusive() {
        let dir = temp_dir("state-lock");
        let state = StateDir::open(&*dir).unwrap();
        let held = state.lock().unwrap();
        let s2 = state.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let _l = s2.lock().unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(150))
                .is_err()
        );
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        t.join().unwrap();
    }
}
