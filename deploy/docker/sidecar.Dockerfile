# headroom-sidecar image: the admission daemon (`serve`, the default command) and the `run`
# client that inference containers use. Build from the repository root:
#   docker build -f deploy/docker/sidecar.Dockerfile -t headroom-sidecar:0.1.0 .
# Run the daemon on a GPU host:
#   docker run --rm --gpus all --pid=host -v /run/headroom:/run/headroom \
#     -v /var/lib/headroom:/var/lib/headroom -p 9402:9402 headroom-sidecar:0.1.0

FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p headroom-sidecar \
 && install -D -m 0755 target/release/headroom-sidecar /out/headroom-sidecar

# Slim Debian rather than distroless: Kubernetes init containers copy the binary out of this
# image into inference pods with `cp` (deploy/kubernetes/examples/). The binary needs
# glibc >= 2.34 wherever it runs (Debian 12, Ubuntu 22.04, RHEL 9 and newer); SQLite is
# compiled in.
FROM debian:bookworm-slim
COPY --from=build /out/headroom-sidecar /usr/local/bin/headroom-sidecar
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=utility \
    HEADROOM_SOCKET=/run/headroom/sidecar.sock \
    HEADROOM_STATE_DIR=/var/lib/headroom/state
EXPOSE 9402
ENTRYPOINT ["/usr/local/bin/headroom-sidecar"]
CMD ["serve"]
