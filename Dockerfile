# xmlchat in a container: XMPP (5222, 5223 direct TLS) and the native protocol
# (5290, TLS), data in the /var/lib/xmlchat volume. `docker compose up -d`
# builds and runs it; docs/operations.md covers accounts, health, metrics,
# logs and backups.
#
# The base is Debian made locally by container/base.sh (debootstrap + docker
# import, no image registry needed): run it once before the first build.
# Plain Dockerfile syntax: the classic builder and BuildKit both build it.
#
# Configuration is environment-only (XMLCHAT_* variables, docs/configuration.md),
# so every `xmlchat` command in the container (serve, adduser, health, check)
# sees the same settings. To use a TOML file instead, mount it and set
# XMLCHAT_CONFIG=/path/to/xmlchat.toml (the environment still wins over it).

ARG BASE=xmlchat-base:bookworm
FROM ${BASE}
# Optional features installed (pyproject's extras): docker-compose.cluster.yml
# adds "cluster" (the NATS and PostgreSQL drivers).
ARG XMLCHAT_EXTRAS=metrics,chat

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/xmlchat \
    PATH=/opt/xmlchat/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# One id for the user and its group (10001), owner of the data directory only.
RUN groupadd --system --gid 10001 xmlchat \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/xmlchat \
       --no-create-home --shell /usr/sbin/nologin xmlchat \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/xmlchat

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when
# the dependencies change, never for a change of the source. The build backend
# comes here too, so installing the source below downloads nothing.
COPY pyproject.toml /src/pyproject.toml
RUN python3 -m venv /opt/xmlchat \
    && python3 -c 'import os, tomllib; p = tomllib.load(open("/src/pyproject.toml", "rb")); \
extras = p["project"]["optional-dependencies"]; \
chosen = [d for name in os.environ["XMLCHAT_EXTRAS"].split(",") for d in extras[name]]; \
print("\n".join(p["project"]["dependencies"] + chosen + p["build-system"]["requires"]))' \
       > /src/requirements.txt \
    && pip install -r /src/requirements.txt

# The source.
COPY README.md /src/README.md
COPY schemas /src/schemas
COPY xmlchat /src/xmlchat
RUN pip install --no-deps --no-build-isolation /src \
    && rm -rf /src

# Inside the container the listeners bind every interface; Docker's port
# publishing decides what the outside sees. The plaintext native listener stays
# off (and loopback-only if enabled).
ENV XMLCHAT_DATA_DIR=/var/lib/xmlchat \
    XMLCHAT_LISTENERS_NATIVE_ADDRESS=0.0.0.0 \
    XMLCHAT_LISTENERS_XMPP_ADDRESS=0.0.0.0 \
    XMLCHAT_LISTENERS_XMPP_TLS_ADDRESS=0.0.0.0 \
    XMLCHAT_LISTENERS_HTTPS_ADDRESS=0.0.0.0 \
    XMLCHAT_METRICS_ADDRESS=0.0.0.0

VOLUME ["/var/lib/xmlchat"]
WORKDIR /var/lib/xmlchat
# Numeric, so orchestrators can tell it is not root (runAsNonRoot).
USER 10001:10001
# 5222 XMPP (STARTTLS), 5223 XMPP direct TLS (off unless
# XMLCHAT_LISTENERS_XMPP_TLS_ENABLED=true), 5290 native over TLS, 9290 metrics
# (off unless XMLCHAT_METRICS_ENABLED=true), 5443 HTTPS: the web chat page,
# WebSocket and BOSH (the plain HTTP listener stays on the container's loopback).
EXPOSE 5222 5223 5290 5443 9290
# Exit 0 when every enabled listener answers. docker-compose.yml repeats it with
# start_interval (checks every second while starting; Docker Engine 25+).
HEALTHCHECK --interval=10s --timeout=10s --start-period=30s --retries=3 \
    CMD ["xmlchat", "health", "--timeout", "5"]
# SIGTERM (docker stop) closes every stream with system-shutdown, then exits 0.
CMD ["xmlchat", "serve"]
