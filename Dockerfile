# syntax=docker/dockerfile:1
#
# graphhook receiver images.
#
#   docker build -t graphhook/receiver .                          static binary on distroless (default)
#   docker build --target openssl -t graphhook/receiver:openssl .   cgo + OpenSSL backend on Debian slim
#
# Both run as an unprivileged user, listen on 8080 (notifications) and, as
# configured below, 9090 (/healthz, /readyz, /metrics), and keep the
# embedded NATS server's data in /var/lib/graphhook. With replicas or in
# Kubernetes, point GRAPHHOOK_NATS_URL at an external NATS cluster instead.

ARG GO_VERSION=1.26
ARG VERSION=dev

# ---- modules: the module cache both builds start from ------------------------
FROM golang:${GO_VERSION}-bookworm AS modules
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download

# ---- build: static CGO_ENABLED=0 binary -------------------------------------
FROM modules AS build
COPY . .
ARG VERSION
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" \
        -o /out/receiver ./cmd/receiver \
    && mkdir -p /out/data

# ---- build-openssl: cgo binary with the OpenSSL backend (build tag openssl) --
# The packages come before the sources, so a change of the code does not
# install them again.
FROM modules AS build-openssl
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
COPY . .
ARG VERSION
RUN CGO_ENABLED=1 go build -trimpath -tags openssl -ldflags="-s -w -X main.version=${VERSION}" \
        -o /out/receiver ./cmd/receiver

# ---- openssl: Debian slim with libssl3 --------------------------------------
FROM debian:bookworm-slim AS openssl
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 65532 graphhook \
    && useradd --system --uid 65532 --gid 65532 --home-dir /var/lib/graphhook --shell /usr/sbin/nologin graphhook \
    && install -d -o 65532 -g 65532 -m 0700 /var/lib/graphhook
COPY --from=build-openssl /out/receiver /usr/local/bin/receiver
ENV GRAPHHOOK_DATA_DIR=/var/lib/graphhook \
    GRAPHHOOK_LISTEN=:8080 \
    GRAPHHOOK_OPS_LISTEN=:9090 \
    GRAPHHOOK_LOG_FORMAT=json
WORKDIR /var/lib/graphhook
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/receiver"]

# ---- static (default): distroless static, CA certificates, nonroot ----------
FROM gcr.io/distroless/static-debian12:nonroot AS static
COPY --from=build /out/receiver /usr/local/bin/receiver
COPY --from=build --chown=65532:65532 /out/data /var/lib/graphhook
ENV GRAPHHOOK_DATA_DIR=/var/lib/graphhook \
    GRAPHHOOK_LISTEN=:8080 \
    GRAPHHOOK_OPS_LISTEN=:9090 \
    GRAPHHOOK_LOG_FORMAT=json
WORKDIR /var/lib/graphhook
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/receiver"]
