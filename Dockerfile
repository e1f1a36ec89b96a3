# The hotline binary on Debian (the same base as the machines it is built and tested on).
# Build: docker build -t hotline .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p hotline

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/hotline --create-home hotline
COPY --from=build /src/target/release/hotline /usr/local/bin/hotline
COPY config /etc/hotline
COPY prompts /usr/share/hotline/prompts
USER hotline
WORKDIR /var/lib/hotline
# SIP (UDP and TCP), the console, and RTP.
EXPOSE 5060/udp 5060/tcp 8080/tcp 10000-10999/udp
ENTRYPOINT ["hotline", "--config", "/etc/hotline/hotline.toml", "--prompts", "/usr/share/hotline/prompts"]
CMD ["serve"]
