//! Scenario values as TOML gives them, turned into typed values with problems recorded at
//! their location: numbers, sizes, series (a number or a timeline), memory timelines.

use super::{Activity, Problem};
use crate::timeline::{Series, Timeline};
use headroom_core::units::parse_size;
use toml::Value;

/// Problems found so far.
#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<Problem>);

impl Problems {
    pub(super) fn add(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            at: at.into(),
            message: message.into(),
        });
    }
}

pub(super) fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// `[[t, v], ...]` → points, with `value` converting each value.
pub(super) fn points(
    v: &Value,
    at: &str,
    what: &str,
    value: impl Fn(&Value) -> Result<f64, String>,
    p: &mut Problems,
) -> Option<Timeline> {
    let Value::Array(items) = v else {
        p.add(at, format!("expected {what}"));
        return None;
    };
    let mut pts = Vec::with_capacity(items.len());
    let mut ok = true;
    for (k, item) in items.iter().enumerate() {
        let pair = match item {
            Value::Array(pair) if pair.len() == 2 => pair,
            _ => {
                p.add(at, format!("point {k}: expected [seconds, value]"));
                ok = false;
                continue;
            }
        };
        let (Some(tv), Some(vv)) = (pair.first(), pair.get(1)) else {
            continue;
        };
        let Some(t) = number(tv) else {
            p.add(at, format!("point {k}: time must be a number of seconds"));
            ok = false;
            continue;
        };
        match value(vv) {
            Ok(x) => pts.push((t, x)),
            Err(e) => {
                p.add(at, format!("point {k}: {e}"));
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    match Timeline::new(pts) {
        Ok(t) => Some(t),
        Err(e) => {
            p.add(at, e.to_string());
            None
        }
    }
}

pub(super) fn size_value(v: &Value) -> Result<f64, String> {
    match v {
        Value::String(s) => parse_size(s).map(|b| b as f64).map_err(|e| e.to_string()),
        _ => Err("size must be a string such as \"21GiB\" or \"512MiB\"".to_string()),
    }
}

pub(super) fn memory_timeline(v: &Value, at: &str, p: &mut Problems) -> Option<Timeline> {
    points(
        v,
        at,
        "a timeline [[seconds, \"size\"], ...]",
        size_value,
        p,
    )
}

/// A number, or a timeline of numbers, each within `[lo, hi]`.
pub(super) fn series(
    v: Option<&Value>,
    at: &str,
    default: f64,
    lo: f64,
    hi: f64,
    p: &mut Problems,
) -> Series {
    let Some(v) = v else {
        return Series::Constant(default);
    };
    let s = match number(v) {
        Some(x) => Series::Constant(x),
        None => {
            let what = "a number or a timeline [[seconds, value], ...]";
            let num = |v: &Value| number(v).ok_or_else(|| "value must be a number".to_string());
            match points(v, at, what, num, p) {
                Some(t) => Series::Timeline(t),
                None => return Series::Constant(default),
            }
        }
    };
    if !s.within(lo, hi) {
        p.add(at, format!("values must lie within {lo}..{hi}"));
    }
    s
}

pub(super) fn size(s: &str, at: &str, p: &mut Problems) -> Option<u64> {
    match parse_size(s) {
        Ok(b) => Some(b),
        Err(e) => {
            p.add(at, e.to_string());
            None
        }
    }
}

pub(super) fn activity(
    at: &str,
    graphics: Option<&Value>,
    sm: Option<&Value>,
    tensor: Option<&Value>,
    dram: Option<&Value>,
    p: &mut Problems,
) -> Activity {
    Activity {
        graphics: series(graphics, &format!("{at}.graphics_active"), 0.0, 0.0, 1.0, p),
        sm: series(sm, &format!("{at}.sm_active"), 0.0, 0.0, 1.0, p),
        tensor: series(tensor, &format!("{at}.tensor_active"), 0.0, 0.0, 1.0, p),
        dram: series(dram, &format!("{at}.dram_active"), 0.0, 0.0, 1.0, p),
    }
}
