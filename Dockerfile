# syntax=docker/dockerfile:1
# The one aliasip image, with several entry points (the `[project.scripts]` of
# pyproject.toml):
#   aliasip-operator   the decider (kopf) -- the default command; the Deployment runs it.
#   aliasip-agent      the node agent; the DaemonSet runs `aliasip-agent run --node NODE`;
#                      its one-shot commands (apply, release, list) work by hand too.
#   aliasip-lab        the one-machine lab; shipped because it is part of the same
#                      distribution, not used in a cluster.
# tests/manifests/test_dockerfile.py checks these names against pyproject.toml and the
# manifests. Build from the repository root:
#   docker build -t ghcr.io/aliasip/aliasip:0.1.0 .
# At the repository root rather than under manifests/, because the build context must be
# the whole project (pip installs it) and `docker build .` then finds the file by default.

FROM python:3.11-slim AS build
# A virtualenv that the runtime stage copies whole: no compiler, pip cache or sources
# there. pyroute2 and scapy are pure Python: no build tools are needed either.
RUN python -m venv /opt/aliasip
WORKDIR /src
# .dockerignore keeps .git, .venv, caches, tests and benchmarks out of the context.
COPY . .
RUN /opt/aliasip/bin/pip install --no-cache-dir --disable-pip-version-check . \
    && /opt/aliasip/bin/aliasip-agent --help >/dev/null \
    && /opt/aliasip/bin/aliasip-operator --help >/dev/null

FROM python:3.11-slim
# No network tools: the agent talks netlink itself (pyroute2) and sends and receives
# ARP/NDP on AF_PACKET sockets itself (scapy builds the frames); neither needs iproute2,
# arping, tcpdump or libpcap. One library: libnftables1, which the agent's fine dead-man
# switch calls through ctypes (nodeagent/aliasip_nodeagent/nft.py; without it the agent
# falls back to address lifetimes and says so).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libnftables1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/aliasip /opt/aliasip
ENV PATH=/opt/aliasip/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# The default user is not root (the operator runs as it). Numeric in USER so that
# Kubernetes' runAsNonRoot can verify it. The agent's DaemonSet overrides it with UID 0
# and only NET_ADMIN + NET_RAW (see manifests/agent.yaml for why).
RUN groupadd --system --gid 65532 aliasip \
    && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin aliasip
USER 65532:65532
CMD ["aliasip-operator"]
