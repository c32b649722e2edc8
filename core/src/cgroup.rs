//! Container and pod identity from a process's `/proc/PID/cgroup`.
//!
//! Understands cgroup v1 (`N:controller:/path`) and v2 (`0::/path`) lines, and the path shapes
//! of Docker (`/docker/<id>`, `docker-<id>.scope`), containerd (`cri-containerd-<id>.scope`,
//! `/kubepods/.../pod<uid>/<id>`), CRI-O (`crio-<id>.scope`, but not `crio-conmon-<id>`) and
//! Podman (`libpod-<id>.scope`). Pod UIDs appear as `pod<uid>` or, under the systemd driver,
//! `kubepods-<qos>-pod<uid_with_underscores>.slice`. Nothing is guessed: a path that matches
//! no shape yields no id.

/// What a cgroup file says about a process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupIdentity {
    /// The container id (64 hex characters).
    pub container_id: Option<String>,
    /// The Kubernetes pod UID (dashed form).
    pub pod_uid: Option<String>,
}

const CONTAINER_PREFIXES: [&str; 6] = [
    "docker-",
    "cri-containerd-",
    "containerd-",
    "crio-",
    "libpod-",
    "cri-o-",
];

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The container id a path component names, if it names one.
fn container_id(component: &str) -> Option<&str> {
    let c = component.strip_suffix(".scope").unwrap_or(component);
    if c.starts_with("crio-conmon-") {
        return None;
    }
    let id = CONTAINER_PREFIXES
        .iter()
        .find_map(|p| c.strip_prefix(p))
        .unwrap_or(c);
    is_hex64(id).then_some(id)
}

fn is_uid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The pod UID a path component names, if it names one.
fn pod_uid(component: &str) -> Option<String> {
    let c = component.strip_suffix(".slice").unwrap_or(component);
    let idx = c.rfind("pod")?;
    let uid = c[idx + 3..].replace('_', "-");
    is_uid(&uid).then_some(uid.to_ascii_lowercase())
}

/// Parses the contents of `/proc/PID/cgroup`.
pub fn parse_cgroup(contents: &str) -> CgroupIdentity {
    let mut out = CgroupIdentity::default();
    for line in contents.lines() {
        // hierarchy-ID:controller-list:cgroup-path; the path may itself contain ':'.
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(_), Some(path)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        for component in path.split('/').filter(|c| !c.is_empty()) {
            if out.container_id.is_none() {
                out.container_id = container_id(component).map(str::to_string);
            }
            if out.pod_uid.is_none() {
                out.pod_uid = pod_uid(component);
            }
        }
        if out.container_id.is_some() && out.pod_uid.is_some() {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f9a8d62c4b1e5f70a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081";
    const UID: &str = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

    #[test]
    fn docker_v1_and_v2() {
        let v1 = format!("12:memory:/docker/{ID}\n11:cpu,cpuacct:/docker/{ID}\n");
        assert_eq!(parse_cgroup(&v1).container_id.as_deref(), Some(ID));
        assert_eq!(parse_cgroup(&v1).pod_uid, None);
        let v2 = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(parse_cgroup(&v2).container_id.as_deref(), Some(ID));
    }

    #[test]
    fn kubernetes_cgroupfs_and_systemd_drivers() {
        let v1 = format!("4:devices:/kubepods/burstable/pod{UID}/{ID}\n");
        let got = parse_cgroup(&v1);
        assert_eq!(got.container_id.as_deref(), Some(ID));
        assert_eq!(got.pod_uid.as_deref(), Some(UID));

        let us = UID.replace('-', "_");
        let v2 = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{us}.slice/cri-containerd-{ID}.scope\n"
        );
        let got = parse_cgroup(&v2);
        assert_eq!(got.container_id.as_deref(), Some(ID));
        assert_eq!(got.pod_uid.as_deref(), Some(UID));

        let crio = format!("0::/kubepods.slice/kubepods-pod{us}.slice/crio-{ID}.scope\n");
        assert_eq!(parse_cgroup(&crio).container_id.as_deref(), Some(ID));
        assert_eq!(parse_cgroup(&crio).pod_uid.as_deref(), Some(UID));
    }

    #[test]
    fn unknown_shapes_give_nothing() {
        assert_eq!(
            parse_cgroup("0::/user.slice/user-0.slice/session-3.scope\n"),
            CgroupIdentity::default()
        );
        let conmon = format!("0::/kubepods.slice/crio-conmon-{ID}.scope\n");
        assert_eq!(parse_cgroup(&conmon).container_id, None);
        assert_eq!(parse_cgroup("garbage\n\n::\n"), CgroupIdentity::default());
        // A pod-looking word that is not a UID.
        assert_eq!(parse_cgroup("0::/podcast/player\n").pod_uid, None);
    }
}
