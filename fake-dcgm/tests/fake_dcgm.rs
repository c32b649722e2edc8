//! The fake libdcgm loaded through its real FFI (dcgm-sys's dynamically loaded bindings),
//! on `scenarios/a100-mig.toml` with the clock frozen. One test function: the library keeps
//! process-global state, so the steps run in order in one process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, unsafe_code)]

use dcgm_sys as sys;
use std::path::PathBuf;

fn lib_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let lib = dir.join("libheadroom_fake_dcgm.so");
    assert!(lib.is_file(), "{} missing", lib.display());
    lib
}

fn values(
    lib: &sys::DcgmLib,
    h: usize,
    ents: &[(u32, u32)],
    fields: &[u16],
) -> Vec<sys::dcgmFieldValue_v2> {
    let mut pairs: Vec<sys::dcgmGroupEntityPair_t> = ents
        .iter()
        .map(|&(g, e)| sys::dcgmGroupEntityPair_t {
            entityGroupId: g,
            entityId: e,
        })
        .collect();
    let mut ids = fields.to_vec();
    let mut out: Vec<sys::dcgmFieldValue_v2> = (0..ents.len() * fields.len())
        .map(|_| unsafe { std::mem::zeroed() })
        .collect();
    let st = unsafe {
        (lib.dcgmEntitiesGetLatestValues.as_ref().unwrap())(
            h,
            pairs.as_mut_ptr(),
            pairs.len() as u32,
            ids.as_mut_ptr(),
            ids.len() as u32,
            0,
            out.as_mut_ptr(),
        )
    };
    assert_eq!(st, sys::DCGM_ST_OK);
    out
}

#[test]
fn fake_dcgm_serves_the_a100_scenario() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    // A copy of the A100 scenario with a fault on the values of GPU 0 after t = 500.
    let dir = std::env::temp_dir().join(format!("fake-dcgm-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("a100.toml");
    let text = std::fs::read_to_string(root.join("scenarios/a100-mig.toml")).unwrap();
    std::fs::write(
        &scenario,
        format!(
            "{text}\n[[fault]]\ncall = \"dcgmEntitiesGetLatestValues\"\ngpu = 0\nerror = \"NO_PERMISSION\"\nfrom_s = 500\n"
        ),
    )
    .unwrap();
    // SAFETY (test): set before the library reads them; no other thread reads the environment.
    unsafe {
        std::env::set_var("HEADROOM_FAKE_SCENARIO", &scenario);
        std::env::set_var("HEADROOM_FAKE_FREEZE_AT", "200");
    }
    let lib = unsafe { sys::DcgmLib::new(lib_path()) }.unwrap();
    assert!(lib.dcgmInit.is_ok() && lib.dcgmEntitiesGetLatestValues.is_ok());

    // Nothing before dcgmInit.
    let mut h: usize = 0;
    let st = unsafe {
        (lib.dcgmStartEmbedded.as_ref().unwrap())(sys::DCGM_OPERATION_MODE_MANUAL, &mut h)
    };
    assert_eq!(st, sys::DCGM_ST_UNINITIALIZED);
    assert_eq!(
        unsafe { (lib.dcgmInit.as_ref().unwrap())() },
        sys::DCGM_ST_OK
    );
    let st = unsafe {
        (lib.dcgmStartEmbedded.as_ref().unwrap())(sys::DCGM_OPERATION_MODE_MANUAL, &mut h)
    };
    assert_eq!(st, sys::DCGM_ST_OK);

    // Hierarchy: DCGM's GI ids are not NVML's; the info carries NVML's.
    let mut hier: Box<sys::dcgmMigHierarchy_v2> = Box::new(unsafe { std::mem::zeroed() });
    let st = unsafe { (lib.dcgmGetGpuInstanceHierarchy.as_ref().unwrap())(h, &mut *hier) };
    assert_eq!(st, sys::DCGM_ST_VER_MISMATCH);
    hier.version = sys::MIG_HIERARCHY_VERSION2;
    let st = unsafe { (lib.dcgmGetGpuInstanceHierarchy.as_ref().unwrap())(h, &mut *hier) };
    assert_eq!(st, sys::DCGM_ST_OK);
    assert_eq!(hier.count, 6, "3 GPU instances + 3 compute instances");
    let gis: Vec<(u32, u32)> = hier.entityList[..6]
        .iter()
        .filter(|e| e.entity.entityGroupId == sys::DCGM_FE_GPU_I)
        .map(|e| (e.entity.entityId, e.info.nvmlInstanceId))
        .collect();
    assert_eq!(gis, vec![(0, 1), (1, 5), (2, 13)]);
    let uuid: Vec<u8> = hier.entityList[0]
        .info
        .gpuUuid
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    assert_eq!(uuid, b"GPU-a100f4ce-0000-4d1e-8a7e-00000000a100");

    // Group + watch; manual mode has no data before dcgmUpdateAllFields.
    let name = c"t";
    let mut g: usize = 0;
    unsafe {
        assert_eq!(
            (lib.dcgmGroupCreate.as_ref().unwrap())(
                h,
                sys::DCGM_GROUP_EMPTY,
                name.as_ptr(),
                &mut g
            ),
            0
        );
        assert_eq!(
            (lib.dcgmGroupAddEntity.as_ref().unwrap())(h, g, sys::DCGM_FE_GPU, 0),
            0
        );
        assert_eq!(
            (lib.dcgmGroupAddEntity.as_ref().unwrap())(h, g, sys::DCGM_FE_GPU_I, 1),
            0
        );
        assert_eq!(
            (lib.dcgmGroupAddEntity.as_ref().unwrap())(h, g, sys::DCGM_FE_GPU_I, 7),
            sys::DCGM_ST_BADPARAM
        );
    }
    let fields = [
        sys::field::DEV_UUID,
        sys::field::DEV_FB_USED,
        sys::field::PROF_GR_ENGINE_ACTIVE,
        sys::field::PROF_DRAM_ACTIVE,
    ];
    let mut fg: usize = 0;
    unsafe {
        assert_eq!(
            (lib.dcgmFieldGroupCreate.as_ref().unwrap())(
                h,
                3,
                fields.as_ptr(),
                name.as_ptr(),
                &mut fg
            ),
            0
        );
        assert_eq!(
            (lib.dcgmWatchFields.as_ref().unwrap())(h, g, fg, 1_000_000, 5.0, 2),
            0
        );
    }
    let v = values(&lib, h, &[(sys::DCGM_FE_GPU_I, 1)], &fields);
    assert_eq!(v[2].status, sys::DCGM_ST_NO_DATA);
    assert_eq!(
        unsafe { (lib.dcgmUpdateAllFields.as_ref().unwrap())(h, 1) },
        0
    );
    let v = values(
        &lib,
        h,
        &[(sys::DCGM_FE_GPU, 0), (sys::DCGM_FE_GPU_I, 1)],
        &fields,
    );
    // GPU 0: uuid; FB used of the whole GPU (the two static processes); activity not
    // supported on a MIG-enabled GPU entity; DRAM not in the field group: not watched.
    assert_eq!(v[0].status, sys::DCGM_ST_OK);
    assert_eq!(v[0].fieldType, u16::from(sys::DCGM_FT_STRING));
    assert_eq!(v[2].status, sys::DCGM_ST_NOT_SUPPORTED);
    assert_eq!(v[3].status, sys::DCGM_ST_NOT_WATCHED);
    // GI entity 1 (NVML GI 5, the 2g.20gb): constant graphics 0.42; uuid not supported.
    assert_eq!(v[4].status, sys::DCGM_ST_NOT_SUPPORTED);
    assert_eq!(v[5].status, sys::DCGM_ST_OK);
    let used_mib = unsafe { v[5].value.i64_ };
    // The embedder's timeline at t = 200: 6 GiB + 190/390 of 1 GiB.
    let want = (6u64 << 30) + ((1u64 << 30) as f64 * 190.0 / 390.0) as u64;
    assert!((used_mib - (want >> 20) as i64).abs() <= 1, "{used_mib}");
    assert_eq!(v[6].status, sys::DCGM_ST_OK);
    assert!((unsafe { v[6].value.dbl } - 0.42).abs() < 1e-9);
    assert!(unsafe { v[1].value.i64_ } >= used_mib);

    // errorString never null.
    for code in [0, -1, -17, -999] {
        assert!(!unsafe { (lib.errorString.as_ref().unwrap())(code) }.is_null());
    }
    unsafe {
        assert_eq!((lib.dcgmStopEmbedded.as_ref().unwrap())(h), 0);
        assert_eq!((lib.dcgmShutdown.as_ref().unwrap())(), 0);
        assert_eq!(
            (lib.dcgmShutdown.as_ref().unwrap())(),
            sys::DCGM_ST_UNINITIALIZED
        );
    }

    // A fault on GPU 0's values (from t = 500) fails only its entities' values.
    unsafe { std::env::set_var("HEADROOM_FAKE_FREEZE_AT", "600") };
    assert_eq!(unsafe { (lib.dcgmInit.as_ref().unwrap())() }, 0);
    let mut params = sys::dcgmConnectV2Params_v2 {
        version: 7,
        persistAfterDisconnect: 0,
        timeoutMs: 100,
        addressIsUnixSocket: 0,
    };
    let addr = c"127.0.0.1:5555";
    let st = unsafe { (lib.dcgmConnect_v2.as_ref().unwrap())(addr.as_ptr(), &mut params, &mut h) };
    assert_eq!(st, sys::DCGM_ST_VER_MISMATCH);
    params.version = sys::CONNECT_V2_PARAMS_VERSION2;
    let st = unsafe { (lib.dcgmConnect_v2.as_ref().unwrap())(addr.as_ptr(), &mut params, &mut h) };
    assert_eq!(st, 0);
    unsafe {
        assert_eq!(
            (lib.dcgmGroupCreate.as_ref().unwrap())(
                h,
                sys::DCGM_GROUP_EMPTY,
                name.as_ptr(),
                &mut g
            ),
            0
        );
        assert_eq!(
            (lib.dcgmGroupAddEntity.as_ref().unwrap())(h, g, sys::DCGM_FE_GPU_I, 0),
            0
        );
        assert_eq!(
            (lib.dcgmFieldGroupCreate.as_ref().unwrap())(
                h,
                4,
                fields.as_ptr(),
                name.as_ptr(),
                &mut fg
            ),
            0
        );
        assert_eq!(
            (lib.dcgmWatchFields.as_ref().unwrap())(h, g, fg, 1_000_000, 5.0, 2),
            0
        );
    }
    let v = values(&lib, h, &[(sys::DCGM_FE_GPU_I, 0)], &fields);
    assert!(
        v.iter().all(|x| x.status == sys::DCGM_ST_NO_PERMISSION),
        "fault applies"
    );
    unsafe {
        assert_eq!((lib.dcgmDisconnect.as_ref().unwrap())(h), 0);
        assert_eq!(
            (lib.dcgmGroupDestroy.as_ref().unwrap())(h, g),
            sys::DCGM_ST_CONNECTION_NOT_VALID
        );
        assert_eq!((lib.dcgmShutdown.as_ref().unwrap())(), 0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
