//! Injected NVML faults: which call, on which GPU, in which virtual-time window, answers with
//! which error and/or after how long a hang. The fake NVML asks [`find`] before answering.

use crate::nvml_error::NvmlError;

/// The NVML functions the fake library exports; a `[[fault]]` may name any of them.
pub const NVML_CALLS: &[&str] = &[
    "nvmlInit_v2",
    "nvmlInitWithFlags",
    "nvmlShutdown",
    "nvmlErrorString",
    "nvmlSystemGetDriverVersion",
    "nvmlSystemGetNVMLVersion",
    "nvmlSystemGetCudaDriverVersion_v2",
    "nvmlSystemGetProcessName",
    "nvmlDeviceGetCount_v2",
    "nvmlDeviceGetHandleByIndex_v2",
    "nvmlDeviceGetHandleByUUID",
    "nvmlDeviceGetIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetMemoryInfo_v2",
    "nvmlDeviceGetMigMode",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetClockInfo",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetArchitecture",
    "nvmlDeviceGetComputeRunningProcesses_v3",
    "nvmlDeviceGetMPSComputeRunningProcesses_v3",
    "nvmlDeviceGetMaxMigDeviceCount",
    "nvmlDeviceGetMigDeviceHandleByIndex",
    "nvmlDeviceIsMigDeviceHandle",
    "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
    "nvmlDeviceGetGpuInstanceId",
    "nvmlDeviceGetComputeInstanceId",
    "nvmlDeviceGetGpuInstanceProfileInfo",
    "nvmlDeviceGetGpuInstanceProfileInfoV",
    "nvmlDeviceGetGpuInstancePossiblePlacements_v2",
    "nvmlGpmQueryDeviceSupport",
    "nvmlGpmSampleAlloc",
    "nvmlGpmSampleFree",
    "nvmlGpmSampleGet",
    "nvmlGpmMigSampleGet",
    "nvmlGpmMetricsGet",
    "nvmlEventSetCreate",
    "nvmlDeviceRegisterEvents",
    "nvmlDeviceGetSupportedEventTypes",
    "nvmlEventSetWait_v2",
    "nvmlEventSetFree",
];

/// Calls a wildcard (`call = "*"`) fault never touches: tearing down must keep working, and
/// `nvmlErrorString` must be able to describe the injected error (it cannot be faulted at
/// all). The others can still be named by a fault.
pub const WILDCARD_EXEMPT: &[&str] = &[
    "nvmlShutdown",
    "nvmlErrorString",
    "nvmlGpmSampleFree",
    "nvmlEventSetFree",
];

/// DCGM functions the fake DCGM (`headroom-fake-dcgm`) exports; `[[fault]]` may name them
/// too (its NVML error name is answered as the nearest DCGM status).
pub const DCGM_CALLS: &[&str] = &[
    "dcgmInit",
    "dcgmStartEmbedded",
    "dcgmConnect_v2",
    "dcgmGetAllSupportedDevices",
    "dcgmGetGpuInstanceHierarchy",
    "dcgmGroupCreate",
    "dcgmGroupAddEntity",
    "dcgmFieldGroupCreate",
    "dcgmWatchFields",
    "dcgmUpdateAllFields",
    "dcgmEntitiesGetLatestValues",
];

/// Which calls a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultCall {
    /// `"*"`: every call (except [`WILDCARD_EXEMPT`]).
    Any,
    /// One NVML function by name.
    Named(String),
}

/// One `[[fault]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub call: FaultCall,
    /// Only calls about this GPU (by index, MIG handles included); `None`: any call.
    pub gpu: Option<usize>,
    /// Error to answer with; `None`: answer normally (after the hang).
    pub error: Option<NvmlError>,
    /// Window start, virtual seconds (inclusive); `None`: from the beginning.
    pub from_s: Option<f64>,
    /// Window end, virtual seconds (exclusive); `None`: forever.
    pub until_s: Option<f64>,
    /// Sleep this many wall milliseconds before answering.
    pub hang_ms: u64,
    /// `INSUFFICIENT_SIZE` on a process list: every fetch fails, however large the buffer
    /// (without it, the list only grows by one between the count and the fetch).
    pub persistent: bool,
}

impl Fault {
    /// Whether this fault applies to `call` about `gpu` at virtual time `t`.
    pub fn matches(&self, call: &str, gpu: Option<usize>, t: f64) -> bool {
        let call_ok = match &self.call {
            FaultCall::Any => !WILDCARD_EXEMPT.contains(&call),
            FaultCall::Named(name) => name == call,
        };
        let gpu_ok = match self.gpu {
            None => true,
            Some(g) => gpu == Some(g),
        };
        let from_ok = self.from_s.is_none_or(|from| t >= from);
        let until_ok = self.until_s.is_none_or(|until| t < until);
        call_ok && gpu_ok && from_ok && until_ok
    }
}

/// The first fault (in file order) that applies to `call` about `gpu` at virtual time `t`.
pub fn find<'a>(faults: &'a [Fault], call: &str, gpu: Option<usize>, t: f64) -> Option<&'a Fault> {
    faults.iter().find(|f| f.matches(call, gpu, t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nvml_error;

    fn fault(call: FaultCall, gpu: Option<usize>, from: Option<f64>, until: Option<f64>) -> Fault {
        Fault {
            call,
            gpu,
            error: Some(nvml_error::GPU_IS_LOST),
            from_s: from,
            until_s: until,
            hang_ms: 0,
            persistent: false,
        }
    }

    #[test]
    fn matches_call_gpu_and_window() {
        let f = fault(FaultCall::Any, Some(1), Some(10.0), Some(20.0));
        assert!(f.matches("nvmlDeviceGetName", Some(1), 10.0));
        assert!(
            !f.matches("nvmlDeviceGetName", Some(1), 20.0),
            "until is exclusive"
        );
        assert!(!f.matches("nvmlDeviceGetName", Some(1), 9.9));
        assert!(!f.matches("nvmlDeviceGetName", Some(0), 15.0));
        assert!(
            !f.matches("nvmlDeviceGetCount_v2", None, 15.0),
            "not about gpu 1"
        );
        assert!(
            !f.matches("nvmlShutdown", Some(1), 15.0),
            "exempt from wildcards"
        );
        let named = fault(
            FaultCall::Named("nvmlDeviceGetTemperature".into()),
            None,
            None,
            None,
        );
        assert!(named.matches("nvmlDeviceGetTemperature", Some(3), 1e9));
        assert!(!named.matches("nvmlDeviceGetPowerUsage", Some(3), 0.0));
    }

    #[test]
    fn first_match_wins() {
        let faults = [
            fault(
                FaultCall::Named("nvmlDeviceGetName".into()),
                None,
                None,
                None,
            ),
            fault(FaultCall::Any, None, None, None),
        ];
        let f = find(&faults, "nvmlDeviceGetName", Some(0), 0.0).unwrap();
        assert_eq!(f.call, FaultCall::Named("nvmlDeviceGetName".into()));
        let f = find(&faults, "nvmlDeviceGetUUID", Some(0), 0.0).unwrap();
        assert_eq!(f.call, FaultCall::Any);
    }
}
