//! `/proc/PID/cgroup` (`core/src/cgroup.rs` `parse_cgroup`) on arbitrary text: container and
//! pod identity become metric labels, so nothing may be invented.
//!
//! Properties beyond "no panic": a container id is 64 hex characters copied from the input; a
//! pod UID is the dashed lowercase 8-4-4-4-12 form of one written in the input (dashes or,
//! under the systemd driver, underscores); lines without two `:` are ignored; a well-formed
//! line appended after the input supplies an id only where none was found, and never
//! replaces one found earlier.
#![no_main]
#![forbid(unsafe_code)]

use headroom_core::cgroup::{CgroupIdentity, parse_cgroup};
use libfuzzer_sys::fuzz_target;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const UID: &str = "01234567-89ab-cdef-0123-456789abcdef";

fn check_identity(text: &str, got: &CgroupIdentity) {
    if let Some(id) = &got.container_id {
        assert!(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id:?}"
        );
        assert!(
            text.contains(id.as_str()),
            "container id {id} is not in the input"
        );
    }
    if let Some(uid) = &got.pod_uid {
        let groups: Vec<usize> = uid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{uid:?}");
        assert!(
            uid.bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{uid:?}"
        );
        let normalized = text.to_ascii_lowercase().replace('_', "-");
        assert!(
            normalized.contains(uid.as_str()),
            "pod uid {uid} is not in the input"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // procfs files are read with `read_to_string`: only UTF-8 reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let got = parse_cgroup(text);
    check_identity(text, &got);

    // Each kept line keeps its own terminator: `lines()` strips a `\r` only before a `\n`.
    let fields: String = text
        .split_inclusive('\n')
        .filter(|l| l.matches(':').count() >= 2)
        .collect();
    assert_eq!(
        parse_cgroup(&fields),
        got,
        "lines without two ':' changed the result"
    );

    let base = parse_cgroup(&format!("{text}\n"));
    let extra = format!("{text}\n0::/kubepods/besteffort/pod{UID}/{ID}\n");
    let more = parse_cgroup(&extra);
    check_identity(&extra, &more);
    assert_eq!(
        more.container_id.as_deref(),
        Some(base.container_id.as_deref().unwrap_or(ID))
    );
    assert_eq!(
        more.pod_uid.as_deref(),
        Some(base.pod_uid.as_deref().unwrap_or(UID))
    );
});
