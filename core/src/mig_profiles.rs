//! Built-in MIG GPU-instance profile tables (what `nvidia-smi mig -lgip` prints), the
//! placement rules that say where each profile may start (`nvidia-smi mig -lgipp`), and a
//! solver that checks that a set of instances can be placed on one GPU at the same time.
//! Used by the fake GPU (scenario `mig_profiles = "h100-80gb"`) and by the sidecar's planner
//! when no GPU is at hand; on a real GPU the planner reads the same facts from NVML and
//! `headroom-sidecar plan --gpu N --check-table` compares them with these tables.
//!
//! Sources:
//! - `h100-80gb` and `b200-180gb`: copied from real `nvidia-smi mig -i 0 -lgip` output in the
//!   seed documents (H100 80GB HBM3 and B200, driver 580.95.05). GPU memory totals from the
//!   seeds' `nvidia-smi` (81559 MiB, 183359 MiB). The H100 rows equal, field by field, what
//!   NVML reported on a real H100 80GB HBM3 (driver 580.159.04; recorded in
//!   `docs/hardware/2026-11-22-h100-exporter/mig_profiles.json`, checked by a test).
//! - `h200-141gb`: every field as NVML reported it on a real NVIDIA H200 (driver 580.159.04,
//!   MIG mode off; `docs/hardware/2026-11-22-h200-mig/mig-table.json`, checked by a test).
//!   The first version, from NVIDIA's MIG user guide and a posted `nvidia-smi mig -lgip`, was
//!   256 MiB low on four rows and 768 MiB low on 7g.141gb. Total 143771 MiB.
//! - `a100-40gb`: NVIDIA's MIG user guide, "Supported MIG Profiles" (A100 table,
//!   <https://docs.nvidia.com/datacenter/tesla/mig-user-guide/supported-mig-profiles.html>)
//!   for names and counts, and the guide's getting-started `nvidia-smi mig -lgip` and
//!   `-lgipp` listings on an A100-SXM4-40GB for GiB, SMs, engines and placements.
//! - `a100-80gb`: profile names from the same guide ("for A100-SXM4-80GB, the profile names
//!   will change according to the memory proportion"); GiB, SMs and engines from a real
//!   A100 80GB `nvidia-smi mig -i 0 -lgip` (driver 515.86.01) in a public MIG walkthrough.
//!   That driver predates the 1g.20gb profile (R525+): its row copies 2g.20gb's memory and
//!   the 1-slice engines of A100-40GB's 1g.10gb (the same relation on the 40 GB board).
//!   Placements as on the A100-40GB (the guide gives one placement table per GPU family).
//!   Other drivers print slightly different GiB for the same A100 profiles (9.50 vs 9.75).
//! - Placements of every 8-memory-slice GPU: NVIDIA's MIG user guide (`nvidia-smi mig -lgipp`):
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
    /// Key used in scenario files (`mig_profiles = "h100-80gb"`) and by `plan --gpu`.
    pub key: &'static str,
    /// The GPU's name as NVML reports it, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: &'static str,
    /// Other names the model goes by (matched ignoring case, spaces and punctuation).
    pub aliases: &'static [&'static str],
    /// Total memory of the whole GPU (MIG off) in MiB, as `nvidia-smi` shows it.
    pub memory_total_mib: u64,
    /// SMs of the whole GPU (MIG off).
    pub sm_count: u32,
    /// Memory slices of the GPU (8 on A100/H100/H200/B200).
    pub memory_slices: u32,
    /// Compute slices of the GPU (7 on A100/H100/H200/B200).
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

    /// Whether `name` names this model: its key, NVML name or an alias, ignoring case,
    /// spaces, punctuation and a leading `NVIDIA`.
    pub fn matches(&self, name: &str) -> bool {
        let want = compact(name);
        !want.is_empty()
            && std::iter::once(self.key)
                .chain(std::iter::once(self.name))
                .chain(self.aliases.iter().copied())
                .any(|n| compact(n) == want)
    }
}

/// Lowercase letters and digits only, without a leading `nvidia`.
fn compact(s: &str) -> String {
    let c: String = s
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    c.strip_prefix("nvidia").map(str::to_string).unwrap_or(c)
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
    profile("1g.35gb",    SLICE_1_REV2, 15, 4,  33280, 1,  26, [1, 1, 0, 1, 0], P1_DOUBLE, 2),
    profile("2g.35gb",    SLICE_2,      14, 3,  33280, 2,  32, [2, 2, 0, 2, 0], P2, 2),
    profile("3g.71gb",    SLICE_3,       9, 2,  71424, 3,  60, [3, 3, 0, 3, 0], P3, 4),
    profile("4g.71gb",    SLICE_4,       5, 1,  71424, 4,  64, [4, 4, 0, 4, 0], P0, 4),
    profile("7g.141gb",   SLICE_7,       0, 1, 143360, 7, 132, [8, 7, 0, 7, 1], P0, 8),
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

#[rustfmt::skip]
const A100_40GB: &[MigProfile] = &[
    profile("1g.5gb",     SLICE_1,      19, 7,   4864, 1,  14, [1, 0, 0, 0, 0], P1, 1),
    profile("1g.5gb+me",  SLICE_1_REV1, 20, 1,   4864, 1,  14, [1, 1, 0, 1, 1], P1, 1),
    profile("1g.10gb",    SLICE_1_REV2, 15, 4,   9856, 1,  14, [1, 1, 0, 0, 0], P1_DOUBLE, 2),
    profile("2g.10gb",    SLICE_2,      14, 3,   9856, 2,  28, [2, 1, 0, 0, 0], P2, 2),
    profile("3g.20gb",    SLICE_3,       9, 2,  19968, 3,  42, [3, 2, 0, 0, 0], P3, 4),
    profile("4g.20gb",    SLICE_4,       5, 1,  19968, 4,  56, [4, 2, 0, 0, 0], P0, 4),
    profile("7g.40gb",    SLICE_7,       0, 1,  40192, 7,  98, [7, 5, 0, 1, 1], P0, 8),
];

#[rustfmt::skip]
const A100_80GB: &[MigProfile] = &[
    profile("1g.10gb",    SLICE_1,      19, 7,   9728, 1,  14, [1, 0, 0, 0, 0], P1, 1),
    profile("1g.10gb+me", SLICE_1_REV1, 20, 1,   9728, 1,  14, [1, 1, 0, 1, 1], P1, 1),
    profile("1g.20gb",    SLICE_1_REV2, 15, 4,  19968, 1,  14, [1, 1, 0, 0, 0], P1_DOUBLE, 2),
    profile("2g.20gb",    SLICE_2,      14, 3,  19968, 2,  28, [2, 1, 0, 0, 0], P2, 2),
    profile("3g.40gb",    SLICE_3,       9, 2,  40192, 3,  42, [3, 2, 0, 0, 0], P3, 4),
    profile("4g.40gb",    SLICE_4,       5, 1,  40192, 4,  56, [4, 2, 0, 0, 0], P0, 4),
    profile("7g.80gb",    SLICE_7,       0, 1,  80896, 7,  98, [7, 5, 0, 1, 1], P0, 8),
];

/// All built-in tables.
pub const TABLES: &[MigTable] = &[
    MigTable {
        key: "h100-80gb",
        name: "NVIDIA H100 80GB HBM3",
        aliases: &["H100 80GB", "H100-SXM5-80GB", "H100 SXM5 80GB"],
        memory_total_mib: 81559,
        sm_count: 132,
        memory_slices: 8,
        compute_slices: 7,
        profiles: H100_80GB,
    },
    MigTable {
        key: "h200-141gb",
        name: "NVIDIA H200",
        aliases: &["H200 141GB", "H200-SXM-141GB"],
        memory_total_mib: 143771,
        sm_count: 132,
        memory_slices: 8,
        compute_slices: 7,
        profiles: H200_141GB,
    },
    MigTable {
        key: "b200-180gb",
        name: "NVIDIA B200",
        aliases: &["B200 180GB"],
        memory_total_mib: 183359,
        sm_count: 148,
        memory_slices: 8,
        compute_slices: 7,
        profiles: B200_180GB,
    },
    MigTable {
        key: "a100-40gb",
        name: "NVIDIA A100-SXM4-40GB",
        aliases: &["A100 40GB", "A100-PCIE-40GB"],
        memory_total_mib: 40960,
        sm_count: 108,
        memory_slices: 8,
        compute_slices: 7,
        profiles: A100_40GB,
    },
    MigTable {
        key: "a100-80gb",
        name: "NVIDIA A100-SXM4-80GB",
        aliases: &["A100 80GB", "A100 80GB PCIe", "A100-PCIE-80GB"],
        memory_total_mib: 81920,
        sm_count: 108,
        memory_slices: 8,
        compute_slices: 7,
        profiles: A100_80GB,
    },
];

/// The table with scenario key `key`.
pub fn table(key: &str) -> Option<&'static MigTable> {
    TABLES.iter().find(|t| t.key == key)
}

/// The table whose key, NVML name or alias is `name` (see [`MigTable::matches`]).
pub fn lookup(name: &str) -> Option<&'static MigTable> {
    TABLES.iter().find(|t| t.matches(name))
}

/// Assigns a start slice to each profile so that no two instances overlap, or `None` if the
/// profiles cannot share the GPU. Instances keep their order in the result.
pub fn place(table: &MigTable, profiles: &[&MigProfile]) -> Option<Vec<u32>> {
    let compute: u32 = profiles.iter().map(|p| p.slices).sum();
    if compute > table.compute_slices {
        return None;
    }
    let items: Vec<(&[u32], u32)> = profiles
        .iter()
        .map(|p| (p.placement_starts, p.placement_size))
        .collect();
    place_slots(table.memory_slices, &items)
}

/// The placement search on its own: each item is `(allowed starts, size)` in memory slices
/// of a GPU with `memory_slices` slices. Returns one start per item (in item order) such that
/// no two items overlap, or `None`. Compute slices are the caller's to check.
pub fn place_slots(memory_slices: u32, items: &[(&[u32], u32)]) -> Option<Vec<u32>> {
    if memory_slices > 32 {
        return None;
    }
    // Place big instances first: fewer choices, earlier pruning.
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(items.get(i).map_or(0, |p| p.1)));
    let mut starts = vec![0u32; items.len()];
    let mut used = 0u64; // bit per memory slice
    if search(items, &order, 0, &mut used, &mut starts, memory_slices) {
        Some(starts)
    } else {
        None
    }
}

fn search(
    items: &[(&[u32], u32)],
    order: &[usize],
    depth: usize,
    used: &mut u64,
    starts: &mut [u32],
    slices: u32,
) -> bool {
    let Some(&i) = order.get(depth) else {
        return true;
    };
    let Some(&(allowed, size)) = items.get(i) else {
        return false;
    };
    if size == 0 || size > slices {
        return false;
    }
    for &start in allowed {
        if start + size > slices {
            continue;
        }
        let mask = ((1u64 << size) - 1) << start;
        if *used & mask != 0 {
            continue;
        }
        *used |= mask;
        if let Some(s) = starts.get_mut(i) {
            *s = start;
        }
        if search(items, order, depth + 1, used, starts, slices) {
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
    fn h200_rows_and_placements_match_nvml_on_a_real_h200() {
        // `headroom-sidecar plan --gpu 0 --dump-table` on a real H200 (MIG mode off).
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/hardware/2026-11-22-h200-mig/mig-table.json"
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(v["name"], "NVIDIA H200");
        let t = table("h200-141gb").unwrap();
        let profiles = v["profiles"].as_array().unwrap();
        assert_eq!(profiles.len(), t.profiles.len());
        for p in profiles {
            let n = |k: &str| p[k].as_u64().unwrap();
            let b = t.by_index(n("index") as u32).unwrap();
            assert_eq!(p["name"].as_str().unwrap(), format!("MIG {}", b.name));
            assert_eq!(n("id"), u64::from(b.id), "{}", b.name);
            assert_eq!(n("instances"), u64::from(b.instance_count), "{}", b.name);
            assert_eq!(n("memory_mib"), b.memory_mib, "{}", b.name);
            assert_eq!(n("slices"), u64::from(b.slices), "{}", b.name);
            assert_eq!(n("sm_count"), u64::from(b.sm_count), "{}", b.name);
            let engines = [b.copy_engines, b.decoders, b.encoders, b.jpeg, b.ofa];
            for (k, e) in ["copy_engines", "decoders", "encoders", "jpeg", "ofa"]
                .iter()
                .zip(engines)
            {
                assert_eq!(n(k), u64::from(e), "{} {k}", b.name);
            }
            let placements: Vec<(u64, u64)> = p["placements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| (x[0].as_u64().unwrap(), x[1].as_u64().unwrap()))
                .collect();
            let ours: Vec<(u64, u64)> = b
                .placement_starts
                .iter()
                .map(|&s| (u64::from(s), u64::from(b.placement_size)))
                .collect();
            assert_eq!(placements, ours, "{}", b.name);
        }
    }

    #[test]
    fn h100_rows_match_nvml_on_a_real_h100() {
        // NVML's profile info read on a real H100 80GB HBM3 (driver 580.159.04, MIG off),
        // recorded in docs/hardware: every field of every profile agrees with the table.
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/hardware/2026-11-22-h100-exporter/mig_profiles.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["name"], "NVIDIA H100 80GB HBM3");
        let t = h100();
        let mut seen = 0;
        for p in v["profiles"].as_array().unwrap() {
            let index = p["profile_index"].as_u64().unwrap() as u32;
            let Some(id) = p["id"].as_u64() else {
                assert!(
                    t.by_index(index).is_none(),
                    "index {index} unsupported on the GPU"
                );
                continue;
            };
            let b = t.by_index(index).unwrap();
            let n = |k: &str| p[k].as_u64().unwrap();
            assert_eq!(p["name"].as_str().unwrap(), format!("MIG {}", b.name));
            assert_eq!(id, u64::from(b.id), "{}", b.name);
            assert_eq!(n("sliceCount"), u64::from(b.slices), "{}", b.name);
            assert_eq!(
                n("instanceCount"),
                u64::from(b.instance_count),
                "{}",
                b.name
            );
            assert_eq!(
                n("multiprocessorCount"),
                u64::from(b.sm_count),
                "{}",
                b.name
            );
            assert_eq!(n("memorySizeMB"), b.memory_mib, "{}", b.name);
            let engines = [
                n("copyEngineCount"),
                n("decoderCount"),
                n("encoderCount"),
                n("jpegCount"),
                n("ofaCount"),
            ];
            let built = [b.copy_engines, b.decoders, b.encoders, b.jpeg, b.ofa].map(u64::from);
            assert_eq!(engines, built, "{}", b.name);
            seen += 1;
        }
        assert_eq!(seen, t.profiles.len());
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
    fn a100_rows_match_the_mig_user_guide() {
        let t = table("a100-40gb").unwrap();
        let gib =
            |name: &str| format!("{:.2}", t.profile(name).unwrap().memory_mib as f64 / 1024.0);
        assert_eq!(gib("1g.5gb"), "4.75");
        assert_eq!(gib("2g.10gb"), "9.62");
        assert_eq!(gib("3g.20gb"), "19.50");
        assert_eq!(gib("7g.40gb"), "39.25");
        let p = t.profile("7g.40gb").unwrap();
        assert_eq!(
            (p.id, p.sm_count, p.decoders, p.jpeg, p.ofa),
            (0, 98, 5, 1, 1)
        );
        let t = table("a100-80gb").unwrap();
        assert_eq!(t.profile("3g.40gb").unwrap().memory_mib, 40192);
        assert_eq!(t.profile("1g.10gb").unwrap().sm_count, 14);
        assert_eq!(t.max_instances(), 7);
    }

    #[test]
    fn tables_are_consistent() {
        for t in TABLES {
            let full = t.profiles.iter().max_by_key(|p| p.slices).unwrap();
            assert_eq!(full.slices, t.compute_slices, "{}", t.key);
            assert_eq!(full.placement_size, t.memory_slices, "{}", t.key);
            assert!(full.sm_count <= t.sm_count, "{}", t.key);
            assert!(full.memory_mib <= t.memory_total_mib, "{}", t.key);
            for p in t.profiles {
                assert!(p.name.starts_with(&format!("{}g.", p.slices)), "{}", p.name);
                let alone = place(t, &[p]).unwrap();
                assert_eq!(alone.len(), 1);
                // instance_count instances of a profile fit, one more does not.
                let many = vec![p; p.instance_count as usize];
                assert!(
                    place(t, &many).is_some(),
                    "{} ×{}",
                    p.name,
                    p.instance_count
                );
                let more = vec![p; p.instance_count as usize + 1];
                let is_me = p.name.ends_with("+me");
                assert!(
                    is_me || place(t, &more).is_none(),
                    "{} ×{}+1",
                    p.name,
                    p.instance_count
                );
            }
        }
    }

    #[test]
    fn model_names_resolve_ignoring_case_and_punctuation() {
        assert_eq!(lookup("H100 80GB").unwrap().key, "h100-80gb");
        assert_eq!(lookup("NVIDIA H100 80GB HBM3").unwrap().key, "h100-80gb");
        assert_eq!(lookup("h100_80gb").unwrap().key, "h100-80gb");
        assert_eq!(lookup("NVIDIA A100-SXM4-40GB").unwrap().key, "a100-40gb");
        assert_eq!(lookup("a100 80gb pcie").unwrap().key, "a100-80gb");
        assert_eq!(lookup("NVIDIA B200").unwrap().key, "b200-180gb");
        assert_eq!(lookup("H200").unwrap().key, "h200-141gb");
        assert!(lookup("H100 PCIe").is_none());
        assert!(lookup("").is_none());
        assert!(lookup("nvidia").is_none());
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
        // 3g + 2g + 1g + 1g only works with the 3g at 4 (1g cannot start at slice 7).
        let g2 = t.profile("2g.20gb").unwrap();
        let starts = place(t, &[g3, g2, g1, g1]).unwrap();
        assert_eq!(starts[0], 4, "{starts:?}");
    }
}
