# The image of the container test's own services (the test upstream and the test checksum
# database): the locally made base image plus python3. Their code is bind-mounted from tests/.
FROM docker.io/library/debian:bookworm-slim
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/*
