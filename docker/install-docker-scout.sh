#!/usr/bin/env bash
# Install the official docker-scout CLI (the `cli` indexing backend) from its GitHub release,
# verified against a SHA-256 pinned in this repository (below) or given by the build.
#
# A checksums file downloaded from the same place as the tarball proves only that the download
# is intact: whoever can replace the tarball can replace it too. So the expected SHA-256 never
# comes from the download: a release without a pinned checksum (and no DOCKER_SCOUT_SHA256)
# is refused before anything is downloaded.
#
# Environment (all set by the Dockerfile's build arguments):
#   DOCKER_SCOUT_VERSION       release without the leading "v", e.g. 1.23.0; empty = install nothing
#   DOCKER_SCOUT_SHA256        SHA-256 of the tarball for the architecture being built: required for
#                              a release not pinned below, and must agree with the pin otherwise
#   DOCKER_SCOUT_DOWNLOAD_URL  release download base (a mirror for air-gapped builds)
#   TARGETARCH                 amd64 | arm64 (BuildKit sets it; falls back to the build host's arch)
#   DOCKER_SCOUT_INSTALL_DIR   where the binary goes
set -euo pipefail

version="${DOCKER_SCOUT_VERSION:-}"
if [[ -z "${version}" ]]; then
  echo "docker-scout: DOCKER_SCOUT_VERSION is empty, not installing (the sbom backend needs only syft)"
  exit 0
fi
version="${version#v}"
download_url="${DOCKER_SCOUT_DOWNLOAD_URL:-https://github.com/docker/scout-cli/releases/download}"
install_dir="${DOCKER_SCOUT_INSTALL_DIR:-/usr/local/bin}"
arch="${TARGETARCH:-$(dpkg --print-architecture)}"
case "${arch}" in
  amd64 | arm64) ;;
  *)
    echo "docker-scout: no Linux release for architecture '${arch}' (amd64 and arm64 exist)" >&2
    exit 1
    ;;
esac

tarball="docker-scout_${version}_linux_${arch}.tar.gz"

# SHA-256 of the release tarballs, per version and architecture. Source: the record of
# docker/scout-cli's release assets in cashapp/hermit-packages, docker-scout.hcl (commit
# f0517fd7532fc6adfd910cfba3ef2b4c59f662db, 2026-08-22); they could not be computed here (no
# access to GitHub's downloads). To pin another release, add its two lines from the release's
# checksums file, checked against a second source.
pinned_sha256() {
  case "$1" in
    docker-scout_1.23.0_linux_amd64.tar.gz) echo b4acfcaa741c8cd32d4313ec92f54253bfa949d9971f702ac7b0c5b3fcffdc88 ;;
    docker-scout_1.23.0_linux_arm64.tar.gz) echo 52512f6f30ecba1e6363f249647b45a58667a2e465c225add219071da0f48863 ;;
  esac
}

pinned="$(pinned_sha256 "${tarball}")"
given="${DOCKER_SCOUT_SHA256:-}"
given="${given,,}"
if [[ -n "${given}" && ! "${given}" =~ ^[0-9a-f]{64}$ ]]; then
  echo "docker-scout: DOCKER_SCOUT_SHA256 must be 64 hexadecimal digits" >&2
  exit 1
fi
if [[ -n "${pinned}" && -n "${given}" && "${given}" != "${pinned}" ]]; then
  echo "docker-scout: DOCKER_SCOUT_SHA256 disagrees with the SHA-256 pinned for ${tarball}" >&2
  exit 1
fi
expected="${pinned:-${given}}"
if [[ -z "${expected}" ]]; then
  echo "docker-scout: no SHA-256 is pinned for ${tarball}; pass the one you verified as" \
    "DOCKER_SCOUT_SHA256 (README \"Supply chain\"), or use a pinned release" >&2
  exit 1
fi

workdir="$(mktemp -d)"
trap 'rm -rf -- "${workdir}"' EXIT
curl -fsSL --retry 3 -o "${workdir}/${tarball}" "${download_url}/v${version}/${tarball}"
actual="$(sha256sum "${workdir}/${tarball}" | cut -d ' ' -f 1)"
if [[ "${actual}" != "${expected}" ]]; then
  echo "docker-scout: checksum mismatch for ${tarball}: expected ${expected}, got ${actual}" >&2
  exit 1
fi

tar -xzf "${workdir}/${tarball}" -C "${workdir}" docker-scout
install -d "${install_dir}"
install -m 0755 "${workdir}/docker-scout" "${install_dir}/docker-scout"
echo "docker-scout: installed ${version} (${arch}) to ${install_dir}/docker-scout"
