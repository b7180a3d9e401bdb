# matrix-drill: the `drill` command in a container — demo, coordinator, worker, run, submit, settle.
#
#   docker build -t matrix-drill .
#   docker run --rm matrix-drill                       # the demo: sample job on an embedded grid
#   docker run -d -v drill-coord:/data -p 9360:9360 matrix-drill coordinator
#   (its HTTP API stays inside the container unless it listens on --http 0.0.0.0:9361, with
#   --api-tokens FILE or --http-insecure, and you publish it: -p 127.0.0.1:9361:9361)
#   docker compose up -d                               # a coordinator and three workers (compose.yaml)
#
# Build arguments:
#   BASE                      base image; default debian:bookworm-slim. Without access to a
#                             registry, scripts/docker-base-image.sh makes one from Debian's packages.
#   ONNXRUNTIME_NODE_INSTALL  cuda12: also fetch ONNX Runtime's CUDA 12 binaries (GPU workers:
#                             docker run --gpus all … worker --device cuda). Default: CPU only.
#   NODE_VERSION, NPM_VERSION the Node and npm that run `npm ci` in the build stage only.
#   EXTRA_CA_CERTS            PEM CA certificate(s) of a TLS-intercepting proxy, for the downloads.
#
# Works with the classic builder and BuildKit alike (no RUN --mount).
ARG BASE=debian:bookworm-slim

# ---- build: npm ci --omit=dev --------------------------------------------------------------
FROM ${BASE} AS build
# The project pins its Node 22 as the `node` npm package, which `npm ci` installs into
# node_modules: that is the Node the image runs. npm itself needs a Node to start, so this stage
# takes the same official Node binary from the npm registry (node-linux-<arch>) and npm's own
# tarball: the build needs only the npm registry and Debian's packages (no Docker Hub node image,
# no nodesource). This stage is thrown away.
ARG NODE_VERSION=22.23.3
ARG NPM_VERSION=11.19.1
# Behind a TLS-intercepting proxy (corporate networks, CI sandboxes) pass its CA certificate(s),
# PEM: --build-arg EXTRA_CA_CERTS="$(cat proxy-ca.crt)". Only this stage downloads anything.
ARG EXTRA_CA_CERTS=
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && if [ -n "$EXTRA_CA_CERTS" ]; then printf '%s\n' "$EXTRA_CA_CERTS" > /usr/local/share/ca-certificates/extra.crt && update-ca-certificates; fi
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    NPM_CONFIG_UPDATE_NOTIFIER=false
RUN set -eu; \
    case "$(dpkg --print-architecture)" in amd64) arch=x64 ;; arm64) arch=arm64 ;; *) echo "unsupported architecture $(dpkg --print-architecture)"; exit 1 ;; esac; \
    mkdir -p /opt/node /opt/npm; \
    curl -fsSL "https://registry.npmjs.org/node-linux-$arch/-/node-linux-$arch-$NODE_VERSION.tgz" | tar -xz -C /opt/node --strip-components=1; \
    curl -fsSL "https://registry.npmjs.org/npm/-/npm-$NPM_VERSION.tgz" | tar -xz -C /opt/npm --strip-components=1; \
    ln -s /opt/node/bin/node /usr/local/bin/node; \
    ln -s /opt/npm/bin/npm-cli.js /usr/local/bin/npm; \
    node --version; npm --version

WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/onnxruntime-cuda.js scripts/bundle-libp2p.js scripts/
ARG ONNXRUNTIME_NODE_INSTALL=skip
# package.json's allowScripts keeps onnxruntime-node's own CUDA download from running (npm >= 11.16);
# the project's postinstall fetches the CUDA binaries only when ONNXRUNTIME_NODE_INSTALL asks.
# Then drop what the image never uses: the node-linux-* copy the `node` package installed next to
# its binary (a second 120 MB), ONNX Runtime's binaries for other platforms (~250 MB), npm's cache.
RUN set -eu; \
    ONNXRUNTIME_NODE_INSTALL="$ONNXRUNTIME_NODE_INSTALL" npm ci --omit=dev --no-audit --no-fund; \
    node_modules/.bin/node --version; \
    rm -rf node_modules/node/node_modules/node-linux-*; \
    ort=node_modules/onnxruntime-node/bin/napi-v6; \
    keep="$(node_modules/.bin/node -p 'process.platform + "/" + process.arch')"; \
    for d in "$ort"/*/*; do [ "$d" = "$ort/$keep" ] || rm -rf "$d"; done; \
    npm cache clean --force 2>/dev/null; rm -rf /root/.npm
COPY bin bin/
COPY src src/
COPY workloads workloads/
COPY scenarios scenarios/
COPY docker/healthcheck.js docker/

# ---- runtime ------------------------------------------------------------------------------
FROM ${BASE}
# A fixed non-root user; /data (its home, DRILL_HOME) holds identities, job stores and outputs,
# /grid the address file a coordinator shares with its workers (compose.yaml).
RUN groupadd --system --gid 10001 drill \
 && useradd --system --uid 10001 --gid drill --home-dir /data --shell /usr/sbin/nologin drill \
 && mkdir -p /data /grid && chown drill:drill /data /grid
COPY --from=build /app /app
# `drill` on PATH; its `#!/usr/bin/env node` finds the pinned Node in node_modules/.bin first.
RUN ln -s /app/bin/drill.js /usr/local/bin/drill
# ORT_DISABLE_TELEMETRY: ONNX Runtime 1.30 on Linux starts a telemetry client that would upload over
# HTTPS (and warns at every start that the image has no CA bundle for it); a worker image sends
# nothing it was not asked to.
ENV PATH=/app/node_modules/.bin:$PATH \
    DRILL_HOME=/data \
    ORT_DISABLE_TELEMETRY=1
USER drill
WORKDIR /data
VOLUME ["/data"]
# 9360: libp2p (workers join the coordinator here). 9361: the coordinator's HTTP API.
EXPOSE 9360 9361
# A coordinator is healthy while its HTTP API answers /healthz (on the port its --http names);
# other commands (worker, demo) have no HTTP side and count as healthy while they run.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "/app/docker/healthcheck.js"]
ENTRYPOINT ["drill"]
CMD ["demo"]
