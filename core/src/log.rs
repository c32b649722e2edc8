//! Minimal structured logging to stderr, as text (`level=info msg="..." key=value`) or JSON
//! lines, chosen once at start-up with `--log-format`.

use std::fmt::Display;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

static FORMAT: OnceLock<Format> = OnceLock::new();

pub fn init(format: Format) {
    let _ = FORMAT.set(format);
}

#[derive(Debug, Clone, Copy)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

/// Writes one log line with `fields`.
pub fn log(level: Level, msg: &str, fields: &[(&str, &dyn Display)]) {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let line = match FORMAT.get().copied().unwrap_or(Format::Text) {
        Format::Text => {
            let mut s = format!("ts={ts:.3} level={} msg={}", level.as_str(), quote(msg));
            for (k, v) in fields {
                s.push_str(&format!(" {k}={}", quote(&v.to_string())));
            }
            s
        }
        Format::Json => {
            let mut map = serde_json::Map::new();
            map.insert("ts".into(), serde_json::json!(ts));
            map.insert("level".into(), level.as_str().into());
            map.insert("msg".into(), msg.into());
            for (k, v) in fields {
                map.insert((*k).to_string(), v.to_string().into());
            }
            serde_json::Value::Object(map).to_string()
        }
    };
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

pub fn info(msg: &str, fields: &[(&str, &dyn Display)]) {
    log(Level::Info, msg, fields);
}

pub fn warn(msg: &str, fields: &[(&str, &dyn Display)]) {
    log(Level::Warn, msg, fields);
}

pub fn error(msg: &str, fields: &[(&str, &dyn Display)]) {
    log(Level::Error, msg, fields);
}
