//! The goodput chart: GPU memory over time, one panel per policy, each process a stacked
//! band in its own colour, the usable capacity as a red line and each OOM as a red cross.
//! Drawn into an RGB buffer with an 8x8 bitmap font and written as PNG (atomically: a
//! temporary file beside the target, then a rename).

use anyhow::Context;
use headroom_sim::engine::End;
use headroom_sim::{POLICIES, Report, Scenario};
use std::io::Write;
use std::path::Path;

const W: usize = 1200;
const PANEL_H: usize = 150;
const LEFT: usize = 70;
const RIGHT: usize = 20;
const TOP: usize = 40;
const GAP: usize = 38;

type Rgb = [u8; 3];
const BLACK: Rgb = [0, 0, 0];
const GREY: Rgb = [200, 200, 200];
const RED: Rgb = [210, 30, 30];
const PALETTE: [Rgb; 8] = [
    [66, 133, 244],
    [52, 168, 83],
    [251, 188, 5],
    [171, 71, 188],
    [0, 172, 193],
    [255, 112, 67],
    [158, 157, 36],
    [92, 107, 192],
];

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Self {
        Canvas {
            w,
            h,
            px: vec![255; w * h * 3],
        }
    }

    fn set(&mut self, x: usize, y: usize, c: Rgb) {
        if x < self.w && y < self.h {
            let i = (y * self.w + x) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    fn hline(&mut self, x0: usize, x1: usize, y: usize, c: Rgb) {
        for x in x0..=x1 {
            self.set(x, y, c);
        }
    }

    fn vline(&mut self, x: usize, y0: usize, y1: usize, c: Rgb) {
        for y in y0.min(y1)..=y0.max(y1) {
            self.set(x, y, c);
        }
    }

    fn text(&mut self, x: usize, y: usize, s: &str, scale: usize, c: Rgb) {
        let mut cx = x;
        for ch in s.chars() {
            let code = if ch.is_ascii() {
                ch as usize
            } else {
                b'?' as usize
            };
            let glyph = font8x8::legacy::BASIC_LEGACY
                .get(code)
                .copied()
                .unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        for dy in 0..scale {
                            for dx in 0..scale {
                                self.set(cx + col * scale + dx, y + row * scale + dy, c);
                            }
                        }
                    }
                }
            }
            cx += 8 * scale;
        }
    }

    fn cross(&mut self, x: usize, y: usize, c: Rgb) {
        for d in 0..=8usize {
            for t in 0..2 {
                let (xa, ya, yb) = (x + d + t, y + d, y + 8 - d);
                self.set(xa.saturating_sub(4), ya.saturating_sub(4), c);
                self.set(xa.saturating_sub(4), yb.saturating_sub(4), c);
            }
        }
    }
}

/// Draws `report`'s runs (recorded with traces) into `path`.
pub fn draw(path: &Path, scenario: &Scenario, report: &Report) -> anyhow::Result<()> {
    let panels: Vec<&str> = POLICIES
        .iter()
        .copied()
        .filter(|k| report.run(k).is_some())
        .collect();
    let h = TOP + panels.len() * (PANEL_H + GAP) + 10;
    let mut c = Canvas::new(W, h);
    let capacity = scenario.gpu.capacity() as f64;
    let y_max = capacity * 1.1;
    let t_max = panels
        .iter()
        .filter_map(|k| report.run(k))
        .map(|r| r.end_time)
        .fold(1.0, f64::max);
    let plot_w = W - LEFT - RIGHT;
    c.text(
        LEFT,
        10,
        &format!(
            "GPU memory over time: {} (seed {})",
            scenario.name, report.seed
        ),
        2,
        BLACK,
    );
    let x_of = |t: f64| LEFT + ((t / t_max).clamp(0.0, 1.0) * (plot_w - 1) as f64) as usize;
    for (i, key) in panels.iter().enumerate() {
        let (Some(run), Some(rep)) = (report.run(key), report.get(key)) else {
            continue;
        };
        let top = TOP + i * (PANEL_H + GAP) + 14;
        let bottom = top + PANEL_H;
        let y_of = |b: f64| bottom - ((b / y_max).clamp(0.0, 1.0) * PANEL_H as f64) as usize;
        c.text(
            LEFT,
            top - 14,
            &format!(
                "{key}: {}/{} finished, {} OOM, makespan {:.0} s {}",
                rep.finished, rep.jobs, rep.ooms, rep.makespan_s, rep.detail
            ),
            1,
            BLACK,
        );
        // Grid and axes: a line every 20 GiB, a tick every 60 s.
        let gib = (1u64 << 30) as f64;
        let mut g = 0.0;
        while g <= y_max {
            let y = y_of(g);
            c.hline(LEFT, LEFT + plot_w - 1, y, GREY);
            c.text(
                4,
                y.saturating_sub(4),
                &format!("{:>3.0} GiB", g / gib),
                1,
                BLACK,
            );
            g += 20.0 * gib;
        }
        let step = if t_max > 7200.0 { 3600.0 } else { 60.0 };
        let mut t = 0.0;
        while t <= t_max {
            let x = x_of(t);
            c.vline(x, bottom, bottom + 3, BLACK);
            if i + 1 == panels.len() || step >= 3600.0 {
                let label = if step >= 3600.0 {
                    format!("{:.0}h", t / 3600.0)
                } else {
                    format!("{:.0}", t)
                };
                c.text(x.saturating_sub(8), bottom + 6, &label, 1, BLACK);
            }
            t += step;
        }
        c.vline(LEFT, top, bottom, BLACK);
        c.hline(LEFT, LEFT + plot_w - 1, bottom, BLACK);
        // Stacked processes, one column per trace point.
        for (k, (t, procs)) in run.trace.iter().enumerate() {
            let x0 = x_of(*t);
            let x1 = run
                .trace
                .get(k + 1)
                .map_or(x0, |n| x_of(n.0).saturating_sub(1).max(x0));
            let mut sorted = procs.clone();
            sorted.sort_by_key(|p| p.0);
            let mut acc = 0.0;
            for (job, _slot, bytes) in sorted {
                let y_lo = y_of(acc);
                acc += bytes as f64;
                let y_hi = y_of(acc);
                let colour = PALETTE[job % PALETTE.len()];
                for x in x0..=x1 {
                    for y in y_hi..y_lo {
                        c.set(x, y, colour);
                    }
                }
            }
        }
        // Capacity and OOMs.
        let cap_y = y_of(capacity);
        for x in (LEFT..LEFT + plot_w).step_by(2) {
            c.set(x, cap_y, RED);
            c.set(x, cap_y + 1, RED);
        }
        c.text(
            LEFT + plot_w - 80,
            cap_y.saturating_sub(10),
            "capacity",
            1,
            RED,
        );
        for j in &run.jobs {
            if let (Some(end), Some(o)) = (j.end, j.outcome)
                && o != End::Completed
            {
                c.cross(x_of(end), cap_y, RED);
            }
        }
    }
    write_png(path, &c)
}

fn write_png(path: &Path, c: &Canvas) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .context("the chart path has no file name")?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let mut buf = std::io::BufWriter::new(file);
        {
            let mut enc = png::Encoder::new(&mut buf, c.w as u32, c.h as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut writer = enc.write_header()?;
            writer.write_image_data(&c.px)?;
        }
        let file = buf.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    let mut stderr = std::io::stderr();
    if result.is_ok() {
        let _ = writeln!(stderr, "wrote {}", path.display());
    }
    result
}
