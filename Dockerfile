# ragmill in a container: the one binary and the default model.
#   docker build -t ragmill .
#   docker run -p 8080:8080 -v ragmill-data:/data ragmill serve --bind 0.0.0.0:8080
# One machine with compose: deploy/docker-compose.one-machine.yml; the same image runs
# `ragmill worker` (see docker-compose.yml and the README's "Scaling out"). Backups, upgrades
# and TLS: docs/operations.md.
FROM rust:1-bookworm AS build
RUN apt-get update -qq && apt-get install -y -qq python3-pip >/dev/null && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ragmill \
 && scripts/fetch-model.sh /opt/ragmill/models/all-MiniLM-L6-v2

FROM debian:bookworm-slim
# sqlite3: for consistent backups of the live database (`sqlite3 /data/ragmill.db ".backup ..."`).
RUN apt-get update -qq && apt-get install -y -qq ca-certificates sqlite3 >/dev/null && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /data ragmill && mkdir -p /data && chown ragmill /data
COPY --from=build /src/target/release/ragmill /usr/local/bin/ragmill
COPY --from=build /opt/ragmill/models /opt/ragmill/models
ENV RAGMILL_DATA_DIR=/data RAGMILL_MODEL_DIR=/opt/ragmill/models/all-MiniLM-L6-v2
USER ragmill
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["ragmill"]
CMD ["serve", "--bind", "0.0.0.0:8080"]
