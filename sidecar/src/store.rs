//! The sidecar's durable state: one SQLite database (WAL, `synchronous=FULL`) in the state
//! directory holding every admitted run (its ledger entry, memory samples and outcome) and
//! the learned profiles. Each change is one transaction, so a `kill -9` at any moment loses
//! no committed run and leaves the database consistent.
//!
//! The state directory must be a real directory (not a symlink), not writable by others, and
//! is created with mode 0700; the database is opened without following symlinks.

use rusqlite::{Connection, OpenFlags, params};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const DB_FILE: &str = "headroom.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {0}: is a symlink; refusing to use it")]
    Symlink(PathBuf),
    #[error("state directory {0}: is writable by other users (mode {1:o}); use chmod o-w")]
    WorldWritable(PathBuf, u32),
    #[error("state directory {0}: not a directory")]
    NotADirectory(PathBuf),
    #[error("state directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state database: stored profile {name} is unreadable: {source}")]
    BadProfile {
        name: String,
        source: serde_json::Error,
    },
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Admitted, not (yet) reported started.
    Admitted,
    Running,
    Completed,
    Failed,
    Oom,
    /// The daemon lost track of it (restart with the process gone, admission given back).
    Interrupted,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admitted => "admitted",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Oom => "oom",
            Self::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Admitted,
            Self::Running,
            Self::Completed,
            Self::Failed,
            Self::Oom,
            Self::Interrupted,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// One admitted run as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: String,
    pub workload: String,
    pub device: String,
    pub state: RunState,
    /// Unix seconds.
    pub admitted_at: f64,
    pub started_at: Option<f64>,
    pub ended_at: Option<f64>,
    pub pid: Option<u32>,
    pub pid_start_time: Option<u64>,
    pub reserved_bytes: u64,
    pub memory_limit_bytes: u64,
    pub declared_peak_bytes: Option<u64>,
    pub exit_code: Option<i32>,
    pub oom_message: Option<String>,
    /// Mean number of other processes running beside it (learned stretch).
    pub mean_co_runners: Option<f64>,
    /// The admission core's reservation basis (JSON), to re-adopt the run after a restart.
    pub basis: Option<String>,
    /// Co-runner count over the run (JSON `[[elapsed_s, count], ...]`).
    pub corunners: Option<String>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    workload TEXT NOT NULL,
    device TEXT NOT NULL,
    state TEXT NOT NULL,
    admitted_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    pid INTEGER,
    pid_start_time INTEGER,
    reserved_bytes INTEGER NOT NULL,
    memory_limit_bytes INTEGER NOT NULL,
    declared_peak_bytes INTEGER,
    exit_code INTEGER,
    oom_message TEXT,
    mean_co_runners REAL,
    basis TEXT,
    corunners TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_workload ON runs(workload, admitted_at);
CREATE TABLE IF NOT EXISTS samples (
    run_id TEXT NOT NULL REFERENCES runs(id),
    elapsed_s REAL NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_by_run ON samples(run_id, elapsed_s);
CREATE TABLE IF NOT EXISTS profiles (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at REAL NOT NULL
);
";

/// Checks (and creates) the state directory.
pub fn prepare_dir(dir: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: dir.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => return Err(StoreError::Symlink(dir.to_path_buf())),
        Ok(m) if !m.is_dir() => return Err(StoreError::NotADirectory(dir.to_path_buf())),
        Ok(m) if m.mode() & 0o002 != 0 => {
            return Err(StoreError::WorldWritable(
                dir.to_path_buf(),
                m.mode() & 0o7777,
            ));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
        Err(e) => return Err(io(e)),
    }
    Ok(())
}

fn row_to_run(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let state: String = r.get("state")?;
    Ok(RunRecord {
        id: r.get("id")?,
        workload: r.get("workload")?,
        device: r.get("device")?,
        state: RunState::parse(&state).unwrap_or(RunState::Interrupted),
        admitted_at: r.get("admitted_at")?,
        started_at: r.get("started_at")?,
        ended_at: r.get("ended_at")?,
        pid: r.get("pid")?,
        pid_start_time: r.get::<_, Option<i64>>("pid_start_time")?.map(|v| v as u64),
        reserved_bytes: r.get::<_, i64>("reserved_bytes")? as u64,
        memory_limit_bytes: r.get::<_, i64>("memory_limit_bytes")? as u64,
        declared_peak_bytes: r
            .get::<_, Option<i64>>("declared_peak_bytes")?
            .map(|v| v as u64),
        exit_code: r.get("exit_code")?,
        oom_message: r.get("oom_message")?,
        mean_co_runners: r.get("mean_co_runners")?,
        basis: r.get("basis")?,
        corunners: r.get("corunners")?,
    })
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The open database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        prepare_dir(dir)?;
        let path = dir.join(DB_FILE);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(StoreError::Symlink(path));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        Ok(Self { conn })
    }

    /// `PRAGMA integrity_check` says "ok".
    pub fn integrity_ok(&self) -> Result<bool, StoreError> {
        let v: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        Ok(v == "ok")
    }

    /// Records a new admission.
    pub fn insert_run(&self, r: &RunRecord) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO runs (id, workload, device, state, admitted_at, reserved_bytes, memory_limit_bytes, declared_peak_bytes, basis)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![r.id, r.workload, r.device, r.state.as_str(), r.admitted_at, to_i64(r.reserved_bytes), to_i64(r.memory_limit_bytes), r.declared_peak_bytes.map(to_i64), r.basis],
        )?;
        Ok(())
    }

    /// The process of run `id` started.
    pub fn set_started(
        &self,
        id: &str,
        pid: u32,
        pid_start_time: Option<u64>,
        at: f64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE runs SET state = 'running', pid = ?2, pid_start_time = ?3, started_at = ?4 WHERE id = ?1",
            params![id, pid, pid_start_time.map(to_i64), at],
        )?;
        Ok(())
    }

    /// Appends memory samples of run `id` in one transaction.
    pub fn append_samples(&mut self, id: &str, samples: &[(f64, u64)]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO samples (run_id, elapsed_s, bytes) VALUES (?1, ?2, ?3)",
            )?;
            for (t, b) in samples {
                stmt.execute(params![id, t, to_i64(*b)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Closes run `id` with its outcome.
    pub fn finish(
        &self,
        id: &str,
        state: RunState,
        exit_code: Option<i32>,
        oom_message: Option<&str>,
        mean_co_runners: Option<f64>,
        at: f64,
    ) -> Result<(), StoreError> {
        self.finish_with_corunners(id, state, exit_code, oom_message, mean_co_runners, None, at)
    }

    /// Closes run `id` with its outcome and co-runner history.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_with_corunners(
        &self,
        id: &str,
        state: RunState,
        exit_code: Option<i32>,
        oom_message: Option<&str>,
        mean_co_runners: Option<f64>,
        corunners: Option<&str>,
        at: f64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE runs SET state = ?2, exit_code = ?3, oom_message = ?4, mean_co_runners = ?5, corunners = ?6, ended_at = ?7 WHERE id = ?1",
            params![id, state.as_str(), exit_code, oom_message, mean_co_runners, corunners, at],
        )?;
        Ok(())
    }

    /// Runs still admitted or running (to re-adopt after a restart).
    pub fn open_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT * FROM runs WHERE state IN ('admitted', 'running') ORDER BY admitted_at",
        )?;
        let rows = stmt
            .query_map([], row_to_run)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Every run (oldest first).
    pub fn all_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM runs ORDER BY admitted_at")?;
        let rows = stmt
            .query_map([], row_to_run)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The most recent finished runs of a workload, newest first.
    pub fn recent_runs(&self, workload: &str, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT * FROM runs WHERE workload = ?1 AND state IN ('completed', 'oom', 'failed') ORDER BY admitted_at DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(
                params![workload, i64::try_from(limit).unwrap_or(i64::MAX)],
                row_to_run,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The memory samples of run `id`.
    pub fn samples(&self, id: &str) -> Result<Vec<(f64, u64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT elapsed_s, bytes FROM samples WHERE run_id = ?1 ORDER BY elapsed_s")?;
        let rows = stmt
            .query_map([id], |r| {
                Ok((r.get::<_, f64>(0)?, r.get::<_, i64>(1)? as u64))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Stores a profile (any serde value) under `name`.
    pub fn put_profile<P: serde::Serialize>(
        &self,
        name: &str,
        profile: &P,
        at: f64,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_string(profile).map_err(|source| StoreError::BadProfile {
            name: name.to_string(),
            source,
        })?;
        self.conn.execute(
            "INSERT INTO profiles (name, body, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
            params![name, body, at],
        )?;
        Ok(())
    }

    /// Every stored profile.
    pub fn profiles<P: serde::de::DeserializeOwned>(&self) -> Result<Vec<(String, P)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, body FROM profiles ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(name, body)| {
                serde_json::from_str(&body)
                    .map(|p| (name.clone(), p))
                    .map_err(|source| StoreError::BadProfile { name, source })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("headroom-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn record(id: &str) -> RunRecord {
        RunRecord {
            id: id.into(),
            workload: "ti2v-5b".into(),
            device: "GPU-1".into(),
            state: RunState::Admitted,
            admitted_at: 100.0,
            started_at: None,
            ended_at: None,
            pid: None,
            pid_start_time: None,
            reserved_bytes: 33 << 30,
            memory_limit_bytes: 36 << 30,
            declared_peak_bytes: None,
            exit_code: None,
            oom_message: None,
            mean_co_runners: None,
            basis: Some("{}".into()),
            corunners: None,
        }
    }

    #[test]
    fn runs_survive_reopen() {
        let d = dir("reopen");
        {
            let mut s = Store::open(&d).unwrap();
            s.insert_run(&record("a")).unwrap();
            s.set_started("a", 42, Some(7), 101.0).unwrap();
            s.append_samples("a", &[(0.0, 1 << 30), (1.0, 2 << 30)])
                .unwrap();
            s.insert_run(&record("b")).unwrap();
            s.finish(
                "b",
                RunState::Oom,
                Some(1),
                Some("CUDA out of memory"),
                Some(1.0),
                150.0,
            )
            .unwrap();
        }
        let s = Store::open(&d).unwrap();
        assert!(s.integrity_ok().unwrap());
        let open = s.open_runs().unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(
            (open[0].state, open[0].pid, open[0].pid_start_time),
            (RunState::Running, Some(42), Some(7))
        );
        assert_eq!(
            s.samples("a").unwrap(),
            vec![(0.0, 1 << 30), (1.0, 2 << 30)]
        );
        let b = s
            .all_runs()
            .unwrap()
            .into_iter()
            .find(|r| r.id == "b")
            .unwrap();
        assert_eq!(
            (b.state, b.oom_message.as_deref()),
            (RunState::Oom, Some("CUDA out of memory"))
        );
        assert_eq!(s.recent_runs("ti2v-5b", 10).unwrap().len(), 1);
        let mode = std::fs::metadata(&d).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuses_symlinked_and_world_writable_dirs() {
        let d = dir("unsafe");
        std::fs::create_dir_all(&d).unwrap();
        let link = d.with_extension("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&d, &link).unwrap();
        assert!(matches!(Store::open(&link), Err(StoreError::Symlink(_))));
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            Store::open(&d),
            Err(StoreError::WorldWritable(..))
        ));
        std::fs::remove_file(&link).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn profiles_round_trip() {
        let d = dir("profiles");
        let s = Store::open(&d).unwrap();
        s.put_profile("x", &vec![1u64, 2], 1.0).unwrap();
        s.put_profile("x", &vec![3u64], 2.0).unwrap();
        let got: Vec<(String, Vec<u64>)> = s.profiles().unwrap();
        assert_eq!(got, vec![("x".to_string(), vec![3])]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
