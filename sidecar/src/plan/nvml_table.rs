//! `--gpu INDEX`: the GPU's MIG profile table and every profile's possible placements read
//! from NVML (`nvmlDeviceGetGpuInstanceProfileInfoV` for each profile index, then
//! `nvmlDeviceGetGpuInstancePossiblePlacements_v2` per profile ID; both answer with MIG mode
//! off), its name and memory; as JSON for `--dump-table`, and as the planner's [`GpuSpec`].

use super::gpu::{GpuSource, GpuSpec, SliceProfile};
use headroom_core::mig_profiles::MigTable;
use headroom_core::nvml::raw::{self, GPU_INSTANCE_PROFILE_COUNT, GpuInstanceProfile};
use headroom_core::nvml::{CallError, ErrorKind, NvmlBackend};
use nvml_wrapper::error::NvmlError;
use serde_json::{Value, json};

/// One profile as read, with its placements or why they could not be read.
#[derive(Debug, Clone)]
pub struct ReadProfile {
    pub info: GpuInstanceProfile,
    pub placements: Result<Vec<(u32, u32)>, CallError>,
}

impl ReadProfile {
    /// `3g.40gb` (the NVML name without `MIG `, or made up from the slices when the driver
    /// gives no name).
    pub fn short_name(&self) -> String {
        match &self.info.name {
            Some(n) => n.trim().trim_start_matches("MIG ").trim().to_string(),
            None => format!("{}g.id{}", self.info.slice_count, self.info.id),
        }
    }
}

/// What NVML says about one GPU's MIG capabilities.
#[derive(Debug, Clone)]
pub struct NvmlTable {
    pub index: u32,
    pub name: String,
    pub driver: Option<String>,
    pub memory_total_bytes: u64,
    pub memory_reserved_bytes: u64,
    pub profiles: Vec<ReadProfile>,
}

fn call(name: &'static str, index: u32, e: &NvmlError) -> CallError {
    CallError::new(name, Some(index.to_string()), e)
}

/// Reads GPU `index`'s table. Profile indexes the GPU does not support are skipped; other
/// failures are errors.
pub fn read(backend: &NvmlBackend, index: u32) -> Result<NvmlTable, CallError> {
    let nvml = backend.nvml();
    let device = backend.device(index)?;
    let name = device
        .name()
        .map_err(|e| call("nvmlDeviceGetName", index, &e))?;
    let memory = device
        .memory_info()
        .map_err(|e| call("nvmlDeviceGetMemoryInfo_v2", index, &e))?;
    let mut profiles = Vec::new();
    for p in 0..GPU_INSTANCE_PROFILE_COUNT {
        let info = match raw::gpu_instance_profile(nvml, &device, p) {
            Ok(i) => i,
            Err(NvmlError::NotSupported | NvmlError::InvalidArg) => continue,
            Err(e) => return Err(call("nvmlDeviceGetGpuInstanceProfileInfoV", index, &e)),
        };
        let placements = raw::gpu_instance_placements(nvml, &device, info.id)
            .map_err(|e| call("nvmlDeviceGetGpuInstancePossiblePlacements_v2", index, &e));
        profiles.push(ReadProfile { info, placements });
    }
    Ok(NvmlTable {
        index,
        name,
        driver: backend.driver_version().ok(),
        memory_total_bytes: memory.total,
        memory_reserved_bytes: memory.reserved,
        profiles,
    })
}

impl NvmlTable {
    /// The `--dump-table` JSON.
    pub fn to_json(&self) -> Value {
        let profiles: Vec<Value> = self
            .profiles
            .iter()
            .map(|p| {
                let i = &p.info;
                let mut v = json!({
                    "index": i.index,
                    "id": i.id,
                    "name": i.name,
                    "slices": i.slice_count,
                    "instances": i.instance_count,
                    "memory_mib": i.memory_mib,
                    "sm_count": i.sm_count,
                    "copy_engines": i.copy_engines,
                    "decoders": i.decoders,
                    "encoders": i.encoders,
                    "jpeg": i.jpeg,
                    "ofa": i.ofa,
                });
                match &p.placements {
                    Ok(pl) => v["placements"] = json!(pl),
                    Err(e) => v["placements_error"] = json!(e.to_string()),
                }
                v
            })
            .collect();
        json!({
            "gpu_index": self.index,
            "name": self.name,
            "driver_version": self.driver,
            "memory_total_mib": self.memory_total_bytes >> 20,
            "memory_reserved_mib": self.memory_reserved_bytes >> 20,
            "profiles": profiles,
        })
    }

    /// The planner's view of this GPU. `builtin` (the matching built-in table, if any) only
    /// supplies the whole GPU's SM count, which NVML's MIG table does not give.
    pub fn to_spec(&self, builtin: Option<&MigTable>) -> Result<GpuSpec, String> {
        let mut profiles = Vec::new();
        let (mut memory_slices, mut compute_slices, mut max_sm) = (0, 0, 0);
        for p in &self.profiles {
            let placements = match &p.placements {
                Ok(pl) => pl,
                Err(e) => {
                    let hint = if e.kind == ErrorKind::NoPermission {
                        " (NVML allows it only to root: run with sudo)"
                    } else {
                        ""
                    };
                    return Err(format!(
                        "reading the MIG placements of GPU {} ({}) failed: {e}{hint}; or plan \
                         with the built-in table: --gpu <model>",
                        self.index, self.name
                    ));
                }
            };
            let Some(&(_, size)) = placements.first() else {
                continue;
            };
            for &(start, size) in placements {
                memory_slices = memory_slices.max(start + size);
            }
            compute_slices = compute_slices.max(p.info.slice_count);
            max_sm = max_sm.max(p.info.sm_count);
            profiles.push(SliceProfile {
                id: p.info.id,
                name: p.short_name(),
                slices: p.info.slice_count,
                instance_count: p.info.instance_count,
                memory_bytes: p.info.memory_mib << 20,
                sm_count: p.info.sm_count,
                starts: placements.iter().map(|&(s, _)| s).collect(),
                size,
            });
        }
        Ok(GpuSpec {
            name: self.name.clone(),
            source: GpuSource::Nvml { index: self.index },
            memory_total_bytes: self.memory_total_bytes,
            reserved_bytes: self.memory_reserved_bytes,
            sm_count: builtin.map_or(max_sm, |t| t.sm_count.max(max_sm)),
            memory_slices,
            compute_slices,
            profiles,
        })
    }
}
