# Latchkey's container image: a release build, then a small Debian runtime that runs it as a user of
# its own with its data on a volume. Build: docker build -t latchkey .   (docs/deploy.md)
#
# The build stage needs what the SAML service provider links (samael: libxmlsec1 through bindgen).
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev libxmlsec1-dev libxml2-dev libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p latchkey && strip target/release/latchkey

# The runtime stage: the shared libraries the binary links (ldd), CA roots for SMTP and the IdPs,
# curl for the health check.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libxmlsec1 libxmlsec1-openssl libxml2 libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/latchkey --create-home --shell /usr/sbin/nologin latchkey
COPY --from=build /src/target/release/latchkey /usr/local/bin/latchkey
USER 10001:10001
# Listen on every interface inside the container; set LATCHKEY_PUBLIC_URL to the address people use.
ENV LATCHKEY_LISTEN=0.0.0.0:8080 \
    LATCHKEY_DATA_DIR=/var/lib/latchkey \
    LATCHKEY_LOG_FORMAT=json
VOLUME ["/var/lib/latchkey"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD ["curl", "-fsS", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]
