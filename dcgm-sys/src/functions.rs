// The DCGM functions Headroom binds and calls, in one place: the build script allowlists
// them for bindgen and `headroom-core` checks each is present when it loads the library.
// (`include!`d by build.rs and lib.rs.)

/// Every DCGM function Headroom uses.
pub const FUNCTIONS: [&str; 18] = [
    "dcgmInit",
    "dcgmShutdown",
    "dcgmStartEmbedded",
    "dcgmStopEmbedded",
    "dcgmConnect_v2",
    "dcgmDisconnect",
    "errorString",
    "dcgmGetAllSupportedDevices",
    "dcgmGetGpuInstanceHierarchy",
    "dcgmGroupCreate",
    "dcgmGroupAddEntity",
    "dcgmGroupDestroy",
    "dcgmFieldGroupCreate",
    "dcgmFieldGroupDestroy",
    "dcgmWatchFields",
    "dcgmUnwatchFields",
    "dcgmUpdateAllFields",
    "dcgmEntitiesGetLatestValues",
];
