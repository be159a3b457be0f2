# syntax=docker/dockerfile:1
# lucid-mesh control plane image.
#
#   docker build -t lucid-mesh:0.1.0 .
#   docker run --rm -p 8080:8080 -p 8081:8081 \
#     -v "$PWD/examples/catalog.yaml:/etc/lucid-mesh/catalog.yaml:ro" lucid-mesh:0.1.0
#
# Stage 1 installs every dependency (prepare needs the dev ones: typescript, buf, protoc-gen-es),
# generates gen/ and compiles dist/, then drops the dev dependencies. Stage 2 is distroless:
# node and our files only, no shell, running as uid 65532.

# ============================================================================
# Stage 1: build
# ============================================================================
FROM node:20-bookworm-slim AS build
WORKDIR /app

# Dependencies first, so that this layer is reused until the lockfile changes. Scripts are skipped
# here because `prepare` needs the sources copied below; no dependency needs its install script
# (protobufjs' only checks versions; @bufbuild/buf and esbuild find their platform binaries
# without theirs).
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

# `prepare` generates gen/ (Envoy descriptor, our own protos), compiles dist/ and bundles the web
# console into dist/console/ (served at /ui). Then drop the dev dependencies: gen/ and dist/ are
# outside node_modules and stay.
# `prepare` also downloads a few newer Envoy .proto files from crates.io (one pinned crate, read as
# a tarball: scripts/fetch-envoy-protos.mjs), so this stage needs network access, nothing more.
COPY . .
RUN npm run prepare \
 && test -f dist/cli/main.js \
 && test -f dist/console/app.js \
 && test -f gen/envoy-protos.json \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && mkdir -p /state

# ============================================================================
# Stage 2: runtime (distroless, nonroot)
# ============================================================================
FROM gcr.io/distroless/nodejs20-debian12:nonroot

LABEL org.opencontainers.image.title="lucid-mesh" \
      org.opencontainers.image.description="Envoy xDS control plane (ADS, SotW + delta)" \
      org.opencontainers.image.licenses="Apache-2.0"

WORKDIR /app
# Owned by root and read-only to the nonroot user that runs it.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/gen ./gen
COPY --from=build /app/sidecar-bootstrap ./sidecar-bootstrap
# A default catalog, so that the image starts on its own; mount yours over it (a file, or a
# directory at /etc/lucid-mesh as the Kubernetes manifests do).
COPY --from=build /app/examples/catalog.yaml /etc/lucid-mesh/catalog.yaml
# The CA's state (root, keys, token key: created on first start); mount a volume here to keep
# it across restarts, or give --ca-cert/--ca-key/--token-key (see k8s/README.md).
COPY --from=build --chown=65532:65532 /state /var/lib/lucid-mesh

ENV NODE_ENV=production \
    LUCID_CATALOG=/etc/lucid-mesh/catalog.yaml \
    XDS_PORT=8081 \
    ADMIN_PORT=8080 \
    LUCID_HOST=0.0.0.0 \
    LUCID_DATA_DIR=/var/lib/lucid-mesh \
    LOG_LEVEL=info

# 8080: HTTP admin (/health, /ready, /metrics). 8081: gRPC xDS (ADS).
EXPOSE 8080 8081

# No shell or curl in distroless: node itself probes the liveness endpoint.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/nodejs/bin/node", "-e", "fetch('http://127.0.0.1:'+(process.env.ADMIN_PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Numeric, so that runtimes can verify runAsNonRoot (65532 = nonroot in distroless).
USER 65532:65532

# Extra flags go after the image name (docker run ... lucid-mesh:0.1.0 --log-level debug). For the
# other subcommands: --entrypoint /nodejs/bin/node IMAGE /app/dist/cli/main.js bootstrap ...
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/cli/main.js", "serve"]
CMD []
