# syntax=docker/dockerfile:1
# The one aliasip image, with several entry points (the `[project.scripts]` of
# pyproject.toml):
#   aliasip-operator   the decider (kopf) -- the default command; the Deployment runs it.
#   aliasip-agent      the node agent; the DaemonSet runs `aliasip-agent run --node NODE`;
#                      its one-shot commands (apply, release, list) work by hand too.
#   aliasip-lab        NOT in the image: the one-machine lab (namespaces, an embedded API
#                      server, fault injection) runs on a developer's host, never in a
#                      cluster, and neither the operator nor the agent imports it. .dockerignore
#                      keeps lab/ out of the build context, and the build deletes the
#                      console script that pyproject.toml declares for it.
# tests/manifests/test_dockerfile.py checks these names against pyproject.toml and the
# manifests. Build from the repository root, with any OCI builder:
#   docker build -t ghcr.io/aliasip/aliasip:0.1.0 .
#   ./dev image     (no Docker Hub: a debootstrap base and buildah; see README.md)
# At the repository root rather than under manifests/, because the build context must be
# the whole project (pip installs it) and `docker build .` then finds the file by default.
#
# The base: Debian 12 (bookworm) with Debian's own python3 (3.11) from apt, rather than
# python:3.11-slim, which adds a CPython of its own build in /usr/local on a Debian base
# (whose release follows Debian's, not ours). Here the interpreter is Debian's package,
# patched by Debian's security updates like every library beside it, and
# the same whether the base comes from a registry (the pinned digest below) or from
# `debootstrap --variant=minbase bookworm` (`./dev image` passes --build-arg BASE=...): the
# two builds differ only in the base's own files, not in what this file installs (with
# python:3.11-slim, a debootstrap base would have to rebuild CPython to match). Size is
# no reason either way: Debian's python3 and libnftables1 are one 47 MB layer over the
# 77 MB base, the virtualenv 54 MB: 178 MB in all (`./dev image` prints each layer).
# The digest is debian:bookworm-slim's multi-platform index as it was pulled by public
# builds; it was not re-resolved here (Docker Hub is out of reach of this project's
# machines): refresh it with `docker buildx imagetools inspect debian:bookworm-slim`.
ARG BASE=debian:bookworm-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251

FROM ${BASE} AS build
# The build stage only: python3-venv (ensurepip, which brings pip into the virtualenv).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/aliasip
WORKDIR /src
# The locked runtime dependencies, each file checked against its sha256 (the lock lists
# every file PyPI has for that version): no resolution at build time, nothing unpinned.
# build-requirements.lock is setuptools, the build backend of [build-system] (also
# hashed), so the project's own wheel is built without downloading anything (no build
# isolation, --no-index). `./dev lock` regenerates both files (pip-compile).
# pip may need the builder's own index settings and CA bundle (a proxy's, say): they are
# mounted for this one step as build secrets, never copied into a layer, and absent
# unless given (`--secret id=pipconf,src=pip.conf --secret id=pipca,src=ca.crt`, the
# conf's `cert` pointing at /run/secrets/pipca; ./dev image does it from /etc/pip.conf).
# Not `-v`: buildah leaves the mount points behind as empty files in every stage's layer.
COPY requirements.lock build-requirements.lock ./
RUN --mount=type=secret,id=pipconf --mount=type=secret,id=pipca \
    PIP_CONFIG_FILE=/run/secrets/pipconf /opt/aliasip/bin/pip install --no-cache-dir \
       --disable-pip-version-check --require-hashes --no-deps \
       -r requirements.lock -r build-requirements.lock
# .dockerignore keeps .git, .venv, caches, tests, bench and lab out of the context.
COPY . .
# pip, setuptools (and so a build toolchain) stay in this stage: uninstalled from the
# virtualenv that the runtime stage copies. The lab's console script goes too (above).
RUN /opt/aliasip/bin/pip install --no-cache-dir --disable-pip-version-check \
       --no-deps --no-build-isolation --no-index . \
    && /opt/aliasip/bin/pip check --disable-pip-version-check \
    && rm /opt/aliasip/bin/aliasip-lab \
    && /opt/aliasip/bin/pip uninstall --yes --disable-pip-version-check setuptools pip \
    && rm -f /opt/aliasip/bin/activate* /opt/aliasip/bin/Activate.ps1 \
    && /opt/aliasip/bin/aliasip-agent --help >/dev/null \
    && /opt/aliasip/bin/aliasip-operator --help >/dev/null

FROM ${BASE}
# Debian's python3 (the interpreter the virtualenv was made with: same path, same
# version). No network tools: the agent talks netlink itself (pyroute2, raw rtnetlink)
# and sends and receives ARP/NDP on AF_PACKET sockets itself (scapy decodes the frames);
# neither needs iproute2, arping, tcpdump or libpcap. One library: libnftables1, which
# the agent's fine dead-man switch calls through ctypes (nodeagent/aliasip_nodeagent/nft.py;
# without it the agent falls back to address lifetimes and says so). No ca-certificates:
# both processes trust only the cluster's CA (the service account's ca.crt).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       python3 libnftables1 \
    && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log
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
