//! Built-in MIG GPU-instance profile tables (what `nvidia-smi mig -lgip` prints) and the
//! placement rules that say where each profile may start, plus a solver that checks that a
//! set of instances can be placed on one GPU at the same time.
//!
//! Sources:
//! - `h100-80gb` and `b200-180gb`: copied from real `nvidia-smi mig -i 0 -lgip` output in the
//!   seed documents (H100 80GB HBM3 and B200, driver 580.95.05).
//! - `h200-141gb`: profile names, instance counts and engine shares from NVIDIA's Multi-Instance
//!   GPU user guide ("H200 MIG Profiles"); GiB and SM counts of the first six rows from a real
//!   H200's `nvidia-smi mig -lgip` posted in NVIDIA/mig-parted issue #120. The 7g.141gb memory
//!   (139.25 GiB) is an estimate (2 × 3g.71gb + 0.25 GiB, the H100 relation): no real output
//!   of that row was at hand.
//! - Placements: NVIDIA's MIG user guide (`nvidia-smi mig -lgipp`) for the 8-memory-slice GPUs:
//!   1g at 0..6 (size 1), 1g double-memory at 0,2,4,6 (size 2), 2g at 0,2,4 (size 2), 3g at
//!   0 and 4 (size 4), 4g at 0 (size 4), 7g at 0 (size 8). The seed's `nvidia-smi mig -lgi`
//!   shows two 3g.40gb at 0:4 and 4:4, as this table says.
//!
//! Memory is stored in MiB as NVML reports it (`memorySizeMB`): the GiB column × 1024, with
//! `19.62` read as 19.625 GiB (nvidia-smi prints two decimals).

/// One GPU-instance profile of a MIG table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigProfile {
    /// Profile name without the `MIG ` prefix, e.g. `3g.40gb`.
    pub name: &'static str,
    /// NVML's profile index (`NVML_GPU_INSTANCE_PROFILE_3_SLICE` = 2, ...): the argument of
    /// `nvmlDeviceGetGpuInstanceProfileInfo`.
    pub index: u32,
    /// Profile ID as `nvidia-smi mig -lgip` shows it (19, 20, 15, 14, 9, 5, 0).
    pub id: u32,
    /// How many instances of this profile fit on an empty GPU.
    pub instance_count: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Compute slices (the `Ng` of the name).
    pub slices: u32,
    pub sm_count: u32,
    pub copy_engines: u32,
    pub decoders: u32,
    pub encoders: u32,
    pub jpeg: u32,
    pub ofa: u32,
    /// Allowed start memory slices.
    pub placement_starts: &'static [u32],
    /// Memory slices an instance occupies.
    pub placement_size: u32,
}

impl MigProfile {
    /// Memory in bytes.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib << 20
    }
}

/// A GPU model's MIG profile table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigTable {
    /// Key used in scenario files (`mig_profiles = "h100-80gb"`).
    pub key: &'static str,
    /// Memory slices of the GPU (8 on H100/H200/B200).
    pub memory_slices: u32,
    /// Compute slices of the GPU (7 on H100/H200/B200).
    pub compute_slices: u32,
    pub profiles: &'static [MigProfile],
}

impl MigTable {
    /// The profile named `name` (`3g.40gb`, with or without a `MIG ` prefix).
    pub fn profile(&self, name: &str) -> Option<&'static MigProfile> {
        let name = name.trim().trim_start_matches("MIG ").trim();
        self.profiles.iter().find(|p| p.name == name)
    }

    /// The profile with NVML profile index `index`.
    pub fn by_index(&self, index: u32) -> Option<&'static MigProfile> {
        self.profiles.iter().find(|p| p.index == index)
    }

    /// The profile with profile ID `id`.
    pub fn by_id(&self, id: u32) -> Option<&'static MigProfile> {
        self.profiles.iter().find(|p| p.id == id)
    }

    /// The largest number of MIG devices the GPU can hold at once.
    pub fn max_instances(&self) -> u32 {
        self.profiles
            .iter()
            .map(|p| p.instance_count)
            .max()
            .unwrap_or(0)
    }
}

const P1: &[u32] = &[0, 1, 2, 3, 4, 5, 6];
const P1_DOUBLE: &[u32] = &[0, 2, 4, 6];
const P2: &[u32] = &[0, 2, 4];
const P3: &[u32] = &[0, 4];
const P0: &[u32] = &[0];

/// NVML profile indexes (`NVML_GPU_INSTANCE_PROFILE_*`).
mod index {
    pub const SLICE_1: u32 = 0;
    pub const SLICE_2: u32 = 1;
    pub const SLICE_3: u32 = 2;
    pub const SLICE_4: u32 = 3;
    pub const SLICE_7: u32 = 4;
    pub const SLICE_1_REV1: u32 = 7;
    pub const SLICE_1_REV2: u32 = 9;
}

#[allow(clippy::too_many_arguments)]
const fn profile(
    name: &'static str,
    index: u32,
    id: u32,
    instance_count: u32,
    memory_mib: u64,
    slices: u32,
    sm_count: u32,
    engines: [u32; 5],
    placement_starts: &'static [u32],
    placement_size: u32,
) -> MigProfile {
    let [copy_engines, decoders, encoders, jpeg, ofa] = engines;
    MigProfile {
        name,
        index,
        id,
        instance_count,
        memory_mib,
        slices,
        sm_count,
        copy_engines,
        decoders,
        encoders,
        jpeg,
        ofa,
        placement_starts,
        placement_size,
    }
}

use index::*;

// engines = [CE, DEC, ENC, JPEG, OFA]
#[rustfmt::skip]
const H100_80GB: &[MigProfile] = &[
    profile("1g.10gb",    SLICE_1,      19, 7,   9984, 1,  16, [1, 1, 0, 1, 0], P1, 1),
    profile("1g.10gb+me", SLICE_1_REV1, 20, 1,   9984, 1,  16, [1, 1, 0, 1, 1], P1, 1),
    profile("1g.20gb",    SLICE_1_REV2, 15, 4,  20096, 1,  26, [1, 1, 0, 1, 0], P1_DOUBLE, 2),
    profile("2g.20gb",    SLICE_2,      14, 3,  20096, 2,  32, [2, 2, 0, 2, 0], P2, 2),
    profile("3g.40gb",    SLICE_3,       9, 2,  40448, 3,  60, [3, 3, 0, 3, 0], P3, 4),
    profile("4g.40gb",    SLICE_4,       5, 1,  40448, 4,  64, [4, 4, 0, 4, 0], P0, 4),
    profile("7g.80gb",    SLICE_7,       0, 1,  81152, 7, 132, [8, 7, 0, 7, 1], P0, 8),
];

#[rustfmt::skip]
const H200_141GB: &[MigProfile] = &[
    profile("1g.18gb",    SLICE_1,      19, 7,  16384, 1,  16, [1, 1, 0, 1, 0], P1, 1),
    profile("1g.18gb+me", SLICE_1_REV1, 20, 1,  16384, 1,  16, [1, 1, 0, 1, 1], P1, 1),
    profile("1g.35gb",    SLICE_1_REV2, 15, 4,  33024, 1,  26, [1, 1, 0, 1, 0], P1_DOUBLE, 2),
    profile("2g.35gb",    SLICE_2,      14, 3,  33024, 2,  32, [2, 2, 0, 2, 0], P2, 2),
    profile("3g.71gb",    SLICE_3,       9, 2,  71168, 3,  60, [3, 3, 0, 3, 0], P3, 4),
    profile("4g.71gb",    SLICE_4,       5, 1,  71168, 4,  64, [4, 4, 0, 4, 0], P0, 4),
    profile("7g.141gb",   SLICE_7,       0, 1, 142592, 7, 132, [8, 7, 0, 7, 1], P0, 8),
];

#[rustfmt::skip]
const B200_180GB: &[MigProfile] = &[
    profile("1g.23gb",    SLICE_1,      19, 7,  20992, 1,  18, [2, 1, 0, 1, 0], P1, 1),
    profile("1g.23gb+me", SLICE_1_REV1, 20, 1,  20992, 1,  18, [2, 1, 0, 1, 1], P1, 1),
    profile("1g.45gb",    SLICE_1_REV2, 15, 4,  45312, 1,  30, [2, 1, 0, 1, 0], P1_DOUBLE, 2),
    profile("2g.45gb",    SLICE_2,      14, 3,  45312, 2,  36, [4, 2, 0, 2, 0], P2, 2),
    profile("3g.90gb",    SLICE_3,       9, 2,  91136, 3,  70, [6, 3, 0, 3, 0], P3, 4),
    profile("4g.90gb",    SLICE_4,       5, 1,  91136, 4,  72, [8, 4, 0, 4, 0], P0, 4),
    profile("7g.180gb",   SLICE_7,       0, 1, 182784, 7, 148, [16, 7, 0, 7, 1], P0, 8),
];

/// All built-in tables.
pub const TABLES: &[MigTable] = &[
    MigTable {
        key: "h100-80gb",
        memory_slices: 8,
        compute_slices: 7,
        profiles: H100_80GB,
    },
    MigTable {
        key: "h200-141gb",
        memory_slices: 8,
        compute_slices: 7,
        profiles: H200_141GB,
    },
    MigTable {
        key: "b200-180gb",
        memory_slices: 8,
        compute_slices: 7,
        profiles: B200_180GB,
    },
];

/// The table with scenario key `key`.
pub fn table(key: &str) -> Option<&'static MigTable> {
    TABLES.iter().find(|t| t.key == key)
}

/// Assigns a start slice to each profile so that no two instances overlap, or `None` if the
/// profiles cannot share the GPU. Instances keep their order in the result.
pub fn place(table: &MigTable, profiles: &[&MigProfile]) -> Option<Vec<u32>> {
    let compute: u32 = profiles.iter().map(|p| p.slices).sum();
    if compute > table.compute_slices {
        return None;
    }
    // Place big instances first: fewer choices, earlier pruning.
    let mut order: Vec<usize> = (0..profiles.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(profiles.get(i).map_or(0, |p| p.placement_size)));
    let mut starts = vec![0u32; profiles.len()];
    let mut used = 0u32; // bit per memory slice
    if search(
        profiles,
        &order,
        0,
        &mut used,
        &mut starts,
        table.memory_slices,
    ) {
        Some(starts)
    } else {
        None
    }
}

fn search(
    profiles: &[&MigProfile],
    order: &[usize],
    depth: usize,
    used: &mut u32,
    starts: &mut [u32],
    slices: u32,
) -> bool {
    let Some(&i) = order.get(depth) else {
        return true;
    };
    let Some(p) = profiles.get(i) else {
        return false;
    };
    for &start in p.placement_starts {
        if start + p.placement_size > slices {
            continue;
        }
        let mask = ((1u32 << p.placement_size) - 1) << start;
        if *used & mask != 0 {
            continue;
        }
        *used |= mask;
        if let Some(s) = starts.get_mut(i) {
            *s = start;
        }
        if search(profiles, order, depth + 1, used, starts, slices) {
            return true;
        }
        *used &= !mask;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h100() -> &'static MigTable {
        table("h100-80gb").unwrap()
    }

    #[test]
    fn h100_rows_match_the_seed_lgip_output() {
        let t = h100();
        let p = t.profile("MIG 3g.40gb").unwrap();
        assert_eq!((p.id, p.instance_count, p.sm_count), (9, 2, 60));
        assert!((p.memory_mib as f64 / 1024.0 - 39.50).abs() < 0.005);
        let p = t.profile("7g.80gb").unwrap();
        assert_eq!((p.id, p.sm_count, p.copy_engines, p.ofa), (0, 132, 8, 1));
        let p = t.profile("1g.20gb").unwrap();
        assert_eq!(format!("{:.2}", p.memory_mib as f64 / 1024.0), "19.62");
        assert_eq!(t.max_instances(), 7);
        assert_eq!(t.by_index(2).unwrap().name, "3g.40gb");
        assert_eq!(t.by_id(19).unwrap().name, "1g.10gb");
    }

    #[test]
    fn b200_rows_match_the_seed_lgip_output() {
        let t = table("b200-180gb").unwrap();
        let p = t.profile("1g.45gb").unwrap();
        assert_eq!(
            (p.id, p.instance_count, p.sm_count, p.copy_engines),
            (15, 4, 30, 2)
        );
        assert!((p.memory_mib as f64 / 1024.0 - 44.25).abs() < 0.005);
        assert_eq!(t.profile("7g.180gb").unwrap().sm_count, 148);
    }

    #[test]
    fn placements_follow_the_slice_rules() {
        let t = h100();
        let g3 = t.profile("3g.40gb").unwrap();
        let g4 = t.profile("4g.40gb").unwrap();
        let g1 = t.profile("1g.10gb").unwrap();
        let g7 = t.profile("7g.80gb").unwrap();
        assert_eq!(place(t, &[g3, g3]), Some(vec![0, 4]));
        assert!(place(t, &[g4, g3]).is_some());
        assert!(
            place(t, &[g3, g3, g1]).is_none(),
            "3g+3g leaves no memory slice"
        );
        assert!(place(t, &[g1; 7]).is_some());
        assert!(place(t, &[g1; 8]).is_none());
        assert!(place(t, &[g7, g1]).is_none());
        let g1d = t.profile("1g.20gb").unwrap();
        assert!(place(t, &[g1d; 4]).is_some());
    }
}
