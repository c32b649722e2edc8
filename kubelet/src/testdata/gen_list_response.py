#!/usr/bin/env python3
# Regenerates list_response.hex (needs `pip install protobuf`):
#   python3 gen_list_response.py > list_response.hex
# Builds the pod-resources v1 messages from a hand-written descriptor (same field numbers and
# types as api.proto) and serializes a sample ListPodResourcesResponse.
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
F = descriptor_pb2.FieldDescriptorProto
fd = descriptor_pb2.FileDescriptorProto(name="api.proto", package="v1", syntax="proto3")
def msg(name, fields):
    m = fd.message_type.add(name=name)
    for (fname, num, typ, label, tname) in fields:
        f = m.field.add(name=fname, number=num, type=typ, label=label)
        if tname: f.type_name = ".v1." + tname
        if typ == F.TYPE_INT64 and label == F.LABEL_REPEATED:
            pass
R, O = F.LABEL_REPEATED, F.LABEL_OPTIONAL
msg("NUMANode", [("ID", 1, F.TYPE_INT64, O, None)])
msg("TopologyInfo", [("nodes", 1, F.TYPE_MESSAGE, R, "NUMANode")])
msg("ContainerDevices", [("resource_name", 1, F.TYPE_STRING, O, None), ("device_ids", 2, F.TYPE_STRING, R, None), ("topology", 3, F.TYPE_MESSAGE, O, "TopologyInfo")])
msg("ContainerMemory", [("memory_type", 1, F.TYPE_STRING, O, None), ("size", 2, F.TYPE_UINT64, O, None), ("topology", 3, F.TYPE_MESSAGE, O, "TopologyInfo")])
msg("ContainerResources", [("name", 1, F.TYPE_STRING, O, None), ("devices", 2, F.TYPE_MESSAGE, R, "ContainerDevices"), ("cpu_ids", 3, F.TYPE_INT64, R, None), ("memory", 4, F.TYPE_MESSAGE, R, "ContainerMemory")])
msg("PodResources", [("name", 1, F.TYPE_STRING, O, None), ("namespace", 2, F.TYPE_STRING, O, None), ("containers", 3, F.TYPE_MESSAGE, R, "ContainerResources")])
msg("ListPodResourcesResponse", [("pod_resources", 1, F.TYPE_MESSAGE, R, "PodResources")])
pool = descriptor_pool.DescriptorPool(); pool.Add(fd)
Resp = message_factory.GetMessageClass(pool.FindMessageTypeByName("v1.ListPodResourcesResponse"))
r = Resp()
p = r.pod_resources.add(name="train-0", namespace="ml")
c = p.containers.add(name="worker")
d = c.devices.add(resource_name="nvidia.com/gpu", device_ids=["GPU-f0adccc6-9d17-0af6-ba0b-82402cce84b5"])
d.topology.nodes.add(ID=1)
c.cpu_ids.extend([2, 3])
c.memory.add(memory_type="memory", size=1073741824)
p = r.pod_resources.add(name="shared-b", namespace="serving")
c = p.containers.add(name="a")
c.devices.add(resource_name="nvidia.com/gpu", device_ids=["GPU-1b1b1b1b-0000-0000-0000-000000000001::0", "MIG-cbd0b0c1-1449-5ed6-876a-dd5b483b65ca"])
p.containers.add(name="sidecar")
b = r.SerializeToString()
h = b.hex()
print("\n".join(h[i:i+96] for i in range(0, len(h), 96)))
