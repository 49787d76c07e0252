"""Fixture container images for the test double: real OCI images built without a Docker daemon.

Every image is written as an OCI image layout (``oci-layout``, ``index.json``,
``blobs/sha256``) from plain ``tarfile`` + ``gzip`` + ``json``, byte-reproducibly
(fixed mtimes, owners, entry order and gzip header), and holds real package
databases that syft catalogs: a dpkg ``status`` file, an apk ``installed`` db,
Python ``dist-info`` directories and npm ``package.json`` files. What syft is
expected to find is recorded next to each image (:class:`ExpectedPackage`) so
tests assert against these definitions instead of hard-coding results.

Images are pushed through the Docker Registry HTTP API v2 with ``requests``
(:func:`push_oci_layout`), which is how tests seed the Artifactory emulator.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import shutil
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

__all__ = [
    "KINDS",
    "BuiltLayout",
    "ExpectedPackage",
    "FixturePushError",
    "FixtureSpec",
    "PushedImage",
    "build_layout",
    "expected_packages",
    "fixture_platforms",
    "push_oci_layout",
    "seed_fixtures",
    "standard_fixtures",
]

MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_TYPE_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_INDEX_MEDIA_TYPES = (MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_LIST)

# Fixed times keep the layouts byte-reproducible.
_CREATED = "2024-06-01T00:00:00Z"
_FILE_MTIME = 1717200000  # 2024-06-01T00:00:00Z
_VARIANT_FILE = "etc/fixture-variant"
_REQUEST_TIMEOUT = 30.0


# --------------------------------------------------------------------------- fixture definitions


@dataclass(frozen=True)
class ExpectedPackage:
    """A package syft finds in a fixture image (verified with ``syft oci-dir:<layout> -o json``)."""

    name: str
    version: str
    type: str  # Scout SBOM artifact type, which is also the purl type: deb, apk, pypi, npm
    syft_type: str  # syft's own artifact type: deb, apk, python, npm
    purl_prefix: str  # the purl up to (not including) its qualifiers, exactly as syft writes it
    layer: int  # ordinal of the layer holding the package record (index into rootfs.diff_ids)
    path: str  # the package database or metadata file syft reads it from (one of its locations)
    licenses: tuple[str, ...] = ()  # license values syft reports, sorted


@dataclass(frozen=True)
class FixtureSpec:
    """One fixture image in one repository, pushed under every tag in ``tags``."""

    repository: str  # Artifactory repository key, e.g. "docker-local"
    image: str  # image name inside the repository, may be nested: "team/frontend-app"
    tags: tuple[str, ...]
    kind: str  # one of KINDS
    expected_packages: tuple[ExpectedPackage, ...]  # per platform (every platform holds the same set)
    platforms: tuple[str, ...]  # "os/architecture[/variant]", one per platform manifest

    @property
    def repository_path(self) -> str:
        return f"{self.repository}/{self.image}"


@dataclass(frozen=True)
class BuiltLayout:
    """An OCI image layout written by :func:`build_layout`."""

    directory: Path
    digest: str  # what a tag points at: the image manifest, or the image index of a multi-arch image
    media_type: str
    platform_digests: dict[str, str]  # platform -> image manifest digest


@dataclass(frozen=True)
class PushedImage:
    """One tag of a fixture image as pushed to a registry."""

    repository: str
    image: str
    tag: str
    digest: str
    platforms: tuple[str, ...]
    kind: str
    platform_digests: dict[str, str]


class FixturePushError(RuntimeError):
    """The registry refused part of a push; the message names the request, never a credential."""


_DEBIAN_OS_RELEASE = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""

_ALPINE_OS_RELEASE = """\
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.20.3
PRETTY_NAME="Alpine Linux v3.20"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
"""


@dataclass(frozen=True)
class _DebPackage:
    name: str
    version: str
    source: str | None  # the Source field when it differs from the name ("glibc", "bash (5.2.15-2)")
    section: str
    installed_size: int
    maintainer: str
    depends: str | None
    description: str
    licenses: tuple[str, ...]
    copyright_holder: str
    multi_arch_same: bool = False
    essential: bool = False

    def status_entry(self, architecture: str) -> str:
        lines = [f"Package: {self.name}"]
        if self.essential:
            lines.append("Essential: yes")
        lines += [
            "Status: install ok installed",
            "Priority: required",
            f"Section: {self.section}",
            f"Installed-Size: {self.installed_size}",
            f"Maintainer: {self.maintainer}",
            f"Architecture: {architecture}",
        ]
        if self.multi_arch_same:
            lines.append("Multi-Arch: same")
        if self.source:
            lines.append(f"Source: {self.source}")
        lines.append(f"Version: {self.version}")
        if self.depends:
            lines.append(f"Depends: {self.depends}")
        lines.append(f"Description: {self.description}")
        return "\n".join(lines) + "\n"

    def copyright(self) -> str:
        # Machine-readable debian/copyright: syft reads its "License:" lines.
        paragraphs = [
            "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
            f"Upstream-Name: {self.name}\n",
            f"Files: *\nCopyright: {self.copyright_holder}\nLicense: {self.licenses[0]}\n",
        ]
        paragraphs += [f"License: {extra}\n See /usr/share/common-licenses\n" for extra in self.licenses[1:]]
        return "\n".join(paragraphs)


_LIBC6 = _DebPackage(
    name="libc6",
    version="2.36-9+deb12u7",
    source="glibc",
    section="libs",
    installed_size=12986,
    maintainer="GNU Libc Maintainers <debian-glibc@lists.debian.org>",
    depends="libgcc-s1",
    description="GNU C Library: Shared libraries",
    licenses=("LGPL-2.1", "GPL-2"),
    copyright_holder="1991-2023 Free Software Foundation, Inc.",
    multi_arch_same=True,
)
_ZLIB1G = _DebPackage(
    name="zlib1g",
    version="1:1.2.13.dfsg-1",
    source="zlib",
    section="libs",
    installed_size=168,
    maintainer="Mark Brown <broonie@debian.org>",
    depends="libc6 (>= 2.14)",
    description="compression library - runtime",
    licenses=("Zlib",),
    copyright_holder="1995-2022 Jean-loup Gailly and Mark Adler",
    multi_arch_same=True,
)
_BASH = _DebPackage(
    name="bash",
    version="5.2.15-2+b7",
    source="bash (5.2.15-2)",  # a binNMU: the source version differs from the binary's
    section="shells",
    installed_size=7164,
    maintainer="Matthias Klose <doko@debian.org>",
    depends="base-files (>= 2.1.12), debianutils (>= 5.6-0.1)",
    description="GNU Bourne Again SHell",
    licenses=("GPL-3",),
    copyright_holder="1987-2022 Free Software Foundation, Inc.",
    essential=True,
)
_CA_CERTIFICATES = _DebPackage(
    name="ca-certificates",
    version="20230311",
    source=None,
    section="misc",
    installed_size=382,
    maintainer="Julien Cristau <jcristau@debian.org>",
    depends="openssl (>= 1.1.1)",
    description="Common CA certificates",
    licenses=("MPL-2.0",),
    copyright_holder="2003 Fumitoshi UKAI",
)


@dataclass(frozen=True)
class _ApkPackage:
    name: str
    version: str
    origin: str
    license: str
    description: str
    url: str
    size: int
    installed_size: int
    files: tuple[str, ...]  # "dir/file", written as F:/R: lines

    def installed_entry(self, architecture: str) -> str:
        lines = [
            f"C:Q1{base64.b64encode(hashlib.sha1(self.name.encode()).digest()).decode()}",
            f"P:{self.name}",
            f"V:{self.version}",
            f"A:{architecture}",
            f"S:{self.size}",
            f"I:{self.installed_size}",
            f"T:{self.description}",
            f"U:{self.url}",
            f"L:{self.license}",
            f"o:{self.origin}",
            "m:Natanael Copa <ncopa@alpinelinux.org>",
            "t:1717000000",
            "c:0000000000000000000000000000000000000000",
        ]
        directory = None
        for file in self.files:
            file_dir, name = file.rsplit("/", 1)
            if file_dir != directory:
                lines.append(f"F:{file_dir}")
                directory = file_dir
            lines.append(f"R:{name}")
        return "\n".join(lines) + "\n"


_APK_PACKAGES = (
    _ApkPackage(
        name="musl",
        version="1.2.5-r0",
        origin="musl",
        license="MIT",
        description="the musl c library (libc) implementation",
        url="https://musl.libc.org/",
        size=411323,
        installed_size=643072,
        files=("lib/ld-musl-{arch}.so.1", "lib/libc.musl-{arch}.so.1"),
    ),
    _ApkPackage(
        name="busybox",
        version="1.36.1-r29",
        origin="busybox",
        license="GPL-2.0-only",
        description="Size optimized toolbox of many common UNIX utilities",
        url="https://busybox.net/",
        size=519241,
        installed_size=955392,
        files=("bin/busybox",),
    ),
    _ApkPackage(
        name="ssl_client",
        version="1.36.1-r29",
        origin="busybox",  # a subpackage: syft records the origin as the purl's upstream
        license="GPL-2.0-only",
        description="EXternal ssl_client for busybox wget",
        url="https://busybox.net/",
        size=4975,
        installed_size=14336,
        files=("usr/bin/ssl_client",),
    ),
    _ApkPackage(
        name="zlib",
        version="1.3.1-r1",
        origin="zlib",
        license="Zlib",
        description="A compression/decompression Library",
        url="https://zlib.net/",
        size=53720,
        installed_size=102400,
        files=("lib/libz.so.1", "lib/libz.so.1.3.1"),
    ),
)


@dataclass(frozen=True)
class _PythonDistribution:
    name: str
    version: str
    summary: str
    license: str
    top_level: str
    requires: tuple[str, ...] = ()


_REQUESTS = _PythonDistribution(
    name="requests",
    version="2.31.0",
    summary="Python HTTP for Humans.",
    license="Apache 2.0",
    top_level="requests",
    requires=(
        "charset-normalizer (<4,>=2)",
        "idna (<4,>=2.5)",
        "urllib3 (<3,>=1.21.1)",
        "certifi (>=2017.4.17)",
    ),
)
_URLLIB3 = _PythonDistribution(
    name="urllib3",
    version="2.0.7",
    summary="HTTP library with thread-safe connection pooling, file post, and more.",
    license="MIT",
    top_level="urllib3",
)
_CERTIFI = _PythonDistribution(
    name="certifi",
    version="2023.7.22",
    summary="Python package for providing Mozilla's CA Bundle.",
    license="MPL-2.0",
    top_level="certifi",
)
_SIX = _PythonDistribution(
    name="six",
    version="1.16.0",
    summary="Python 2 and 3 compatibility utilities",
    license="MIT",
    top_level="six",
)

_NPM_PACKAGES: tuple[dict[str, Any], ...] = (
    {
        "name": "lodash",
        "version": "4.17.21",
        "description": "Lodash modular utilities.",
        "keywords": ["modules", "stdlib", "util"],
        "homepage": "https://lodash.com/",
        "repository": "lodash/lodash",
        "main": "lodash.js",
        "license": "MIT",
        "author": "John-David Dalton <john.david.dalton@gmail.com>",
    },
    {
        "name": "express",
        "version": "4.18.2",
        "description": "Fast, unopinionated, minimalist web framework",
        "author": "TJ Holowaychuk <tj@vision-media.ca>",
        "license": "MIT",
        "repository": "expressjs/express",
        "homepage": "http://expressjs.com/",
        "dependencies": {"accepts": "~1.3.8", "body-parser": "1.20.1", "debug": "2.6.9"},
    },
    {
        "name": "debug",
        "version": "2.6.9",
        "description": "small debugging utility",
        "repository": {"type": "git", "url": "git://github.com/visionmedia/debug.git"},
        "author": "TJ Holowaychuk <tj@vision-media.ca>",
        "license": "MIT",
        "main": "./src/index.js",
    },
)
_NPM_APP = {
    "name": "frontend-site",
    "version": "1.0.0",
    "private": True,
    "description": "Fixture web front end",
    "license": "UNLICENSED",
    "dependencies": {"express": "4.18.2", "lodash": "4.17.21"},
}


# ---------------------------------------------------------------------- image content per kind

_Files = dict[str, bytes]  # path inside the image (no leading slash) -> content


def _debian_base_layer(architecture: str, packages: Sequence[_DebPackage]) -> _Files:
    status = "\n".join(package.status_entry(architecture) for package in packages)
    files: _Files = {
        "etc/os-release": _DEBIAN_OS_RELEASE.encode(),
        "var/lib/dpkg/status": status.encode(),
    }
    for package in packages:
        files[f"usr/share/doc/{package.name}/copyright"] = package.copyright().encode()
    return files


def _dist_info_files(site_packages: str, distribution: _PythonDistribution) -> _Files:
    dist_info = f"{site_packages}/{distribution.name}-{distribution.version}.dist-info"
    metadata_lines = [
        "Metadata-Version: 2.1",
        f"Name: {distribution.name}",
        f"Version: {distribution.version}",
        f"Summary: {distribution.summary}",
        f"License: {distribution.license}",
        "Requires-Python: >=3.7",
        *(f"Requires-Dist: {requirement}" for requirement in distribution.requires),
    ]
    module = f'__version__ = "{distribution.version}"\n'.encode()
    files: _Files = {
        f"{site_packages}/{distribution.top_level}/__init__.py": module,
        f"{dist_info}/METADATA": ("\n".join(metadata_lines) + "\n\n").encode(),
        f"{dist_info}/top_level.txt": f"{distribution.top_level}\n".encode(),
        f"{dist_info}/WHEEL": _WHEEL,
    }
    record_lines = [
        f"{path.removeprefix(site_packages + '/')},sha256={_record_hash(content)},{len(content)}"
        for path, content in sorted(files.items())
    ]
    record_lines.append(f"{distribution.name}-{distribution.version}.dist-info/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record_lines) + "\n").encode()
    return files


_WHEEL = b"Wheel-Version: 1.0\nGenerator: bdist_wheel (0.41.2)\nRoot-Is-Purelib: true\nTag: py3-none-any\n\n"


def _record_hash(content: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=").decode()


def _alpine_base_layer(architecture: str) -> _Files:
    installed = "\n".join(
        package.installed_entry(architecture).replace("{arch}", architecture) for package in _APK_PACKAGES
    )
    return {
        "etc/os-release": _ALPINE_OS_RELEASE.encode(),
        "etc/alpine-release": b"3.20.3\n",
        "lib/apk/db/installed": (installed + "\n").encode(),
    }


def _npm_app_layer() -> _Files:
    files: _Files = {"app/package.json": _json_bytes(_NPM_APP)}
    lock_packages: dict[str, Any] = {"": {k: _NPM_APP[k] for k in ("name", "version", "dependencies")}}
    for package in _NPM_PACKAGES:
        files[f"app/node_modules/{package['name']}/package.json"] = _json_bytes(package)
        lock_packages[f"node_modules/{package['name']}"] = {
            "version": package["version"],
            "resolved": f"https://registry.npmjs.org/{package['name']}/-/{package['name']}-{package['version']}.tgz",
            "license": package["license"],
        }
    lock = {
        "name": _NPM_APP["name"],
        "version": _NPM_APP["version"],
        "lockfileVersion": 3,
        "packages": lock_packages,
    }
    files["app/package-lock.json"] = _json_bytes(lock)
    return files


_DEBIAN_ARCH = {"amd64": "amd64", "arm64": "arm64"}
_APK_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}
_SYSTEM_SITE_PACKAGES = "usr/lib/python3/dist-packages"
_LOCAL_SITE_PACKAGES = "usr/local/lib/python3.11/site-packages"


@dataclass(frozen=True)
class _Layer:
    files: _Files
    created_by: str


def _debian_layers(architecture: str) -> list[_Layer]:
    return [
        _Layer(
            _debian_base_layer(_DEBIAN_ARCH[architecture], (_LIBC6, _ZLIB1G, _BASH)), "ADD rootfs.tar.gz /"
        ),
        _Layer(_dist_info_files(_SYSTEM_SITE_PACKAGES, _SIX), "RUN apt-get install -y python3-six"),
    ]


def _python_layers(architecture: str) -> list[_Layer]:
    site_packages: _Files = {}
    for distribution in (_REQUESTS, _URLLIB3, _CERTIFI):
        site_packages.update(_dist_info_files(_LOCAL_SITE_PACKAGES, distribution))
    return [
        _Layer(
            _debian_base_layer(_DEBIAN_ARCH[architecture], (_LIBC6, _ZLIB1G, _BASH)), "ADD rootfs.tar.gz /"
        ),
        _Layer(site_packages, "RUN pip install requests==2.31.0"),
    ]


def _alpine_layers(architecture: str) -> list[_Layer]:
    return [_Layer(_alpine_base_layer(_APK_ARCH[architecture]), "ADD alpine-minirootfs.tar.gz /")]


def _npm_layers(architecture: str) -> list[_Layer]:
    return [
        _Layer(_alpine_base_layer(_APK_ARCH[architecture]), "ADD alpine-minirootfs.tar.gz /"),
        _Layer(_npm_app_layer(), "COPY app /app"),
    ]


def _multiarch_layers(architecture: str) -> list[_Layer]:
    return [
        _Layer(
            _debian_base_layer(_DEBIAN_ARCH[architecture], (_LIBC6, _ZLIB1G, _CA_CERTIFICATES)),
            "ADD rootfs.tar.gz /",
        )
    ]


_LAYERS_BY_KIND = {
    "debian": _debian_layers,
    "python": _python_layers,
    "alpine": _alpine_layers,
    "npm": _npm_layers,
    "multiarch": _multiarch_layers,
}
# An image whose only layer is advertised as tar+gzip but is plain text: the registry stores it (its digest
# is right), any client that unpacks layers fails on it.
_CORRUPT_LAYER_TEXT = b"this layer is deliberately not a gzip-compressed tar archive\n"


def _deb_expected(package: _DebPackage, layer: int) -> ExpectedPackage:
    return ExpectedPackage(
        name=package.name,
        version=package.version,
        type="deb",
        syft_type="deb",
        purl_prefix=f"pkg:deb/debian/{package.name}@{_purl_version(package.version)}",
        layer=layer,
        path="/var/lib/dpkg/status",
        licenses=tuple(sorted(package.licenses)),
    )


def _apk_expected(package: _ApkPackage) -> ExpectedPackage:
    return ExpectedPackage(
        name=package.name,
        version=package.version,
        type="apk",
        syft_type="apk",
        purl_prefix=f"pkg:apk/alpine/{package.name}@{package.version}",
        layer=0,
        path="/lib/apk/db/installed",
        licenses=(package.license,),
    )


def _pypi_expected(distribution: _PythonDistribution, site_packages: str, layer: int) -> ExpectedPackage:
    return ExpectedPackage(
        name=distribution.name,
        version=distribution.version,
        type="pypi",
        syft_type="python",
        purl_prefix=f"pkg:pypi/{distribution.name}@{distribution.version}",
        layer=layer,
        path=f"/{site_packages}/{distribution.name}-{distribution.version}.dist-info/METADATA",
        licenses=(distribution.license,),
    )


def _npm_expected(package: Mapping[str, Any], path: str) -> ExpectedPackage:
    return ExpectedPackage(
        name=package["name"],
        version=package["version"],
        type="npm",
        syft_type="npm",
        purl_prefix=f"pkg:npm/{package['name']}@{package['version']}",
        layer=1,
        path=path,
        licenses=(package["license"],),
    )


def _purl_version(version: str) -> str:
    # syft escapes purl versions like a URL path segment: "+" becomes %2B, an epoch's ":" stays.
    return version.replace("+", "%2B")


_EXPECTED_BY_KIND: dict[str, tuple[ExpectedPackage, ...]] = {
    "debian": (
        *(_deb_expected(p, 0) for p in (_LIBC6, _ZLIB1G, _BASH)),
        _pypi_expected(_SIX, _SYSTEM_SITE_PACKAGES, 1),
    ),
    "python": (
        *(_deb_expected(p, 0) for p in (_LIBC6, _ZLIB1G, _BASH)),
        *(_pypi_expected(d, _LOCAL_SITE_PACKAGES, 1) for d in (_REQUESTS, _URLLIB3, _CERTIFI)),
    ),
    "alpine": tuple(_apk_expected(p) for p in _APK_PACKAGES),
    "npm": (
        *(_apk_expected(p) for p in _APK_PACKAGES),
        _npm_expected(_NPM_APP, "/app/package.json"),
        *(_npm_expected(p, f"/app/node_modules/{p['name']}/package.json") for p in _NPM_PACKAGES),
    ),
    "multiarch": tuple(_deb_expected(p, 0) for p in (_LIBC6, _ZLIB1G, _CA_CERTIFICATES)),
    "corrupt": (),
}
_PLATFORMS_BY_KIND: dict[str, tuple[str, ...]] = {
    "multiarch": ("linux/amd64", "linux/arm64/v8"),
}
KINDS: tuple[str, ...] = tuple(_EXPECTED_BY_KIND)


def expected_packages(kind: str) -> tuple[ExpectedPackage, ...]:
    """What syft finds in every platform of an image of ``kind``."""
    return _EXPECTED_BY_KIND[_check_kind(kind)]


def fixture_platforms(kind: str) -> tuple[str, ...]:
    return _PLATFORMS_BY_KIND.get(_check_kind(kind), ("linux/amd64",))


def _check_kind(kind: str) -> str:
    if kind not in _EXPECTED_BY_KIND:
        raise ValueError(
            f"unknown fixture image kind {kind!r}; expected one of {', '.join(_EXPECTED_BY_KIND)}"
        )
    return kind


def _check_platform(platform: str) -> None:
    os_name, _, architecture = platform.partition("/")
    architecture = architecture.split("/")[0]
    if os_name != "linux" or architecture not in _DEBIAN_ARCH:
        raise ValueError(
            f"fixture images are built for linux/amd64 and linux/arm64[/variant], not platform {platform!r}"
        )


def _spec(repository: str, image: str, kind: str, *tags: str) -> FixtureSpec:
    return FixtureSpec(
        repository=repository,
        image=image,
        tags=tags,
        kind=kind,
        expected_packages=expected_packages(kind),
        platforms=fixture_platforms(kind),
    )


def standard_fixtures() -> list[FixtureSpec]:
    """The images the shared harness pushes into docker-local, docker-prod and docker-dev."""
    return [
        _spec("docker-local", "team/frontend-app", "debian", "1.0", "1.0.1", "latest"),
        _spec("docker-local", "team/backend-api", "python", "2.3.0"),
        _spec("docker-local", "dta/legacy-app", "alpine", "0.9"),
        _spec("docker-prod", "web/frontend-site", "npm", "1.0.0"),
        _spec("docker-prod", "platform/multiarch-base", "multiarch", "12", "latest"),
        _spec("docker-dev", "broken/corrupt-image", "corrupt", "bad"),
    ]


# ---------------------------------------------------------------------------------- OCI layout


def build_layout(
    spec_or_kind: FixtureSpec | str, directory: str | Path, *, variant_seed: str = ""
) -> BuiltLayout:
    """Write the OCI image layout of a fixture image into ``directory`` (created if missing).

    A spec's ``platforms`` are built (one platform: a plain image manifest; several: an
    image index); a bare kind gets :func:`fixture_platforms`.

    The same inputs always give the same bytes and digests. A non-empty ``variant_seed``
    adds a file holding it to the last layer, so many distinct digests with the same
    packages are cheap to make.
    """
    if isinstance(spec_or_kind, FixtureSpec):
        kind, platforms = _check_kind(spec_or_kind.kind), spec_or_kind.platforms
    else:
        kind = _check_kind(spec_or_kind)
        platforms = fixture_platforms(kind)
    for platform in platforms:
        _check_platform(platform)
    writer = _LayoutWriter(Path(directory))
    platform_digests: dict[str, str] = {}
    platform_descriptors: list[dict[str, Any]] = []
    for platform in platforms:
        descriptor = _write_image(writer, kind, platform, variant_seed)
        platform_digests[platform] = descriptor["digest"]
        platform_descriptors.append(descriptor)
    if len(platform_descriptors) == 1:
        top = platform_descriptors[0]
        del top["platform"]
    else:
        index = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": platform_descriptors}
        top = writer.blob(_json_bytes(index), MEDIA_TYPE_OCI_INDEX)
    writer.finish(top)
    return BuiltLayout(writer.directory, top["digest"], top["mediaType"], platform_digests)


def _write_image(writer: _LayoutWriter, kind: str, platform: str, variant_seed: str) -> dict[str, Any]:
    os_name, architecture, *variant = platform.split("/")
    if kind == "corrupt":
        corrupt = _CORRUPT_LAYER_TEXT + variant_seed.encode()
        layer_blobs = [(corrupt, _sha256(corrupt), "ADD broken.tar.gz /")]
    else:
        layers = _LAYERS_BY_KIND[kind](architecture)
        if variant_seed:
            last = layers[-1]
            layers[-1] = _Layer({**last.files, _VARIANT_FILE: f"{variant_seed}\n".encode()}, last.created_by)
        layer_blobs = [(*_layer_blob(layer.files), layer.created_by) for layer in layers]

    layer_descriptors = [writer.blob(blob, MEDIA_TYPE_OCI_LAYER_GZIP) for blob, _, _ in layer_blobs]
    config: dict[str, Any] = {
        "created": _CREATED,
        "architecture": architecture,
        "os": os_name,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": {"org.opencontainers.image.title": f"scout fixture ({kind})"},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id for _, diff_id, _ in layer_blobs]},
        "history": [{"created": _CREATED, "created_by": created_by} for _, _, created_by in layer_blobs],
    }
    if variant:
        config["variant"] = variant[0]
    config_descriptor = writer.blob(_json_bytes(config), MEDIA_TYPE_OCI_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_OCI_MANIFEST,
        "config": config_descriptor,
        "layers": layer_descriptors,
    }
    descriptor = writer.blob(_json_bytes(manifest), MEDIA_TYPE_OCI_MANIFEST)
    descriptor["platform"] = {"architecture": architecture, "os": os_name}
    if variant:
        descriptor["platform"]["variant"] = variant[0]
    return descriptor


class _LayoutWriter:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._blobs = directory / "blobs" / "sha256"
        self._blobs.mkdir(parents=True, exist_ok=True)

    def blob(self, content: bytes, media_type: str) -> dict[str, Any]:
        digest = _sha256(content)
        (self._blobs / digest.removeprefix("sha256:")).write_bytes(content)
        return {"mediaType": media_type, "digest": digest, "size": len(content)}

    def finish(self, top: dict[str, Any]) -> None:
        (self.directory / "oci-layout").write_bytes(_json_bytes({"imageLayoutVersion": "1.0.0"}))
        index = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": [top]}
        (self.directory / "index.json").write_bytes(_json_bytes(index))


def _layer_blob(files: Mapping[str, bytes]) -> tuple[bytes, str]:
    """A reproducible gzip-compressed tar of ``files`` and its diff_id (digest of the plain tar)."""
    directories = sorted({parent for path in files for parent in _parents(path)})
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory in directories:
            tar.addfile(_tar_info(directory, tarfile.DIRTYPE, 0o755, 0))
        for path in sorted(files):
            content = files[path]
            tar.addfile(_tar_info(path, tarfile.REGTYPE, 0o644, len(content)), io.BytesIO(content))
    tar_bytes = plain.getvalue()
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0) as gz:
        gz.write(tar_bytes)
    return compressed.getvalue(), _sha256(tar_bytes)


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _tar_info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = _FILE_MTIME
    info.uname = info.gname = "root"
    return info


def _sha256(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def _json_bytes(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True).encode()


# ------------------------------------------------------------------------ registry v2 push


def push_oci_layout(
    layout_dir: str | Path,
    base_url: str,
    repository_path: str,
    tags: Sequence[str],
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
) -> str:
    """Push the single image (manifest or index) of an OCI layout under every tag; return its digest.

    ``base_url`` is the registry root (``http://127.0.0.1:PORT``), ``repository_path`` the
    full name under it (``docker-local/team/app``, Artifactory's repository path method).
    With ``username``/``password`` requests carry basic auth from the start; a ``token``
    goes as a Bearer token; a ``401`` Bearer challenge is answered with a token fetched
    from its realm using the basic credentials.
    """
    if not tags:
        raise ValueError("push_oci_layout needs at least one tag")
    layout = Path(layout_dir)
    top = _single_layout_entry(layout)
    client = _RegistryClient(base_url, repository_path, username, password, token)
    try:
        if top["mediaType"] in _INDEX_MEDIA_TYPES:
            index = json.loads(_read_blob(layout, top["digest"]))
            for child in index["manifests"]:
                _push_image(client, layout, child, reference=child["digest"])
            manifest_bytes = _read_blob(layout, top["digest"])
        else:
            manifest_bytes = _push_image_blobs(client, layout, top)
        for tag in tags:
            client.put_manifest(tag, manifest_bytes, top["mediaType"], top["digest"])
    finally:
        client.close()
    return str(top["digest"])


def _single_layout_entry(layout: Path) -> dict[str, Any]:
    try:
        index = json.loads((layout / "index.json").read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{layout} is not an OCI image layout: cannot read index.json ({error})") from error
    manifests = index.get("manifests") or []
    if len(manifests) != 1:
        raise ValueError(
            f"{layout}/index.json lists {len(manifests)} images; push_oci_layout pushes exactly one"
        )
    entry: dict[str, Any] = manifests[0]
    return entry


def _push_image(client: _RegistryClient, layout: Path, descriptor: Mapping[str, Any], reference: str) -> None:
    manifest_bytes = _push_image_blobs(client, layout, descriptor)
    client.put_manifest(reference, manifest_bytes, descriptor["mediaType"], descriptor["digest"])


def _push_image_blobs(client: _RegistryClient, layout: Path, descriptor: Mapping[str, Any]) -> bytes:
    """Upload the config and layers of one image manifest; return the manifest's bytes."""
    manifest_bytes = _read_blob(layout, descriptor["digest"])
    manifest = json.loads(manifest_bytes)
    for blob in (manifest["config"], *manifest["layers"]):
        client.upload_blob(blob["digest"], _blob_path(layout, blob["digest"]))
    return manifest_bytes


def _read_blob(layout: Path, digest: str) -> bytes:
    return _blob_path(layout, digest).read_bytes()


def _blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, hex_digest = digest.partition(":")
    return layout / "blobs" / algorithm / hex_digest


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class _RegistryClient:
    """Just enough of the Docker Registry v2 API to push, with basic, bearer and token-service auth."""

    def __init__(
        self,
        base_url: str,
        repository_path: str,
        username: str | None,
        password: str | None,
        token: str | None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._name = repository_path.strip("/")
        self._basic = (username, password or "") if username else None
        self._bearer = token
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy or ~/.netrc from the environment for a local registry

    def close(self) -> None:
        self._session.close()

    def upload_blob(self, digest: str, content: Path) -> None:
        blob_url = f"{self._base}/v2/{self._name}/blobs/{digest}"
        if self._request("HEAD", blob_url).status_code == 200:
            return
        started = self._request("POST", f"{self._base}/v2/{self._name}/blobs/uploads/")
        self._expect(started, "POST", f"/v2/{self._name}/blobs/uploads/", 202)
        location = urljoin(self._base + "/", started.headers["Location"])
        separator = "&" if "?" in location else "?"
        finished = self._request(
            "PUT",
            f"{location}{separator}digest={digest}",
            data=content.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
        )
        self._expect(finished, "PUT", f"/v2/{self._name}/blobs/uploads/ ({digest})", 201)

    def put_manifest(self, reference: str, content: bytes, media_type: str, digest: str) -> None:
        path = f"/v2/{self._name}/manifests/{reference}"
        response = self._request("PUT", self._base + path, data=content, headers={"Content-Type": media_type})
        self._expect(response, "PUT", path, 201)
        stored = response.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            raise FixturePushError(f"PUT {path}: registry stored digest {stored}, expected {digest}")

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        response = self._send(method, url, **kwargs)
        if response.status_code == 401 and self._answer_challenge(
            response.headers.get("WWW-Authenticate", "")
        ):
            response = self._send(method, url, **kwargs)
        return response

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        auth = None
        if self._bearer:
            headers["Authorization"] = f"Bearer {self._bearer}"
        elif self._basic:
            auth = self._basic
        return self._session.request(
            method, url, headers=headers, auth=auth, timeout=_REQUEST_TIMEOUT, allow_redirects=False, **kwargs
        )

    def _answer_challenge(self, challenge: str) -> bool:
        """Fetch a token for a Bearer challenge; False when there is nothing new to try."""
        scheme, _, params_text = challenge.partition(" ")
        if scheme.lower() != "bearer" or self._basic is None:
            return False
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        realm = params.pop("realm", None)
        if not realm:
            return False
        response = self._session.get(realm, params=params, auth=self._basic, timeout=_REQUEST_TIMEOUT)
        self._expect(response, "GET", f"token realm {realm}", 200)
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token or token == self._bearer:
            return False
        self._bearer = token
        return True

    @staticmethod
    def _expect(response: requests.Response, method: str, what: str, status: int) -> None:
        if response.status_code != status:
            raise FixturePushError(
                f"{method} {what} answered {response.status_code}, expected {status}: {response.text[:300]}"
            )


# --------------------------------------------------------------------------------- seeding


def seed_fixtures(
    base_url: str,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    specs: Sequence[FixtureSpec] | None = None,
) -> list[PushedImage]:
    """Build every fixture (default: :func:`standard_fixtures`) and push it under each of its tags."""
    pushed: list[PushedImage] = []
    workspace = Path(tempfile.mkdtemp(prefix="scout-fixture-images-"))
    try:
        for number, spec in enumerate(specs if specs is not None else standard_fixtures()):
            built = build_layout(spec, workspace / str(number))
            digest = push_oci_layout(
                built.directory, base_url, spec.repository_path, spec.tags, username, password, token
            )
            pushed += [
                PushedImage(
                    repository=spec.repository,
                    image=spec.image,
                    tag=tag,
                    digest=digest,
                    platforms=spec.platforms,
                    kind=spec.kind,
                    platform_digests=dict(built.platform_digests),
                )
                for tag in spec.tags
            ]
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    return pushed
