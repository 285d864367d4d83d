# The Prometheus of the container test: Debian's prometheus package on the locally made base
# image, since no registry is reachable to pull docker/compose.yaml's upstream image. It takes
# the same command line, paths and user (nobody) as that image, so the compose file's settings,
# and the ownership docs/deploy.md gives the secrets, apply unchanged.
FROM docker.io/library/debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o nobody -g nogroup /prometheus
USER nobody
VOLUME /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
