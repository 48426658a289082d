# syntax=docker/dockerfile:1
# Marque Auth as a container image: built in a Rust image, run from a slim Debian as an
# unprivileged user, health-checked by `marque healthcheck` (no curl in the image).
#
#   docker build -t marque .
#   docker run -e SECRET_KEY=… -e DATABASE_URL_MARQUE_KG=… -e DATABASE_URL_MARQUE_US=… -p 8000:8000 marque
#
# CI lints this file (.ci/hadolint.sh) but builds no image: its machine has no container runtime.

# The toolchain of rust-toolchain.toml, on the Debian release of the runtime stage (same glibc
# and libssl).
FROM rust:1.95.0-slim-bookworm AS build
# libssl-dev and pkg-config for the bundled libpq (pq-src links the system OpenSSL). Debian
# versions are not pinned: the release (bookworm) pins the ABI, and security updates should land.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends pkg-config libssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The registry and target directories are BuildKit caches, so a rebuild after a source change
# does not download or compile the dependencies again; the binary is copied out of the cache.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin marque \
    && install -m 0755 target/release/marque /usr/local/bin/marque

FROM debian:bookworm-slim AS runtime
# libssl3 for libpq's TLS to PostgreSQL; ca-certificates for sslmode=verify-full.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 marque \
    && useradd --system --uid 10001 --gid marque --home-dir /var/lib/marque --create-home \
        --shell /usr/sbin/nologin marque
COPY --from=build /usr/local/bin/marque /usr/local/bin/marque
# Numeric, so that orchestrators can check `runAsNonRoot` without reading /etc/passwd.
USER 10001:10001
# The default SQLite files (`sqlite://data/…`, for trying the image out) land in the user's home.
WORKDIR /var/lib/marque
ENV HOST=0.0.0.0 \
    PORT=8000 \
    LOG_FORMAT=json
EXPOSE 8000
# `/health/ready` answers within 1 s (503 while a market database is down).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["marque", "healthcheck"]
ENTRYPOINT ["marque"]
CMD ["serve"]
