//! The workloads of a mix and their peaks: a peak declared inline (`name=N@PEAK`), a profile
//! from `--profiles FILE` (the TOML `headroom-sidecar profiles export` writes: the sidecar's
//! learned profiles), or a built-in seed (Wan2.2 TI2V-5B and S2V-14B as the seeds measured
//! them on an H100). A workload with none of the three is an error that says how to declare it.

use super::mix::MixItem;
use headroom_admission::{Profile, Stretch};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where a workload's peak came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `--mix name=N@PEAK`.
    Inline,
    /// A `[[profile]]` of `--profiles FILE`.
    Profiles,
    /// Built in from the seeds.
    Seed,
}

/// One workload of the mix.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: String,
    /// Peak memory, bytes.
    pub peak_bytes: u64,
    /// The memory-over-time profile, when one is known (not for inline peaks).
    pub profile: Option<Profile>,
    pub source: Source,
}

impl Workload {
    /// Solo duration, seconds, when the profile gives one.
    pub fn duration_s(&self) -> Option<f64> {
        self.profile.as_ref().map(Profile::duration_s)
    }
}

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The seeds' Wan2.2 workloads (scenarios/goodput/wan22.toml): memory steps over solo
/// seconds, upper envelope of the measured timelines; TI2V-5B peaks at 33984 MiB (VAE decode,
/// last 30 s of 242 s), S2V-14B at ~58 GiB (245 s).
pub fn seeds() -> Vec<Workload> {
    let seed = |name: &str, duration: f64, steps: &[(f64, u64)]| {
        let peak = steps.iter().map(|s| s.1).max().unwrap_or(0);
        Workload {
            name: name.to_string(),
            peak_bytes: peak,
            profile: Profile::from_solo_steps(name, duration, steps, Stretch::PRIOR, 0).ok(),
            source: Source::Seed,
        }
    };
    vec![
        seed(
            "ti2v-5b",
            242.0,
            &[(0.0, GIB), (8.0, 22250 * MIB), (211.0, 33984 * MIB)],
        ),
        seed(
            "s2v-14b",
            245.0,
            &[(0.0, 2 * GIB), (10.0, 55368 * MIB), (215.0, 58 * GIB)],
        ),
    ]
}

#[derive(Debug, Deserialize)]
struct ProfileFile {
    #[serde(default)]
    profile: Vec<Profile>,
}

/// Reads a `profiles export` TOML file (`-` for stdin).
pub fn load_profiles(path: &Path) -> Result<Vec<Profile>, String> {
    let shown = path.display();
    let text = if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("--profiles -: {e}"))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("--profiles {shown}: {e}"))?
    };
    let file: ProfileFile =
        toml::from_str(&text).map_err(|e| format!("--profiles {shown}: {e}"))?;
    if file.profile.is_empty() {
        return Err(format!(
            "--profiles {shown}: no [[profile]] tables (write one with `headroom-sidecar \
             profiles export --output FILE`)"
        ));
    }
    Ok(file.profile)
}

/// The workloads of `mix` with their counts, in mix order: inline peaks first, then
/// `--profiles`, then the seeds. Every workload that has none is reported.
pub fn resolve(
    mix: &[MixItem],
    profiles: &[Profile],
    profiles_path: Option<&PathBuf>,
) -> Result<Vec<(Workload, u32)>, Vec<String>> {
    let seeds = seeds();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for m in mix {
        let w = if let Some(peak) = m.peak {
            Some(Workload {
                name: m.name.clone(),
                peak_bytes: peak,
                profile: None,
                source: Source::Inline,
            })
        } else if let Some(p) = profiles.iter().find(|p| p.name() == m.name) {
            Some(Workload {
                name: m.name.clone(),
                peak_bytes: p.peak(),
                profile: Some(p.clone()),
                source: Source::Profiles,
            })
        } else {
            seeds.iter().find(|s| s.name == m.name).cloned()
        };
        match w {
            Some(w) if w.peak_bytes > 0 => out.push((w, m.count)),
            Some(w) => errors.push(format!("workload {}: its profile has a peak of 0", w.name)),
            None => errors.push(unknown(&m.name, profiles, profiles_path, &seeds)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn unknown(name: &str, profiles: &[Profile], path: Option<&PathBuf>, seeds: &[Workload]) -> String {
    let known: Vec<&str> = profiles
        .iter()
        .map(Profile::name)
        .chain(seeds.iter().map(|s| s.name.as_str()))
        .collect();
    let from = match path {
        Some(p) => format!("not in --profiles {} and not a built-in seed", p.display()),
        None => "no learned profile (pass --profiles FILE, written by `headroom-sidecar profiles \
                 export`) and not a built-in seed"
            .to_string(),
    };
    format!(
        "unknown workload {name:?}: {from}; known: {}; or declare its peak inline: \
         --mix {name}=N@PEAK (e.g. {name}=2@40GiB)",
        known.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::mix;

    #[test]
    fn seeds_carry_the_measured_peaks() {
        let s = seeds();
        assert_eq!(s[0].peak_bytes, 33984 * MIB);
        assert_eq!(s[1].peak_bytes, 58 * GIB);
        let p = s[0].profile.as_ref().unwrap();
        assert_eq!(p.peak(), 33984 * MIB);
        assert_eq!(p.duration_s(), 242.0);
    }

    #[test]
    fn inline_then_profiles_then_seeds() {
        let file = Profile::from_solo_steps(
            "ti2v-5b",
            100.0,
            &[(0.0, 10 * GIB), (50.0, 20 * GIB)],
            Stretch::PRIOR,
            3,
        )
        .unwrap();
        let m = mix::parse("ti2v-5b=1,s2v-14b=2,x=1@5GiB").unwrap();
        let r = resolve(&m, &[file], None).unwrap();
        assert_eq!(r[0].0.peak_bytes, 20 * GIB);
        assert_eq!(r[0].0.source, Source::Profiles);
        assert_eq!((r[1].0.source.clone(), r[1].1), (Source::Seed, 2));
        assert_eq!(
            (r[2].0.peak_bytes, r[2].0.source.clone()),
            (5 * GIB, Source::Inline)
        );
    }

    #[test]
    fn unknown_workloads_say_how_to_declare_them() {
        let m = mix::parse("nope=1,ti2v-5b=1,also-nope=2").unwrap();
        let e = resolve(&m, &[], None).unwrap_err();
        assert_eq!(e.len(), 2);
        assert!(
            e[0].contains("\"nope\"") && e[0].contains("--profiles"),
            "{}",
            e[0]
        );
        assert!(e[0].contains("nope=N@PEAK"), "{}", e[0]);
    }
}
