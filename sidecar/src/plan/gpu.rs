//! The GPU the planner plans for: its MIG GPU-instance profiles with their placements, its
//! memory and SMs, from a built-in table (`--gpu h100-80gb`) or from NVML (`--gpu 0`, see
//! `nvml_table`).

use headroom_core::mig_profiles::{self, MigTable, TABLES};
use serde::Serialize;

/// Memory the driver keeps from CUDA on a GPU without MIG. Measured on the seeds' H100 80GB
/// (nvidia-smi total 81559 MiB, PyTorch's "total capacity" 79.18 GiB = 81079 MiB); assumed
/// for the other built-in models, whose reserve was not measured. NVML reports the real
/// value (`--gpu INDEX`).
pub const DRIVER_RESERVE_MIB: u64 = 480;

/// One GPU-instance profile as the planner uses it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SliceProfile {
    /// Profile ID (`nvidia-smi mig -lgip`'s ID column, what `-cgi` takes).
    pub id: u32,
    /// `3g.40gb` (without the `MIG ` prefix).
    pub name: String,
    /// Compute slices.
    pub slices: u32,
    pub instance_count: u32,
    pub memory_bytes: u64,
    pub sm_count: u32,
    /// Allowed start memory slices.
    pub starts: Vec<u32>,
    /// Memory slices an instance occupies.
    pub size: u32,
}

/// Where the table came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GpuSource {
    /// A built-in table (`headroom_core::mig_profiles`).
    Builtin { key: String },
    /// Read from NVML for this GPU index.
    Nvml { index: u32 },
}

/// Everything the planner needs to know about the GPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuSpec {
    pub name: String,
    pub source: GpuSource,
    pub memory_total_bytes: u64,
    /// Memory the driver keeps (not usable by CUDA) with MIG off.
    pub reserved_bytes: u64,
    /// SMs of the whole GPU.
    pub sm_count: u32,
    pub memory_slices: u32,
    pub compute_slices: u32,
    pub profiles: Vec<SliceProfile>,
}

impl GpuSpec {
    /// The spec of a built-in table.
    pub fn builtin(t: &MigTable) -> Self {
        GpuSpec {
            name: t.name.to_string(),
            source: GpuSource::Builtin {
                key: t.key.to_string(),
            },
            memory_total_bytes: t.memory_total_mib << 20,
            reserved_bytes: DRIVER_RESERVE_MIB << 20,
            sm_count: t.sm_count,
            memory_slices: t.memory_slices,
            compute_slices: t.compute_slices,
            profiles: t
                .profiles
                .iter()
                .map(|p| SliceProfile {
                    id: p.id,
                    name: p.name.to_string(),
                    slices: p.slices,
                    instance_count: p.instance_count,
                    memory_bytes: p.memory_bytes(),
                    sm_count: p.sm_count,
                    starts: p.placement_starts.to_vec(),
                    size: p.placement_size,
                })
                .collect(),
        }
    }

    /// Memory CUDA can use on the whole GPU (MIG off).
    pub fn usable_bytes(&self) -> u64 {
        self.memory_total_bytes.saturating_sub(self.reserved_bytes)
    }

    /// The share of the GPU's SMs that `sm` SMs are, in (0, 1].
    pub fn sm_share(&self, sm: u32) -> f64 {
        if self.sm_count == 0 {
            return 1.0;
        }
        (f64::from(sm) / f64::from(self.sm_count)).clamp(f64::MIN_POSITIVE, 1.0)
    }

    /// The GPU index `nvidia-smi -i` should name, when the plan was read from a GPU.
    pub fn index(&self) -> Option<u32> {
        match self.source {
            GpuSource::Nvml { index } => Some(index),
            GpuSource::Builtin { .. } => None,
        }
    }
}

/// The built-in table `--gpu` names, or an error listing the known models.
pub fn resolve_model(name: &str) -> Result<&'static MigTable, String> {
    mig_profiles::lookup(name).ok_or_else(|| {
        format!(
            "--gpu: unknown GPU model {name:?}; known models: {} (or a GPU index such as 0 to \
             read the table from NVML)",
            known_models()
        )
    })
}

/// `h100-80gb (NVIDIA H100 80GB HBM3), ...`.
pub fn known_models() -> String {
    TABLES
        .iter()
        .map(|t| format!("{} ({})", t.key, t.name))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_h100_spec() {
        let s = GpuSpec::builtin(resolve_model("H100 80GB").unwrap());
        assert_eq!(s.usable_bytes(), 81079 << 20);
        assert_eq!(s.profiles.len(), 7);
        assert!((s.sm_share(60) - 60.0 / 132.0).abs() < 1e-12);
        assert_eq!(s.index(), None);
    }

    #[test]
    fn unknown_model_lists_the_known_ones() {
        let e = resolve_model("z100").unwrap_err();
        for k in [
            "h100-80gb",
            "h200-141gb",
            "b200-180gb",
            "a100-40gb",
            "a100-80gb",
        ] {
            assert!(e.contains(k), "{e}");
        }
        assert!(e.contains("\"z100\""), "{e}");
    }
}
