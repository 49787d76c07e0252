#!/usr/bin/env bash
# Install the official docker-scout CLI (the `cli` indexing backend) from its GitHub release,
# verified against the release's checksums file and, when given, a pinned SHA-256.
#
# Environment (all set by the Dockerfile's build arguments):
#   DOCKER_SCOUT_VERSION       release without the leading "v", e.g. 1.23.0; empty = install nothing
#   DOCKER_SCOUT_SHA256        optional pinned SHA-256 of the tarball for the architecture being built
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
checksums="docker-scout_${version}_checksums.txt"
workdir="$(mktemp -d)"
trap 'rm -rf -- "${workdir}"' EXIT

curl -fsSL --retry 3 -o "${workdir}/${tarball}" "${download_url}/v${version}/${tarball}"
curl -fsSL --retry 3 -o "${workdir}/${checksums}" "${download_url}/v${version}/${checksums}"

expected="$(awk -v name="${tarball}" '$2 == name || $2 == "*" name { print $1 }' "${workdir}/${checksums}")"
if [[ -z "${expected}" ]]; then
  echo "docker-scout: ${checksums} has no entry for ${tarball}" >&2
  exit 1
fi
if [[ -n "${DOCKER_SCOUT_SHA256:-}" && "${DOCKER_SCOUT_SHA256,,}" != "${expected,,}" ]]; then
  echo "docker-scout: pinned DOCKER_SCOUT_SHA256 does not match the release checksum of ${tarball}" >&2
  exit 1
fi
actual="$(sha256sum "${workdir}/${tarball}" | cut -d ' ' -f 1)"
if [[ "${actual}" != "${expected,,}" ]]; then
  echo "docker-scout: checksum mismatch for ${tarball}: expected ${expected}, got ${actual}" >&2
  exit 1
fi

tar -xzf "${workdir}/${tarball}" -C "${workdir}" docker-scout
install -d "${install_dir}"
install -m 0755 "${workdir}/docker-scout" "${install_dir}/docker-scout"
echo "docker-scout: installed ${version} (${arch}) to ${install_dir}/docker-scout"
