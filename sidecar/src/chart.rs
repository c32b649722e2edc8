//! A small terminal chart of a memory-over-time envelope, for `profiles show`: memory on the
//! vertical axis (GiB), time on the horizontal (seconds), drawn with block characters.

use headroom_core::units::Bytes;
use std::fmt::Write;

const GIB: f64 = (1u64 << 30) as f64;

/// The envelope's value at `t` (linear between points, 0 outside).
fn at(points: &[(f64, u64)], t: f64) -> f64 {
    match points.iter().position(|(pt, _)| *pt >= t) {
        None => 0.0,
        Some(0) => points
            .first()
            .map_or(0.0, |p| if p.0 == t { p.1 as f64 } else { 0.0 }),
        Some(i) => {
            let (t0, v0) = points[i - 1];
            let (t1, v1) = points[i];
            if t1 <= t0 {
                v1 as f64
            } else {
                v0 as f64 + (v1 as f64 - v0 as f64) * (t - t0) / (t1 - t0)
            }
        }
    }
}

/// Draws `points` (seconds, bytes) `width` columns by `height` rows.
pub fn draw(points: &[(f64, u64)], width: usize, height: usize) -> String {
    let mut out = String::new();
    let (Some(end), Some(peak)) = (points.last().map(|p| p.0), points.iter().map(|p| p.1).max())
    else {
        return "(no data)\n".into();
    };
    if end <= 0.0 || peak == 0 || width < 2 || height < 2 {
        return "(no data)\n".into();
    }
    // Column maxima, so a short peak is never drawn below its height.
    let cols: Vec<f64> = (0..width)
        .map(|c| {
            let (a, b) = (
                end * c as f64 / width as f64,
                end * (c + 1) as f64 / width as f64,
            );
            let inner = points
                .iter()
                .filter(|(t, _)| *t >= a && *t <= b)
                .map(|p| p.1 as f64);
            inner
                .chain([at(points, a), at(points, b)])
                .fold(0.0, f64::max)
        })
        .collect();
    let top = peak as f64;
    for row in (0..height).rev() {
        let level = top * (row as f64 + 0.5) / height as f64;
        let label = if row == height - 1 {
            format!("{:>6.1} GiB ┤", top / GIB)
        } else if row == 0 {
            format!("{:>6.1} GiB ┤", 0.0)
        } else {
            "           │".to_string()
        };
        out.push_str(&label);
        for v in &cols {
            out.push(if *v >= level { '█' } else { ' ' });
        }
        out.push('\n');
    }
    let _ = writeln!(out, "           └{}", "─".repeat(width));
    let _ = writeln!(
        out,
        "            0 s{:>w$}",
        format!("{end:.0} s"),
        w = width.saturating_sub(3)
    );
    let _ = write!(out, "            peak {}", Bytes(peak));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_late_peak() {
        let gib = 1u64 << 30;
        let pts = [
            (0.0, 0),
            (40.0, 21 * gib),
            (211.0, 21 * gib),
            (213.0, 33 * gib),
            (242.0, 33 * gib),
        ];
        let c = draw(&pts, 60, 8);
        let rows: Vec<&str> = c.lines().collect();
        assert!(rows[0].starts_with("  33.0 GiB"), "{c}");
        // The top row is filled only at the end (the peak), the middle rows most of the way.
        let top: String = rows[0].chars().skip(12).collect();
        assert!(
            top.trim_start().starts_with('█') && top.starts_with(' '),
            "{c}"
        );
        assert!(c.contains("242 s") && c.contains("peak 33.00 GiB"), "{c}");
    }

    #[test]
    fn empty_is_said() {
        assert_eq!(draw(&[], 10, 5), "(no data)\n");
    }
}
