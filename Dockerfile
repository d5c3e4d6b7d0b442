# syntax=docker/dockerfile:1
# The fresco image the Kubernetes manifests name (deploy/kubernetes): the release binary,
# ffmpeg from Debian 12, and ONNX Runtime's shared library taken out of PyPI's wheel. The runtime
# stage holds no Python, venv or numpy: only libonnxruntime.so* (and, for the GPU variant, the
# CUDA/cuDNN libraries of NVIDIA's wheels).
#
#   docker build -t fresco:0.1.0 .                                         # CPU (onnxruntime)
#   docker build -t fresco-gpu:0.1.0 --build-arg ORT_PACKAGE="onnxruntime-gpu[cuda,cudnn]==1.32.0" .
#   docker run --rm --read-only --tmpfs /tmp -v "$PWD:/work" fresco:0.1.0 run in.mp4 -o out.mp4 --style vintage
#
# It runs as user 10001 with a read-only root file system: it writes only under /tmp (HOME, the
# state folder, scratch) and to what is mounted (/work, the working directory). The GPU variant
# has not been run on a GPU yet. scripts/build-image.sh (run by scripts/test.sh) builds and runs
# the image and prints its size where a container engine answers; CI's machines have none, so
# there it lints this file with hadolint (scripts/lint-dockerfile.sh) and the image's size in
# the README is an estimate from its parts.

ARG DEBIAN=bookworm

# The binary. The cargo registry and target folder are cache mounts, so a rebuild after a
# source change recompiles fresco's crates, not its ~500 dependencies.
FROM rust:1-${DEBIAN} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p fresco \
    && install -D -m 0755 target/release/fresco /out/bin/fresco \
    && strip --strip-debug /out/bin/fresco

# ONNX Runtime: pip installs the wheel here, and only its shared libraries are copied out.
FROM python:3.11-slim-${DEBIAN} AS ort
ARG ORT_PACKAGE=onnxruntime==1.32.0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The pin is in ORT_PACKAGE (hadolint cannot see through the variable).
# hadolint ignore=DL3013
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --disable-pip-version-check --target /wheel "${ORT_PACKAGE}" \
    && mkdir -p /out/lib/nvidia \
    && cp -a /wheel/onnxruntime/capi/libonnxruntime*.so* /out/lib/ \
    && lib=$(basename /out/lib/libonnxruntime.so.*) \
    && ln -s "${lib}" /out/lib/libonnxruntime.so \
    && if [ -d /wheel/nvidia ]; then \
         find /wheel/nvidia -path '*/lib/*.so*' -exec cp -a {} /out/lib/nvidia/ \; ; \
       fi \
    && ls -l /out/lib

FROM debian:${DEBIAN}-slim AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Versions are Debian 12's security-maintained ones; pinning them would break the build at
# each point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ffmpeg ca-certificates tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 fresco \
    && useradd --uid 10001 --gid fresco --home-dir /tmp --no-create-home --shell /usr/sbin/nologin fresco \
    && install -d -o 10001 -g 10001 /work
COPY --from=ort /out/lib /opt/fresco/lib
COPY --from=build /out/bin/fresco /opt/fresco/bin/fresco
# fresco finds ONNX Runtime through FRESCO_ORT_LIB; the GPU variant's CUDA provider is found
# beside it, and CUDA/cuDNN through LD_LIBRARY_PATH (an empty folder in the CPU image).
ENV FRESCO_ORT_LIB=/opt/fresco/lib/libonnxruntime.so \
    LD_LIBRARY_PATH=/opt/fresco/lib/nvidia \
    PATH=/opt/fresco/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    FRESCO_STATE_DIR=/tmp/fresco
USER 10001:10001
WORKDIR /work
# Proves, as the image's own user, that the binary runs and finds the library: one built-in
# style over a generated frame (written to /tmp, which is a volume at run time).
RUN fresco --version \
    && ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=64x48 -frames:v 1 /tmp/probe.png \
    && fresco run /tmp/probe.png -o /tmp/probe-out.png --style vintage \
    && rm -rf /tmp/probe.png /tmp/probe-out.png /tmp/fresco /tmp/.cache
# tini forwards SIGTERM to fresco (which finishes or hands back its task) and reaps ffmpeg.
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/fresco/bin/fresco"]
CMD ["--help"]
