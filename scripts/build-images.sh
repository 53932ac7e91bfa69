#!/usr/bin/env bash
# Builds the CPU image (deploy/docker/Dockerfile) with whichever OCI builder this machine has:
#   - a running Docker daemon: `docker build`, on the pinned node:20.20.2-bookworm-slim base;
#   - otherwise buildah (Debian package `buildah`, runs as root without a daemon, vfs storage,
#     chroot isolation). When the base image cannot be pulled (no registry access), the base is
#     made here instead: a Debian bookworm root file system from Debian's own packages
#     (mmdebstrap, minbase + ca-certificates + libstdc++6), this machine's Node binary and npm
#     (the version must be the one the tests run on), and the unprivileged user 1000 the
#     Kubernetes manifests expect. The Dockerfile is the same either way: its base is a build
#     argument (NODE_IMAGE).
# Then the image is smoke-tested: `mtl --help` and a short training run of examples/synthetic.yaml
# inside it, as user 1000.
#
# Usage: scripts/build-images.sh [TAG]   (default mtl-orchestrator:<package version>)
#        MTL_IMAGE_ARCHIVE=out.tar scripts/build-images.sh   also writes an OCI archive.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
version="$(node -p "require('$root/package.json').version")"
tag="${1:-mtl-orchestrator:$version}"
node_version="$(node -p 'process.versions.node')"
upstream_base="node:20.20.2-bookworm-slim"

say() { printf 'build-images: %s\n' "$*" >&2; }

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  say "docker daemon found: docker build on $upstream_base"
  secret=()
  if [[ -n "${NODE_EXTRA_CA_CERTS:-}" && -s "$NODE_EXTRA_CA_CERTS" ]]; then secret=(--secret "id=npm-ca,src=$NODE_EXTRA_CA_CERTS"); fi
  DOCKER_BUILDKIT=1 docker build "${secret[@]}" -f "$root/deploy/docker/Dockerfile" -t "$tag" "$root"
  docker run --rm "$tag" --help >/dev/null
  say "built $tag (docker); smoke test: --help ok"
  exit 0
fi

if ! command -v buildah >/dev/null; then
  say "no OCI builder: neither a running docker daemon nor buildah (apt-get install -y buildah mmdebstrap)"
  exit 2
fi

export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}" BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
base="$upstream_base"
if ! buildah pull --quiet "docker.io/library/$upstream_base" >/dev/null 2>&1; then
  [[ "$node_version" == "20.20.2" ]] || { say "this machine's Node is $node_version; the image's base needs 20.20.2"; exit 2; }
  command -v mmdebstrap >/dev/null || { say "cannot pull $upstream_base and mmdebstrap is missing (apt-get install -y mmdebstrap)"; exit 2; }
  base="localhost/mtl-node-base:$node_version-bookworm"
  if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
    say "cannot pull $upstream_base: making $base from Debian packages and this machine's Node"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    mmdebstrap --quiet --variant=minbase --include=ca-certificates,libstdc++6 bookworm "$work/rootfs.tar"
    ctr="$(buildah from scratch)"
    mnt="$(buildah mount "$ctr")"
    tar -xf "$work/rootfs.tar" -C "$mnt"
    install -m 0755 "$(command -v node)" "$mnt/usr/local/bin/node"
    mkdir -p "$mnt/usr/local/lib/node_modules"
    cp -a "$(dirname "$(readlink -f "$(command -v npm)")")/.." "$mnt/usr/local/lib/node_modules/npm"
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
    # The upstream image's `node` user: uid and gid 1000, home /home/node.
    echo 'node:x:1000:1000::/home/node:/bin/sh' >>"$mnt/etc/passwd"
    echo 'node:x:1000:' >>"$mnt/etc/group"
    mkdir -p "$mnt/home/node" && chown 1000:1000 "$mnt/home/node"
    buildah umount "$ctr" >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd node "$ctr"
    buildah commit --quiet --rm "$ctr" "$base" >/dev/null
  fi
fi

say "buildah bud on $base"
secret=()
# The registry's CA where npm here trusts an extra one (a TLS-inspecting proxy): a build secret.
if [[ -n "${NODE_EXTRA_CA_CERTS:-}" && -s "$NODE_EXTRA_CA_CERTS" ]]; then secret=(--secret "id=npm-ca,src=$NODE_EXTRA_CA_CERTS"); fi
buildah bud --quiet --layers=false "${secret[@]}" --build-arg "NODE_IMAGE=$base" -f "$root/deploy/docker/Dockerfile" -t "$tag" "$root" >/dev/null

# Smoke test: the CLI starts, and a short run trains and writes its weights, as user 1000.
ctr="$(buildah from --quiet "$tag")"
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah run --user 1000:1000 "$ctr" -- node /app/dist/cli/main.js --help >/dev/null
buildah run --user 1000:1000 "$ctr" -- sh -c 'cd /tmp && sed -e "s/^  steps: .*/  steps: 20/" -e "s/^  evalEvery: .*/  evalEvery: 10/" /app/examples/synthetic.yaml >job.yaml && node /app/dist/cli/main.js run job.yaml --out /tmp/run --quiet && test -s /tmp/run/model/model.json && grep -q "\"status\": *\"succeeded\"" /tmp/run/summary.json'
say "built $tag (buildah); smoke test: --help and a 20-step run of examples/synthetic.yaml ok"
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$tag" >&2
if [[ -n "${MTL_IMAGE_ARCHIVE:-}" ]]; then
  buildah push --quiet "$tag" "oci-archive:$MTL_IMAGE_ARCHIVE:$tag"
  say "wrote $MTL_IMAGE_ARCHIVE"
fi
