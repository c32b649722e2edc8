//! The few protobuf messages of the kubelet pod-resources API v1 that Headroom reads, decoded
//! by hand (no codegen). From `k8s.io/kubelet/pkg/apis/podresources/v1/api.proto`:
//!
//! ```proto
//! service PodResourcesLister {
//!     rpc List(ListPodResourcesRequest) returns (ListPodResourcesResponse) {}
//! }
//! message ListPodResourcesRequest {}
//! message ListPodResourcesResponse { repeated PodResources pod_resources = 1; }
//! message PodResources {
//!     string name = 1; string namespace = 2; repeated ContainerResources containers = 3;
//! }
//! message ContainerResources {
//!     string name = 1; repeated ContainerDevices devices = 2;
//!     repeated int64 cpu_ids = 3; repeated ContainerMemory memory = 4;
//!     repeated DynamicResource dynamic_resources = 5;
//! }
//! message ContainerDevices {
//!     string resource_name = 1; repeated string device_ids = 2; TopologyInfo topology = 3;
//! }
//! ```
//!
//! Fields Headroom does not use (CPU ids, memory, topology, dynamic resources, and anything a
//! later kubelet adds) are skipped by wire type, as protobuf requires. Malformed input
//! (truncated varints or lengths, a length past the end, wire types 3/4/6/7, field number 0,
//! a string that is not UTF-8) is an error, never a partial result.

use thiserror::Error;

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("truncated varint at byte {0}")]
    Varint(usize),
    #[error("field {field} at byte {at}: length {len} runs past the end ({left} bytes left)")]
    Length {
        field: u32,
        at: usize,
        len: u64,
        left: usize,
    },
    #[error("unsupported wire type {wire} of field {field} at byte {at}")]
    WireType { wire: u8, field: u32, at: usize },
    #[error("field number 0 at byte {0}")]
    FieldZero(usize),
    #[error("field {field} of {message} is not valid UTF-8")]
    Utf8 { message: &'static str, field: u32 },
    #[error("field {field} of {message} has wire type {wire}, expected length-delimited")]
    Type {
        message: &'static str,
        field: u32,
        wire: u8,
    },
}

/// `ContainerDevices`: devices of one resource assigned to a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerDevices {
    /// e.g. `nvidia.com/gpu`, `nvidia.com/mig-3g.40gb`.
    pub resource_name: String,
    /// As the device plugin reported them: GPU or MIG UUIDs for NVIDIA's plugin, with a
    /// `::N` replica suffix under time-slicing or MPS sharing.
    pub device_ids: Vec<String>,
}

/// `ContainerResources`: one container of a pod and its devices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerResources {
    pub name: String,
    pub devices: Vec<ContainerDevices>,
}

/// `PodResources`: one pod on the node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodResources {
    pub name: String,
    pub namespace: String,
    pub containers: Vec<ContainerResources>,
}

/// The encoding of `ListPodResourcesRequest {}`: no fields, so no bytes.
pub const LIST_REQUEST: &[u8] = &[];

/// One field as read off the wire.
enum Value<'a> {
    /// Varint, fixed32 or fixed64: nothing Headroom reads.
    Scalar,
    Bytes(&'a [u8]),
}

/// Walks the fields of one message.
struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(DecodeError::Varint(start));
            };
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Varint(start))
    }

    fn skip(&mut self, n: usize, field: u32, at: usize) -> Result<&'a [u8], DecodeError> {
        let left = self.buf.len() - self.pos;
        if n > left {
            return Err(DecodeError::Length {
                field,
                at,
                len: n as u64,
                left,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// The next (field number, wire type, value), or `None` at the end.
    fn next_field(&mut self) -> Result<Option<(u32, u8, Value<'a>)>, DecodeError> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let at = self.pos;
        let key = self.varint()?;
        let wire = (key & 7) as u8;
        let field = u32::try_from(key >> 3).unwrap_or(u32::MAX);
        if field == 0 {
            return Err(DecodeError::FieldZero(at));
        }
        let value = match wire {
            0 => {
                self.varint()?;
                Value::Scalar
            }
            1 => {
                self.skip(8, field, at)?;
                Value::Scalar
            }
            2 => {
                let len = self.varint()?;
                let left = self.buf.len() - self.pos;
                let n = usize::try_from(len).ok().filter(|n| *n <= left).ok_or(
                    DecodeError::Length {
                        field,
                        at,
                        len,
                        left,
                    },
                )?;
                Value::Bytes(self.skip(n, field, at)?)
            }
            5 => {
                self.skip(4, field, at)?;
                Value::Scalar
            }
            wire => return Err(DecodeError::WireType { wire, field, at }),
        };
        Ok(Some((field, wire, value)))
    }
}

/// The bytes of a length-delimited field Headroom reads; any other wire type is an error.
fn bytes<'a>(
    message: &'static str,
    field: u32,
    wire: u8,
    v: Value<'a>,
) -> Result<&'a [u8], DecodeError> {
    match v {
        Value::Bytes(b) => Ok(b),
        Value::Scalar => Err(DecodeError::Type {
            message,
            field,
            wire,
        }),
    }
}

fn string(message: &'static str, field: u32, b: &[u8]) -> Result<String, DecodeError> {
    std::str::from_utf8(b)
        .map(str::to_string)
        .map_err(|_| DecodeError::Utf8 { message, field })
}

fn container_devices(buf: &[u8]) -> Result<ContainerDevices, DecodeError> {
    const M: &str = "ContainerDevices";
    let mut out = ContainerDevices::default();
    let mut f = Fields::new(buf);
    while let Some((field, wire, v)) = f.next_field()? {
        match field {
            1 => out.resource_name = string(M, field, bytes(M, field, wire, v)?)?,
            2 => out
                .device_ids
                .push(string(M, field, bytes(M, field, wire, v)?)?),
            _ => {}
        }
    }
    Ok(out)
}

fn container_resources(buf: &[u8]) -> Result<ContainerResources, DecodeError> {
    const M: &str = "ContainerResources";
    let mut out = ContainerResources::default();
    let mut f = Fields::new(buf);
    while let Some((field, wire, v)) = f.next_field()? {
        match field {
            1 => out.name = string(M, field, bytes(M, field, wire, v)?)?,
            2 => out
                .devices
                .push(container_devices(bytes(M, field, wire, v)?)?),
            _ => {}
        }
    }
    Ok(out)
}

fn pod_resources(buf: &[u8]) -> Result<PodResources, DecodeError> {
    const M: &str = "PodResources";
    let mut out = PodResources::default();
    let mut f = Fields::new(buf);
    while let Some((field, wire, v)) = f.next_field()? {
        match field {
            1 => out.name = string(M, field, bytes(M, field, wire, v)?)?,
            2 => out.namespace = string(M, field, bytes(M, field, wire, v)?)?,
            3 => out
                .containers
                .push(container_resources(bytes(M, field, wire, v)?)?),
            _ => {}
        }
    }
    Ok(out)
}

/// Decodes a `ListPodResourcesResponse` into its pods.
pub fn decode_list_response(buf: &[u8]) -> Result<Vec<PodResources>, DecodeError> {
    const M: &str = "ListPodResourcesResponse";
    let mut pods = Vec::new();
    let mut f = Fields::new(buf);
    while let Some((field, wire, v)) = f.next_field()? {
        if field == 1 {
            pods.push(pod_resources(bytes(M, field, wire, v)?)?);
        }
    }
    Ok(pods)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `ListPodResourcesResponse` serialized by Python's `protobuf` (7.36, upb) from the real
    /// v1 field numbers and types (`testdata/gen_list_response.py`), with fields Headroom
    /// skips (topology, CPU ids, memory) filled in too:
    ///
    /// ```text
    /// pod_resources { name: "train-0" namespace: "ml"
    ///   containers { name: "worker"
    ///     devices { resource_name: "nvidia.com/gpu"
    ///               device_ids: "GPU-f0adccc6-9d17-0af6-ba0b-82402cce84b5"
    ///               topology { nodes { ID: 1 } } }
    ///     cpu_ids: 2 cpu_ids: 3
    ///     memory { memory_type: "memory" size: 1073741824 } } }
    /// pod_resources { name: "shared-b" namespace: "serving"
    ///   containers { name: "a"
    ///     devices { resource_name: "nvidia.com/gpu"
    ///               device_ids: "GPU-1b1b1b1b-0000-0000-0000-000000000001::0"
    ///               device_ids: "MIG-cbd0b0c1-1449-5ed6-876a-dd5b483b65ca" } }
    ///   containers { name: "sidecar" } }
    /// ```
    const REAL: &str = include_str!("testdata/list_response.hex");

    #[test]
    fn decodes_bytes_from_a_real_protobuf_encoder() {
        let pods = decode_list_response(&hex(REAL)).unwrap();
        assert_eq!(
            pods,
            vec![
                PodResources {
                    name: "train-0".into(),
                    namespace: "ml".into(),
                    containers: vec![ContainerResources {
                        name: "worker".into(),
                        devices: vec![ContainerDevices {
                            resource_name: "nvidia.com/gpu".into(),
                            device_ids: vec!["GPU-f0adccc6-9d17-0af6-ba0b-82402cce84b5".into()],
                        }],
                    }],
                },
                PodResources {
                    name: "shared-b".into(),
                    namespace: "serving".into(),
                    containers: vec![
                        ContainerResources {
                            name: "a".into(),
                            devices: vec![ContainerDevices {
                                resource_name: "nvidia.com/gpu".into(),
                                device_ids: vec![
                                    "GPU-1b1b1b1b-0000-0000-0000-000000000001::0".into(),
                                    "MIG-cbd0b0c1-1449-5ed6-876a-dd5b483b65ca".into(),
                                ],
                            }],
                        },
                        ContainerResources {
                            name: "sidecar".into(),
                            devices: vec![],
                        },
                    ],
                },
            ]
        );
    }

    #[test]
    fn empty_response_is_no_pods() {
        assert_eq!(decode_list_response(&[]).unwrap(), vec![]);
    }

    #[test]
    fn unknown_fields_of_every_wire_type_are_skipped() {
        // PodResources { name: "p", 9: varint 300, 10: fixed64, 11: fixed32, 12: bytes "zz" }
        let pod = [
            0x0a, 1, b'p', 0x48, 0xac, 0x02, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5d, 1, 2, 3, 4, 0x62,
            2, b'z', b'z',
        ];
        let mut msg = vec![0x0a, pod.len() as u8];
        msg.extend_from_slice(&pod);
        // An unknown top-level field too.
        msg.extend_from_slice(&[0x10, 0x01]);
        let pods = decode_list_response(&msg).unwrap();
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].name, "p");
    }

    #[test]
    fn malformed_input_is_an_error() {
        // Length past the end.
        assert!(matches!(
            decode_list_response(&[0x0a, 5, 0x0a, 1]),
            Err(DecodeError::Length { field: 1, .. })
        ));
        // Truncated varint.
        assert!(matches!(
            decode_list_response(&[0x0a, 0x80]),
            Err(DecodeError::Varint(1))
        ));
        // Group wire type.
        assert!(matches!(
            decode_list_response(&[0x0b]),
            Err(DecodeError::WireType { wire: 3, .. })
        ));
        // Field number 0.
        assert!(matches!(
            decode_list_response(&[0x02, 0]),
            Err(DecodeError::FieldZero(0))
        ));
        // A known field with the wrong wire type.
        assert!(matches!(
            decode_list_response(&[0x08, 1]),
            Err(DecodeError::Type { field: 1, .. })
        ));
        // A pod name that is not UTF-8.
        assert!(matches!(
            decode_list_response(&[0x0a, 3, 0x0a, 1, 0xff]),
            Err(DecodeError::Utf8 { field: 1, .. })
        ));
        // An error deep inside is still an error.
        let bad_device = [0x12, 3, 0x12, 5, b'x'];
        let mut container = vec![0x1a, bad_device.len() as u8];
        container.extend_from_slice(&bad_device);
        let mut msg = vec![0x0a, container.len() as u8];
        msg.extend_from_slice(&container);
        assert!(decode_list_response(&msg).is_err());
    }
}
