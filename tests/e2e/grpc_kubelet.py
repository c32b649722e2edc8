#!/usr/bin/env python3
"""An independent pod-resources server for interop tests: the real gRPC library (grpcio,
C-core HTTP/2) and the real protobuf runtime serve `v1.PodResourcesLister/List` on a unix
socket, with messages built from the v1 field numbers and types of the kubelet's
api.proto (`k8s.io/kubelet/pkg/apis/podresources/v1`).

Usage: grpc_kubelet.py SOCKET [SERVICE]
  stdin: JSON [{"namespace", "name", "containers": [{"name", "resource", "ids": [...]}]}]
  SERVICE defaults to v1.PodResourcesLister; any other name makes List answer UNIMPLEMENTED.
Prints "ready" once serving, and serves until stdin reaches EOF a second time (the caller
closes its end)."""
import json
import sys
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
R, O = F.LABEL_REPEATED, F.LABEL_OPTIONAL


def response_class():
    fd = descriptor_pb2.FileDescriptorProto(name="api.proto", package="v1", syntax="proto3")

    def msg(name, fields):
        m = fd.message_type.add(name=name)
        for fname, num, typ, label, tname in fields:
            f = m.field.add(name=fname, number=num, type=typ, label=label)
            if tname:
                f.type_name = ".v1." + tname

    msg("NUMANode", [("ID", 1, F.TYPE_INT64, O, None)])
    msg("TopologyInfo", [("nodes", 1, F.TYPE_MESSAGE, R, "NUMANode")])
    msg("ContainerDevices", [
        ("resource_name", 1, F.TYPE_STRING, O, None),
        ("device_ids", 2, F.TYPE_STRING, R, None),
        ("topology", 3, F.TYPE_MESSAGE, O, "TopologyInfo"),
    ])
    msg("ContainerResources", [
        ("name", 1, F.TYPE_STRING, O, None),
        ("devices", 2, F.TYPE_MESSAGE, R, "ContainerDevices"),
        ("cpu_ids", 3, F.TYPE_INT64, R, None),
    ])
    msg("PodResources", [
        ("name", 1, F.TYPE_STRING, O, None),
        ("namespace", 2, F.TYPE_STRING, O, None),
        ("containers", 3, F.TYPE_MESSAGE, R, "ContainerResources"),
    ])
    msg("ListPodResourcesResponse", [("pod_resources", 1, F.TYPE_MESSAGE, R, "PodResources")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("v1.ListPodResourcesResponse"))


def main():
    socket = sys.argv[1]
    service = sys.argv[2] if len(sys.argv) > 2 else "v1.PodResourcesLister"
    resp = response_class()()
    for p in json.loads(sys.stdin.readline()):
        pod = resp.pod_resources.add(name=p["name"], namespace=p["namespace"])
        for c in p["containers"]:
            cont = pod.containers.add(name=c["name"])
            cont.cpu_ids.extend([0, 1])
            if c["ids"]:
                dev = cont.devices.add(resource_name=c["resource"], device_ids=c["ids"])
                dev.topology.nodes.add(ID=0)
    payload = resp.SerializeToString()

    def list_(request, context):
        if request != b"":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "ListPodResourcesRequest has no fields")
        return payload

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        service, {"List": grpc.unary_unary_rpc_method_handler(list_)}),))
    server.add_insecure_port("unix://" + socket)
    server.start()
    print("ready", flush=True)
    sys.stdin.read()
    server.stop(0)


if __name__ == "__main__":
    main()
