//! Kubernetes pod attribution for GPU processes: the kubelet's pod-resources API v1
//! (`v1.PodResourcesLister/List`, gRPC on its unix socket, by default
//! [`client::DEFAULT_SOCKET`]) says which pod container holds which GPU or MIG device; joined
//! with each process's cgroup pod UID, it names the pod, namespace and container of GPU
//! processes where that is certain ([`attribute`] explains the rule).
//!
//! - [`proto`]: the hand-written decoder of the few protobuf messages used.
//! - [`grpc`]: gRPC message framing and status.
//! - [`client`]: one `List` call over HTTP/2 (hyper) on the unix socket.
//! - [`cache`]: the background refresh with backoff, and the cache readers use.
//! - [`attribute`]: the pure join of assignments and processes.
#![forbid(unsafe_code)]

pub mod attribute;
pub mod cache;
pub mod client;
pub mod grpc;
pub mod proto;

pub use attribute::{Assignments, attribute};
pub use cache::{Cache, Settings, refresh};
