# The fresco image the Kubernetes manifests name (deploy/kubernetes): the release binary,
# ffmpeg from Debian 12, and ONNX Runtime's shared library from PyPI's wheel.
#
#   docker build -t fresco:0.1.0 .                                         # CPU (onnxruntime)
#   docker build -t fresco-gpu:0.1.0 --build-arg ORT_PACKAGE="onnxruntime-gpu[cuda,cudnn]" .
#
# The GPU variant takes onnxruntime-gpu with NVIDIA's CUDA 12 and cuDNN 9 libraries from PyPI
# (the extras); the node needs only the NVIDIA driver and device plugin. It has not been run on a
# GPU yet. This image is not built in CI (no registry to pull debian/rust images from there).

ARG DEBIAN=bookworm

FROM rust:1-${DEBIAN} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN cargo build --release --locked -p fresco \
    && install -D -m 0755 target/release/fresco /out/bin/fresco

FROM debian:${DEBIAN}-slim AS runtime
ARG ORT_PACKAGE=onnxruntime
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ffmpeg ca-certificates python3 python3-venv tini \
    && rm -rf /var/lib/apt/lists/*
# fresco finds the library in .fresco/venv beside its binary's folder (/opt/fresco/bin/fresco ->
# /opt/fresco/.fresco/venv), the layout scripts/setup.sh makes in a checkout. Only the wheel's
# shared libraries are used; pip and the venv's tools stay for `pip show`.
RUN python3 -m venv /opt/fresco/.fresco/venv \
    && /opt/fresco/.fresco/venv/bin/pip install --no-cache-dir --disable-pip-version-check "${ORT_PACKAGE}" \
    && ls /opt/fresco/.fresco/venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*
# CUDA and cuDNN from the nvidia-* wheels (GPU variant only; the folders do not exist otherwise).
ENV LD_LIBRARY_PATH=/opt/fresco/.fresco/venv/lib/python3.11/site-packages/nvidia/cudnn/lib:/opt/fresco/.fresco/venv/lib/python3.11/site-packages/nvidia/cublas/lib:/opt/fresco/.fresco/venv/lib/python3.11/site-packages/nvidia/cuda_runtime/lib:/opt/fresco/.fresco/venv/lib/python3.11/site-packages/nvidia/cufft/lib:/opt/fresco/.fresco/venv/lib/python3.11/site-packages/nvidia/curand/lib:/opt/fresco/.fresco/venv/lib/python3.11/site-packages/nvidia/cuda_nvrtc/lib
COPY --from=build /out/bin/fresco /opt/fresco/bin/fresco
RUN groupadd --gid 10001 fresco \
    && useradd --uid 10001 --gid fresco --home-dir /tmp --no-create-home --shell /usr/sbin/nologin fresco \
    && ln -s /opt/fresco/bin/fresco /usr/local/bin/fresco \
    && fresco --version
USER 10001:10001
ENV HOME=/tmp FRESCO_STATE_DIR=/tmp/fresco
# tini forwards SIGTERM to fresco (which finishes or hands back its task) and reaps ffmpeg.
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/fresco/bin/fresco"]
CMD ["--help"]
