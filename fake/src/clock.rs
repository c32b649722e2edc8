//! The virtual clock: virtual seconds = (wall now − epoch) × time_scale, or a frozen value.
//!
//! All processes that share a state directory share one epoch, stored in
//! `$HEADROOM_FAKE_STATE_DIR/epoch` (unix seconds, written once: temp file + hard link, so
//! the first writer wins and nobody reads a half-written file; symlinks are never followed).
//! Without a state directory the epoch is the first time this process asked for a clock
//! (for the fake NVML: its first `nvmlInit`). `HEADROOM_FAKE_FREEZE_AT=<seconds>` freezes
//! virtual time, for deterministic golden tests.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why a clock could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error("HEADROOM_FAKE_FREEZE_AT={0:?} is not a finite number of seconds ≥ 0")]
    BadFreeze(String),
    #[error("time_scale {0} must be a finite number > 0")]
    BadScale(f64),
    #[error("epoch file {path}: {source}")]
    Epoch {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Virtual time for one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Clock {
    epoch_unix_s: f64,
    time_scale: f64,
    frozen_at: Option<f64>,
}

/// Wall-clock now as unix seconds.
pub fn wall_now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

static PROCESS_EPOCH: OnceLock<f64> = OnceLock::new();

impl Clock {
    /// A clock with an explicit epoch (unix seconds).
    pub fn new(
        epoch_unix_s: f64,
        time_scale: f64,
        frozen_at: Option<f64>,
    ) -> Result<Self, ClockError> {
        if !time_scale.is_finite() || time_scale <= 0.0 {
            return Err(ClockError::BadScale(time_scale));
        }
        Ok(Self {
            epoch_unix_s,
            time_scale,
            frozen_at,
        })
    }

    /// The clock as the environment sets it up: epoch from `state_dir` (created there if
    /// missing) or this process's first call, freeze from `HEADROOM_FAKE_FREEZE_AT`.
    pub fn from_env(time_scale: f64, state_dir: Option<&Path>) -> Result<Self, ClockError> {
        let frozen_at = match std::env::var(crate::ENV_FREEZE_AT) {
            Ok(v) => Some(parse_freeze(&v)?),
            Err(_) => None,
        };
        let epoch = match state_dir {
            Some(dir) => shared_epoch(dir)?,
            None => *PROCESS_EPOCH.get_or_init(wall_now_unix),
        };
        Self::new(epoch, time_scale, frozen_at)
    }

    /// Virtual seconds now.
    pub fn now(&self) -> f64 {
        match self.frozen_at {
            Some(t) => t,
            None => ((wall_now_unix() - self.epoch_unix_s) * self.time_scale).max(0.0),
        }
    }

    /// Virtual seconds per wall second.
    pub fn time_scale(&self) -> f64 {
        self.time_scale
    }

    /// Whether virtual time stands still.
    pub fn is_frozen(&self) -> bool {
        self.frozen_at.is_some()
    }

    /// The epoch, unix seconds.
    pub fn epoch_unix_s(&self) -> f64 {
        self.epoch_unix_s
    }

    /// Wall time until virtual time reaches `t` (zero if it already has); `None` when frozen
    /// before `t` (it never will).
    pub fn wall_until(&self, t: f64) -> Option<Duration> {
        let now = self.now();
        if now >= t {
            return Some(Duration::ZERO);
        }
        if self.is_frozen() {
            return None;
        }
        Duration::try_from_secs_f64((t - now) / self.time_scale).ok()
    }

    /// Converts a virtual duration to wall time.
    pub fn to_wall(&self, virtual_s: f64) -> Duration {
        Duration::try_from_secs_f64((virtual_s / self.time_scale).max(0.0))
            .unwrap_or(Duration::ZERO)
    }
}

fn parse_freeze(v: &str) -> Result<f64, ClockError> {
    match v.trim().parse::<f64>() {
        Ok(t) if t.is_finite() && t >= 0.0 => Ok(t),
        _ => Err(ClockError::BadFreeze(v.to_string())),
    }
}

/// Reads `<dir>/epoch`, creating it with wall-clock now if it does not exist yet.
pub fn shared_epoch(dir: &Path) -> Result<f64, ClockError> {
    let path = dir.join("epoch");
    let err = |source: io::Error| ClockError::Epoch {
        path: path.display().to_string(),
        source,
    };
    fs::create_dir_all(dir).map_err(err)?;
    if let Some(epoch) = read_epoch(&path).map_err(err)? {
        return Ok(epoch);
    }
    let now = wall_now_unix();
    let tmp = dir.join(format!(".epoch.{}.{}", std::process::id(), unique_suffix()));
    let written = (|| -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        writeln!(f, "{now:.9}")?;
        f.sync_all()?;
        // A hard link fails if `epoch` exists: the first writer wins, atomically.
        match fs::hard_link(&tmp, &path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    })();
    let _ = fs::remove_file(&tmp);
    written.map_err(err)?;
    read_epoch(&path)
        .map_err(err)?
        .ok_or_else(|| err(io::Error::new(io::ErrorKind::NotFound, "epoch vanished")))
}

/// The epoch in `path`, `None` if there is no such file. Symlinks and non-files are errors.
fn read_epoch(path: &Path) -> io::Result<Option<f64>> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file (symlinks are not followed)",
        ));
    }
    let text = fs::read_to_string(path)?;
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(Some(v)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{:?} is not unix seconds", text.trim()),
        )),
    }
}

/// A suffix that differs between calls in one process (temp file names).
pub(crate) fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    (NEXT.fetch_add(1, Ordering::Relaxed) << 32) ^ nanos
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::temp_dir;

    #[test]
    fn scales_and_freezes() {
        let c = Clock::new(wall_now_unix() - 10.0, 2.0, None).unwrap();
        let now = c.now();
        assert!((19.9..21.0).contains(&now), "{now}");
        let w = c.wall_until(now + 4.0).unwrap();
        assert!(
            w <= Duration::from_secs(2) && w > Duration::from_millis(1900),
            "{w:?}"
        );
        assert_eq!(c.to_wall(3.0), Duration::from_millis(1500));
        let f = Clock::new(0.0, 1.0, Some(42.0)).unwrap();
        assert_eq!(f.now(), 42.0);
        assert_eq!(f.wall_until(43.0), None);
        assert_eq!(f.wall_until(41.0), Some(Duration::ZERO));
        assert!(matches!(
            Clock::new(0.0, 0.0, None),
            Err(ClockError::BadScale(_))
        ));
        assert!(parse_freeze("x").is_err());
        assert!(parse_freeze("-1").is_err());
        assert_eq!(parse_freeze(" 12.5 ").unwrap(), 12.5);
    }

    #[test]
    fn epoch_is_shared_and_first_writer_wins() {
        let dir = temp_dir("epoch");
        let a = shared_epoch(&dir).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let b = shared_epoch(&dir).unwrap();
        assert_eq!(a, b);
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("epoch")]);
    }

    #[test]
    fn epoch_symlink_is_refused() {
        let dir = temp_dir("epoch-link");
        let target = dir.join("elsewhere");
        fs::write(&target, "123.0\n").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("epoch")).unwrap();
        let e = shared_epoch(&dir).unwrap_err();
        assert!(e.to_string().contains("symlinks"), "{e}");
    }

    #[test]
    fn concurrent_creators_agree() {
        let dir = temp_dir("epoch-race");
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let d = dir.to_path_buf();
                std::thread::spawn(move || shared_epoch(&d).unwrap())
            })
            .collect();
        let values: Vec<f64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(values.windows(2).all(|w| w[0] == w[1]), "{values:?}");
    }
}
