//! Reading what the host knows about a GPU process under a procfs root (normally `/proc`,
//! a fixture tree in tests): its environment (`CUDA_MPS_PINNED_DEVICE_MEM_LIMIT`,
//! `CUDA_VISIBLE_DEVICES`, `HEADROOM_WORKLOAD`), its cgroup (container, pod) and its start
//! time (to tell a reused pid from the same process).

use crate::cgroup::{CgroupIdentity, parse_cgroup};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

/// Environment variables Headroom reads from GPU processes.
pub const MPS_LIMIT_VAR: &str = "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT";
pub const VISIBLE_DEVICES_VAR: &str = "CUDA_VISIBLE_DEVICES";
pub const WORKLOAD_VAR: &str = "HEADROOM_WORKLOAD";

/// Parses `/proc/PID/environ` (NUL-separated `KEY=VALUE`), keeping only `keys`.
/// Entries that are not valid UTF-8 or have no `=` are skipped.
pub fn parse_environ(raw: &[u8], keys: &[&str]) -> HashMap<String, String> {
    raw.split(|b| *b == 0)
        .filter_map(|entry| std::str::from_utf8(entry).ok())
        .filter_map(|entry| entry.split_once('='))
        .filter(|(k, _)| keys.contains(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The process start time (field 22 of `/proc/PID/stat`, clock ticks since boot).
/// The command name (field 2) may contain spaces and parentheses, so fields are counted
/// after its closing `)`.
pub fn parse_stat_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ')': field 3 (state) is the first; start time is field 22 → index 19.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// A procfs tree.
#[derive(Debug, Clone)]
pub struct ProcFs {
    root: PathBuf,
}

impl Default for ProcFs {
    fn default() -> Self {
        Self::new("/proc")
    }
}

impl ProcFs {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn file(&self, pid: u32, name: &str) -> PathBuf {
        self.root.join(pid.to_string()).join(name)
    }

    /// The selected environment variables of `pid` (needs the same user or CAP_SYS_PTRACE).
    pub fn environ(&self, pid: u32, keys: &[&str]) -> io::Result<HashMap<String, String>> {
        Ok(parse_environ(
            &std::fs::read(self.file(pid, "environ"))?,
            keys,
        ))
    }

    /// Container and pod identity of `pid`.
    pub fn cgroup(&self, pid: u32) -> io::Result<CgroupIdentity> {
        Ok(parse_cgroup(&std::fs::read_to_string(
            self.file(pid, "cgroup"),
        )?))
    }

    /// Start time of `pid`, if its stat file is readable and well formed.
    pub fn start_time(&self, pid: u32) -> Option<u64> {
        parse_stat_start_time(&std::fs::read_to_string(self.file(pid, "stat")).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environ_keeps_requested_keys() {
        let raw = b"PATH=/bin\0CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=0=16G\0junk\0\xff\xfe=x\0HEADROOM_WORKLOAD=ti2v-5b\0";
        let env = parse_environ(raw, &[MPS_LIMIT_VAR, WORKLOAD_VAR, VISIBLE_DEVICES_VAR]);
        assert_eq!(env.get(MPS_LIMIT_VAR).map(String::as_str), Some("0=16G"));
        assert_eq!(env.get(WORKLOAD_VAR).map(String::as_str), Some("ti2v-5b"));
        assert!(!env.contains_key("PATH"));
        assert_eq!(env.len(), 2);
    }

    #[test]
    fn stat_start_time_survives_odd_names() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat_start_time(stat), Some(987654));
        assert_eq!(parse_stat_start_time("garbage"), None);
    }

    #[test]
    fn reads_a_fixture_tree() {
        let dir = std::env::temp_dir().join(format!("headroom-procfs-test-{}", std::process::id()));
        let pid_dir = dir.join("77");
        std::fs::create_dir_all(&pid_dir).unwrap();
        std::fs::write(
            pid_dir.join("environ"),
            b"CUDA_MPS_PINNED_DEVICE_MEM_LIMIT=8G\0",
        )
        .unwrap();
        std::fs::write(pid_dir.join("cgroup"), "0::/system.slice/docker-3f9a8d62c4b1e5f70a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081.scope\n").unwrap();
        let fs = ProcFs::new(&dir);
        assert_eq!(
            fs.environ(77, &[MPS_LIMIT_VAR])
                .unwrap()
                .get(MPS_LIMIT_VAR)
                .unwrap(),
            "8G"
        );
        assert!(fs.cgroup(77).unwrap().container_id.is_some());
        assert!(fs.environ(78, &[MPS_LIMIT_VAR]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
