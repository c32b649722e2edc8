//! Opaque handles given to the caller: device handles encode a GPU index or a (GPU, MIG slot)
//! pair, GPM samples and event sets encode an id in this library's tables. They are numbers
//! cast to pointers and never dereferenced; a handle that decodes to nothing is
//! `INVALID_ARGUMENT`.

use headroom_fake::{DeviceRef, Scenario};
use nvml_wrapper_sys::bindings::{
    nvmlDevice_st, nvmlDevice_t, nvmlEventSet_st, nvmlEventSet_t, nvmlGpmSample_st, nvmlGpmSample_t,
};
use std::ptr;

const DEVICE_BASE: usize = 0x4EAD_0000;
const SAMPLE_BASE: usize = 0x6A00_0000;
const EVENT_SET_BASE: usize = 0x7E00_0000;

/// The handle of `device`.
pub(crate) fn device(d: DeviceRef) -> nvmlDevice_t {
    let v = match d {
        DeviceRef::Gpu(g) => DEVICE_BASE + ((g + 1) << 8),
        DeviceRef::Mig { gpu, slot } => DEVICE_BASE + ((gpu + 1) << 8) + slot + 1,
    };
    ptr::without_provenance_mut::<nvmlDevice_st>(v)
}

/// The device behind handle `h`, if it names one of `s`.
pub(crate) fn decode_device(s: &Scenario, h: nvmlDevice_t) -> Option<DeviceRef> {
    let rel = h.addr().checked_sub(DEVICE_BASE)?;
    let gpu = (rel >> 8).checked_sub(1)?;
    let d = match rel & 0xFF {
        0 => DeviceRef::Gpu(gpu),
        slot => DeviceRef::Mig {
            gpu,
            slot: slot - 1,
        },
    };
    s.has(d).then_some(d)
}

/// The handle of GPM sample `id`.
pub(crate) fn sample(id: usize) -> nvmlGpmSample_t {
    ptr::without_provenance_mut::<nvmlGpmSample_st>(SAMPLE_BASE + (id << 4))
}

/// The id behind sample handle `h`.
pub(crate) fn sample_id(h: nvmlGpmSample_t) -> Option<usize> {
    h.addr().checked_sub(SAMPLE_BASE).map(|v| v >> 4)
}

/// The handle of event set `id`.
pub(crate) fn event_set(id: usize) -> nvmlEventSet_t {
    ptr::without_provenance_mut::<nvmlEventSet_st>(EVENT_SET_BASE + (id << 4))
}

/// The id behind event set handle `h`.
pub(crate) fn event_set_id(h: nvmlEventSet_t) -> Option<usize> {
    h.addr().checked_sub(EVENT_SET_BASE).map(|v| v >> 4)
}
