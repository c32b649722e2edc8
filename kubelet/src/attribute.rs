//! From the kubelet's device assignments to the pod of each GPU process (pure: a snapshot and
//! an assignment list in, labels set on the snapshot's processes).
//!
//! The pod-resources API says which pod container holds which device, never which process
//! runs where, and it does not give pod UIDs. A process's cgroup gives its pod UID but not the
//! pod's name. Headroom joins the two, and only where the join is certain:
//!
//! 1. **Device ids.** NVIDIA's device plugin reports GPU UUIDs (`GPU-…`) or MIG device UUIDs
//!    (`MIG-…`); under time-slicing or MPS sharing each replica is `<uuid>::<n>`. The suffix is
//!    dropped, so every replica of a GPU counts as that GPU. Ids of other shapes (the plugin's
//!    `index` strategy, DRA claims) are ignored.
//! 2. **A process's device** is its MIG device when it runs in one and that MIG device is
//!    assigned; otherwise its GPU. Its *owners* are the distinct (namespace, pod, container)
//!    entries holding that device.
//! 3. **Tying a pod UID to a pod.** A device whose owners are all one pod, and whose processes
//!    in pods (per their cgroups) all carry one pod UID, ties that UID to that pod. A UID tied
//!    to two pods, or a pod tied to two UIDs, is dropped: something uses a device it was not
//!    assigned, and the join is no longer certain.
//! 4. **Labels.** A process gets `namespace` and `pod` when its cgroup pod UID is tied to a pod
//!    that is among the owners of its device, and `container` when that pod holds the device
//!    in exactly one container. Everything else stays absent: a process outside any pod (the
//!    MPS server on the host, a Docker container), a device shared by several pods whose UIDs
//!    cannot be told apart (time-slicing, MPS), a device no pod holds.
//!
//! So a pod with an exclusive GPU or MIG slice is named, including on the other devices it
//! holds, shared or not; pods that only share a GPU with other pods are not,
//! because nothing the kubelet or the kernel exposes says which of them a process belongs to.

use crate::proto::PodResources;
use headroom_core::model::Snapshot;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One container's hold on a device.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// Which containers hold each GPU or MIG device, from one `List` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignments {
    by_device: HashMap<String, Vec<Owner>>,
    pods: usize,
}

/// The GPU or MIG UUID a device id names, without a sharing replica suffix (`::<n>`), or
/// `None` for ids that name neither.
pub fn device_uuid(id: &str) -> Option<&str> {
    let uuid = match id.rsplit_once("::") {
        Some((uuid, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => uuid,
        Some(_) => return None,
        None => id,
    };
    ((uuid.starts_with("GPU-") || uuid.starts_with("MIG-")) && uuid.len() > 4).then_some(uuid)
}

impl Assignments {
    pub fn from_pods(pods: &[PodResources]) -> Self {
        let mut by_device: HashMap<String, BTreeSet<Owner>> = HashMap::new();
        for p in pods {
            for c in &p.containers {
                for d in &c.devices {
                    for id in &d.device_ids {
                        if let Some(uuid) = device_uuid(id) {
                            by_device
                                .entry(uuid.to_string())
                                .or_default()
                                .insert(Owner {
                                    namespace: p.namespace.clone(),
                                    pod: p.name.clone(),
                                    container: c.name.clone(),
                                });
                        }
                    }
                }
            }
        }
        Self {
            by_device: by_device
                .into_iter()
                .map(|(k, v)| (k, v.into_iter().collect()))
                .collect(),
            pods: pods.len(),
        }
    }

    /// The containers holding `uuid` (sorted, distinct).
    pub fn owners(&self, uuid: &str) -> &[Owner] {
        self.by_device.get(uuid).map_or(&[], Vec::as_slice)
    }

    /// Pods in the reply (with or without devices).
    pub fn pod_count(&self) -> usize {
        self.pods
    }

    /// GPU and MIG devices held by some container.
    pub fn device_count(&self) -> usize {
        self.by_device.len()
    }
}

type PodKey = (String, String);

fn pod_key(o: &Owner) -> PodKey {
    (o.namespace.clone(), o.pod.clone())
}

/// Sets `namespace`, `pod` and `container` on the processes of `snapshot` where the join of
/// the module doc is certain, and clears them everywhere else.
pub fn attribute(snapshot: &mut Snapshot, assignments: &Assignments) {
    // Step 2: each process's device (by position), when some container holds it.
    let mut device_of: BTreeMap<(usize, usize), &str> = BTreeMap::new();
    for (gi, g) in snapshot.gpus.iter().enumerate() {
        for (pi, p) in g.processes.iter().enumerate() {
            let dev = p
                .mig_uuid
                .as_deref()
                .filter(|m| !assignments.owners(m).is_empty())
                .unwrap_or(&g.uuid);
            if !assignments.owners(dev).is_empty() {
                device_of.insert((gi, pi), dev);
            }
        }
    }

    // Step 3: pod UIDs seen on each device, and the ties they make.
    let mut uids_on: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for (&(gi, pi), &dev) in &device_of {
        if let Some(uid) = snapshot.gpus[gi].processes[pi]
            .attribution
            .pod_uid
            .as_deref()
        {
            uids_on.entry(dev).or_default().insert(uid);
        }
    }
    let mut pods_of_uid: HashMap<&str, BTreeSet<PodKey>> = HashMap::new();
    let mut uids_of_pod: HashMap<PodKey, BTreeSet<&str>> = HashMap::new();
    for (dev, uids) in &uids_on {
        let pods: BTreeSet<PodKey> = assignments.owners(dev).iter().map(pod_key).collect();
        if let ([uid], [pod]) = (
            uids.iter().collect::<Vec<_>>().as_slice(),
            pods.iter().collect::<Vec<_>>().as_slice(),
        ) {
            pods_of_uid.entry(uid).or_default().insert((*pod).clone());
            uids_of_pod.entry((*pod).clone()).or_default().insert(uid);
        }
    }
    let tie = |uid: &str| -> Option<&PodKey> {
        let pods = pods_of_uid.get(uid)?;
        let pod = pods.first().filter(|_| pods.len() == 1)?;
        (uids_of_pod.get(pod)?.len() == 1).then_some(pod)
    };

    // Step 4: labels.
    let mut labels: BTreeMap<(usize, usize), (PodKey, Option<String>)> = BTreeMap::new();
    for (&(gi, pi), &dev) in &device_of {
        let Some(uid) = snapshot.gpus[gi].processes[pi]
            .attribution
            .pod_uid
            .as_deref()
        else {
            continue;
        };
        let Some(pod) = tie(uid) else { continue };
        let containers: Vec<&Owner> = assignments
            .owners(dev)
            .iter()
            .filter(|o| o.namespace == pod.0 && o.pod == pod.1)
            .collect();
        match containers.as_slice() {
            [] => {}
            [one] => {
                labels.insert((gi, pi), (pod.clone(), Some(one.container.clone())));
            }
            _ => {
                labels.insert((gi, pi), (pod.clone(), None));
            }
        }
    }
    for (gi, g) in snapshot.gpus.iter_mut().enumerate() {
        for (pi, p) in g.processes.iter_mut().enumerate() {
            let a = &mut p.attribution;
            match labels.remove(&(gi, pi)) {
                Some(((namespace, pod), container)) => {
                    a.namespace = Some(namespace);
                    a.pod = Some(pod);
                    a.container = container;
                }
                None => {
                    a.namespace = None;
                    a.pod = None;
                    a.container = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{ContainerDevices, ContainerResources};
    use headroom_core::model::{Attribution, Gpu, GpuProcess};

    const G0: &str = "GPU-00000000-0000-0000-0000-000000000000";
    const G1: &str = "GPU-11111111-1111-1111-1111-111111111111";
    const G2: &str = "GPU-22222222-2222-2222-2222-222222222222";
    const M0: &str = "MIG-aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa";
    const M1: &str = "MIG-bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb";

    fn pod(ns: &str, name: &str, containers: &[(&str, &[&str])]) -> PodResources {
        PodResources {
            name: name.into(),
            namespace: ns.into(),
            containers: containers
                .iter()
                .map(|(c, ids)| ContainerResources {
                    name: (*c).into(),
                    devices: vec![ContainerDevices {
                        resource_name: "nvidia.com/gpu".into(),
                        device_ids: ids.iter().map(|s| s.to_string()).collect(),
                    }],
                })
                .collect(),
        }
    }

    fn proc(pid: u32, mig: Option<&str>, uid: Option<&str>) -> GpuProcess {
        GpuProcess {
            pid,
            name: None,
            used_memory: Some(1),
            mps: false,
            mig_uuid: mig.map(str::to_string),
            mps_memory_limit: None,
            workload: None,
            attribution: Attribution {
                container_id: uid.map(|_| "c".repeat(64)),
                pod_uid: uid.map(str::to_string),
                ..Attribution::default()
            },
        }
    }

    fn gpu(index: u32, uuid: &str, procs: Vec<GpuProcess>) -> Gpu {
        let mut g = Gpu::new(index, uuid.into(), None);
        g.processes = procs;
        g
    }

    /// (pid → (namespace, pod, container)) after attribution.
    fn run(gpus: Vec<Gpu>, pods: &[PodResources]) -> BTreeMap<u32, (String, String, String)> {
        let mut snap = Snapshot {
            driver_version: None,
            gpus,
        };
        attribute(&mut snap, &Assignments::from_pods(pods));
        let mut out = BTreeMap::new();
        for g in &snap.gpus {
            for p in &g.processes {
                let a = &p.attribution;
                assert_eq!(a.pod.is_some(), a.namespace.is_some(), "{a:?}");
                if let (Some(ns), Some(pod)) = (&a.namespace, &a.pod) {
                    let c = a.container.clone().unwrap_or_else(|| "-".into());
                    out.insert(p.pid, (ns.clone(), pod.clone(), c));
                } else {
                    assert!(a.container.is_none());
                }
            }
        }
        out
    }

    fn l(ns: &str, pod: &str, c: &str) -> (String, String, String) {
        (ns.into(), pod.into(), c.into())
    }

    #[test]
    fn device_ids() {
        assert_eq!(device_uuid(G0), Some(G0));
        assert_eq!(device_uuid(&format!("{G0}::3")), Some(G0));
        assert_eq!(device_uuid(M0), Some(M0));
        assert_eq!(device_uuid("0"), None);
        assert_eq!(device_uuid("GPU-"), None);
        assert_eq!(device_uuid(&format!("{G0}::x")), None);
        assert_eq!(device_uuid(&format!("{G0}::")), None);
        assert_eq!(device_uuid("0000:3b:00.0"), None);
    }

    #[test]
    fn exclusive_gpu_and_mig_devices_name_their_pod_and_container() {
        let got = run(
            vec![
                gpu(
                    0,
                    G0,
                    vec![proc(10, None, Some("u-train")), proc(11, None, None)],
                ),
                gpu(
                    1,
                    G1,
                    vec![
                        proc(20, Some(M0), Some("u-a")),
                        proc(21, Some(M1), Some("u-b")),
                    ],
                ),
            ],
            &[
                pod("ml", "train-0", &[("worker", &[G0])]),
                pod("serving", "a", &[("model", &[M0])]),
                pod("serving", "b", &[("model", &[M1])]),
                pod("kube-system", "no-devices", &[]),
            ],
        );
        assert_eq!(
            got,
            BTreeMap::from([
                (10, l("ml", "train-0", "worker")),
                (20, l("serving", "a", "model")),
                (21, l("serving", "b", "model")),
            ]),
            "pid 11 has no pod UID (host process, e.g. the MPS server): no labels"
        );
    }

    #[test]
    fn a_shared_gpu_stays_unlabelled_unless_a_uid_is_tied_elsewhere() {
        let shared = |n: u32| format!("{G1}::{n}");
        let (s0, s1, s2) = (shared(0), shared(1), shared(2));
        let pods = [
            pod("t", "x", &[("c", &[s0.as_str()])]),
            pod("t", "y", &[("c", &[s1.as_str()])]),
            // z also holds G2 alone, which ties its UID.
            pod("t", "z", &[("c", &[s2.as_str(), G2])]),
        ];
        let got = run(
            vec![
                gpu(
                    1,
                    G1,
                    vec![
                        proc(1, None, Some("u-x")),
                        proc(2, None, Some("u-y")),
                        proc(3, None, Some("u-z")),
                    ],
                ),
                gpu(2, G2, vec![proc(4, None, Some("u-z"))]),
            ],
            &pods,
        );
        assert_eq!(
            got,
            BTreeMap::from([(3, l("t", "z", "c")), (4, l("t", "z", "c"))])
        );
    }

    #[test]
    fn a_single_pod_sharing_its_own_replicas_is_named() {
        // Two replicas of one GPU in one pod, in two containers: the pod is certain, the
        // container is not.
        let (r0, r1) = (format!("{G0}::0"), format!("{G0}::1"));
        let got = run(
            vec![gpu(
                0,
                G0,
                vec![proc(1, None, Some("u")), proc(2, None, Some("u"))],
            )],
            &[pod(
                "ns",
                "p",
                &[("a", &[r0.as_str()]), ("b", &[r1.as_str()])],
            )],
        );
        assert_eq!(
            got,
            BTreeMap::from([(1, l("ns", "p", "-")), (2, l("ns", "p", "-"))])
        );
    }

    #[test]
    fn a_foreign_pod_on_an_assigned_gpu_spoils_the_tie() {
        // G0 is assigned to p, but processes of two pod UIDs use it: either could be p.
        let got = run(
            vec![gpu(
                0,
                G0,
                vec![proc(1, None, Some("u-p")), proc(2, None, Some("u-q"))],
            )],
            &[pod("ns", "p", &[("c", &[G0])])],
        );
        assert!(got.is_empty(), "{got:?}");
        // One UID claimed by two pods (each alone on a device) is not trusted either.
        let got = run(
            vec![
                gpu(0, G0, vec![proc(1, None, Some("u"))]),
                gpu(1, G1, vec![proc(2, None, Some("u"))]),
            ],
            &[
                pod("ns", "p", &[("c", &[G0])]),
                pod("ns", "q", &[("c", &[G1])]),
            ],
        );
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn mig_process_falls_back_to_a_whole_gpu_assignment() {
        let got = run(
            vec![gpu(0, G0, vec![proc(1, Some(M0), Some("u"))])],
            &[pod("ns", "whole", &[("c", &[G0])])],
        );
        assert_eq!(got, BTreeMap::from([(1, l("ns", "whole", "c"))]));
    }

    #[test]
    fn unassigned_devices_and_empty_lists_give_nothing_and_clear_old_labels() {
        let mut p = proc(1, None, Some("u"));
        p.attribution.pod = Some("stale".into());
        p.attribution.namespace = Some("stale".into());
        p.attribution.container = Some("stale".into());
        let got = run(
            vec![gpu(0, G0, vec![p])],
            &[pod("ns", "p", &[("c", &[G1])])],
        );
        assert!(got.is_empty());
        let got = run(vec![gpu(0, G0, vec![proc(1, None, Some("u"))])], &[]);
        assert!(got.is_empty());
        let a = Assignments::from_pods(&[pod("ns", "p", &[("c", &[G1, "0", M0])])]);
        assert_eq!((a.pod_count(), a.device_count()), (1, 2));
        assert_eq!(a.owners(G1).len(), 1);
    }
}
