# xmlchat in a container: XMPP (5222, 5223 direct TLS) and the native protocol
# (5290, TLS), data in the /var/lib/xmlchat volume. `docker compose up -d` builds and runs
# it; docs/operations.md covers accounts, health, metrics, logs and backups.
#
# Configuration is environment-only (XMLCHAT_* variables, docs/configuration.md),
# so every `xmlchat` command in the container (serve, adduser, health, check)
# sees the same settings. To use a TOML file instead, mount it and set
# XMLCHAT_CONFIG=/path/to/xmlchat.toml (the environment still wins over it).
#
# Needs BuildKit (RUN --mount), the default builder of Docker 23+ and `docker compose`.

# ---- build: wheels for xmlchat and its dependencies (no compiler needed:
# lxml and cryptography ship manylinux wheels)
FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[metrics]"

# ---- run
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Versions are pinned by the wheels just built.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels "xmlchat[metrics]"
RUN useradd --system --user-group --uid 10001 --home-dir /var/lib/xmlchat --no-create-home xmlchat \
    && mkdir -p /var/lib/xmlchat \
    && chown xmlchat:xmlchat /var/lib/xmlchat

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
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 \
    CMD ["xmlchat", "health", "--timeout", "5"]
# SIGTERM (docker stop) closes every stream with system-shutdown, then exits 0.
CMD ["xmlchat", "serve"]
