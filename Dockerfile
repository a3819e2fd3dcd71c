# otk-mock in a container. Build and run:
#   docker build -t otk-mock .
#   docker run --rm -p 8080:8080 otk-mock
# The catalogue is compiled into the binary; mount your own with
#   -v ./scenarios:/scenarios:ro -e OTK_MOCK_SCENARIOS=/scenarios
# Checked on machines without a Docker engine by ../shared/tools/container-check (README,
# "Container image").

# The Rust version is pinned: rust-version in Cargo.toml is what the locked dependencies need,
# and tests/toolchain.rs keeps the two in step. A newer toolchain builds it as well.
FROM rust:1.88-bookworm AS build
WORKDIR /src

# Dependencies first, in a layer of their own: it is rebuilt only when Cargo.toml or
# Cargo.lock change, not on every source change (~200 crates, most of the build's time).
# The stand-in sources only need to make cargo resolve the manifest's targets.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches/examples \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && echo 'fn main() {}' > build.rs \
 && for f in benches/render.rs benches/store.rs benches/examples/stalled.rs; do echo 'fn main() {}' > "$f"; done \
 && cargo build --release --locked --bin otk-mock \
 && rm -rf src benches build.rs

COPY build.rs ./
COPY src src
COPY benches benches
COPY scenarios scenarios
COPY templates templates
# touch: the copied sources keep their own (older) times, which cargo would take for the
# stand-ins' build, already done.
RUN touch build.rs src/main.rs src/lib.rs \
 && cargo build --release --locked --bin otk-mock \
 && ./target/release/otk-mock validate

FROM debian:bookworm-slim
LABEL org.opencontainers.image.title="otk-mock" \
      org.opencontainers.image.description="A mock provider and contract-test server for Signzy's One Touch KYC (OTK) API" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
# A numeric user and group, so that Kubernetes' runAsNonRoot can verify them; /data is the
# working directory, writable, where `record` writes by default.
RUN groupadd --system --gid 10001 otk \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home otk \
 && mkdir /data && chown 10001:10001 /data
COPY --from=build /src/target/release/otk-mock /usr/local/bin/otk-mock
USER 10001:10001
WORKDIR /data
ENV OTK_MOCK_BIND=0.0.0.0:8080
EXPOSE 8080
# `otk-mock health` asks /__admin/health on OTK_MOCK_BIND (or OTK_MOCK_ADMIN_BIND): no curl needed.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["otk-mock", "health"]
ENTRYPOINT ["otk-mock"]
CMD ["serve"]
