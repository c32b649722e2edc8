# headroom-exporter image. Build from the repository root:
#   docker build -f deploy/docker/exporter.Dockerfile -t headroom-exporter:0.1.0 .
# Run on a GPU host (NVIDIA container toolkit): the toolkit mounts libnvidia-ml.so.1 and the
# device nodes; --pid=host lets it read the MPS clients' /proc/<pid>/environ and cgroup:
#   docker run --rm --gpus all --pid=host --cap-add SYS_PTRACE -p 9401:9401 headroom-exporter:0.1.0

FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p headroom-exporter \
 && install -D -m 0755 target/release/headroom-exporter /out/headroom-exporter

# Distroless with glibc and libgcc (the exporter loads NVML with dlopen, so it cannot be a
# static musl binary), no shell, no package manager. It runs as root: reading another
# user's /proc/<pid>/environ needs it (with CAP_SYS_PTRACE and nothing else, see
# deploy/kubernetes/exporter-daemonset.yaml). Distroless publishes rolling tags only: pin
# the digest your registry resolves for reproducible builds.
# hadolint ignore=DL3007
FROM gcr.io/distroless/cc-debian12:latest
COPY --from=build /out/headroom-exporter /usr/local/bin/headroom-exporter
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=utility
EXPOSE 9401
ENTRYPOINT ["/usr/local/bin/headroom-exporter"]
