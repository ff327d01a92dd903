# chill-server image.
#   docker build -t ghcr.io/chill-dev/chill-server:0.1.0 .
# The tag must match ChillVersion.defaultImage (Sources/Shared/Version.swift): `kubectl chill install`
# deploys that image unless --image says otherwise.

# ---- build ---------------------------------------------------------------------------------------
# Swift 6.1 is the oldest toolchain the package supports (swift-tools-version:6.1); newer works too:
#   docker build --build-arg SWIFT_VERSION=6.2 .
ARG SWIFT_VERSION=6.1
FROM swift:${SWIFT_VERSION}-bookworm AS build

RUN apt-get update \
 && apt-get install -y --no-install-recommends libcurl4-openssl-dev libyaml-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Dependencies first, so source edits don't refetch them (Package.resolved is not in git: resolved here).
COPY Package.swift ./
RUN swift package resolve

# The manifest names every target, test targets included, so the whole tree is needed to build one product.
COPY . .
RUN swift build -c release --product chill-server --static-swift-stdlib \
 && install -D -m 0755 "$(swift build -c release --product chill-server --static-swift-stdlib --show-bin-path)/chill-server" \
      /out/usr/local/bin/chill-server

# ---- run -----------------------------------------------------------------------------------------
FROM debian:bookworm-slim

# The Swift runtime is linked statically; libcurl (the Kubernetes client's transport) and libyaml are not.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcurl4 libyaml-0-2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

COPY --from=build /out/ /

# Matches the Deployment's runAsUser/runAsGroup (runAsNonRoot needs a numeric user).
USER 65532:65532
EXPOSE 8080
ENV PORT=8080
ENTRYPOINT ["/usr/local/bin/chill-server"]
CMD ["--backend", "kubernetes"]
