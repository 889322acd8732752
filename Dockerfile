# syntax=docker/dockerfile:1.7
# wenu-stream: one image for both consumer applications (alarms, processing).
#
#   docker build -t wenu-stream .
#   docker run wenu-stream alarms              # KCL MultiLangDaemon + one exporter (default engine)
#   docker run -e WENU_APP=processing wenu-stream
#   docker run wenu-stream processing --native # the in-process asyncio driver
#
# Every RUN step is a mode of tools/build-image.sh, which `make test` also runs without Docker
# (tests/deploy/test_build_image.py), so the steps here are tested even where no Docker engine runs.
# The base image is pinned by digest (the tag moves with every Debian and CPython patch release): a build is
# repeatable and a changed base is a reviewed commit. Refresh with tools/pin-images.sh (needs registry access).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

# 1. Python dependencies: a virtualenv with wenu-stream and its kcl extra (amazon-kclpy, whose package carries
#    the MultiLangDaemon jars), every version pinned by constraints.txt.
FROM ${PYTHON_IMAGE} AS python
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY src/ src/
COPY tools/build-image.sh tools/build-image.sh
RUN bash tools/build-image.sh venv /opt/venv

# 2. The /app tree: consumers, properties, the entrypoint and its files, the jars (from amazon-kclpy).
FROM ${PYTHON_IMAGE} AS layout
WORKDIR /src
COPY consumers/ consumers/
COPY properties/ properties/
COPY deploy/ecs/ deploy/ecs/
COPY tools/build-image.sh tools/build-image.sh
COPY --from=python /opt/venv/lib/python3.11/site-packages/amazon_kclpy/jars /src/kclpy-jars
RUN bash tools/build-image.sh layout /out/app /src/kclpy-jars

# 3. Runtime: slim Python + a headless JRE, non-root, read-only friendly (writes only under /tmp).
FROM ${PYTHON_IMAGE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 wenu \
 && useradd --system --uid 10001 --gid wenu --home-dir /app --no-create-home --shell /usr/sbin/nologin wenu
COPY --from=python /opt/venv /opt/venv
COPY --from=layout /out/app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    APP_ROOT=/app \
    WENU_METRICS_PORT=9100 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/wenu-metrics
WORKDIR /app
USER 10001:10001
EXPOSE 9100
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["/app/deploy/ecs/healthcheck.sh"]
ENTRYPOINT ["/app/deploy/ecs/entrypoint.sh"]
CMD ["processing"]
