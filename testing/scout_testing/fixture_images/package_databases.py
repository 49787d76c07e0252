"""The package databases inside the fixture images, and what each one holds.

Real formats that syft catalogs: a dpkg ``status`` file with ``copyright`` files, an apk
``installed`` db, Python ``dist-info`` directories with ``RECORD`` hashes and npm
``package.json`` / ``package-lock.json`` files. Each function returns the files of one
layer (path inside the image -> bytes); :mod:`.catalogue` assembles them into images.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
class DebPackage:
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


LIBC6 = DebPackage(
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
ZLIB1G = DebPackage(
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
BASH = DebPackage(
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
CA_CERTIFICATES = DebPackage(
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
class ApkPackage:
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


APK_PACKAGES = (
    ApkPackage(
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
    ApkPackage(
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
    ApkPackage(
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
    ApkPackage(
        name="ca-certificates-bundle",
        version="20240705-r0",
        origin="ca-certificates",  # built from another source package: Scout lists it as the parent
        license="MPL-2.0 AND MIT",  # a licence expression: Scout keeps its ids, split
        description="Pre generated bundle of Mozilla certificates",
        url="https://www.mozilla.org/en-US/about/governance/policies/security-group/certs/",
        size=126532,
        installed_size=233472,
        files=("etc/ssl/certs/ca-certificates.crt",),
    ),
    ApkPackage(
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
class PythonDistribution:
    name: str
    version: str
    summary: str
    license: str
    top_level: str
    requires: tuple[str, ...] = ()


REQUESTS = PythonDistribution(
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
URLLIB3 = PythonDistribution(
    name="urllib3",
    version="2.0.7",
    summary="HTTP library with thread-safe connection pooling, file post, and more.",
    license="MIT",
    top_level="urllib3",
)
CERTIFI = PythonDistribution(
    name="certifi",
    version="2023.7.22",
    summary="Python package for providing Mozilla's CA Bundle.",
    license="MPL-2.0",
    top_level="certifi",
)
SIX = PythonDistribution(
    name="six",
    version="1.16.0",
    summary="Python 2 and 3 compatibility utilities",
    license="MIT",
    top_level="six",
)

NPM_PACKAGES: tuple[dict[str, Any], ...] = (
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
NPM_APP = {
    "name": "frontend-site",
    "version": "1.0.0",
    "private": True,
    "description": "Fixture web front end",
    "license": "UNLICENSED",
    "dependencies": {"express": "4.18.2", "lodash": "4.17.21"},
}


# ---------------------------------------------------------------------- image content per kind

Files = dict[str, bytes]  # path inside the image (no leading slash) -> content


def debian_base_layer(architecture: str, packages: Sequence[DebPackage]) -> Files:
    status = "\n".join(package.status_entry(architecture) for package in packages)
    files: Files = {
        "etc/os-release": _DEBIAN_OS_RELEASE.encode(),
        "var/lib/dpkg/status": status.encode(),
    }
    for package in packages:
        files[f"usr/share/doc/{package.name}/copyright"] = package.copyright().encode()
    return files


def dist_info_files(site_packages: str, distribution: PythonDistribution) -> Files:
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
    files: Files = {
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


def alpine_base_layer(architecture: str) -> Files:
    installed = "\n".join(
        package.installed_entry(architecture).replace("{arch}", architecture) for package in APK_PACKAGES
    )
    return {
        "etc/os-release": _ALPINE_OS_RELEASE.encode(),
        "etc/alpine-release": b"3.20.3\n",
        "lib/apk/db/installed": (installed + "\n").encode(),
    }


def npm_app_layer() -> Files:
    files: Files = {"app/package.json": json_bytes(NPM_APP)}
    lock_packages: dict[str, Any] = {"": {k: NPM_APP[k] for k in ("name", "version", "dependencies")}}
    for package in NPM_PACKAGES:
        files[f"app/node_modules/{package['name']}/package.json"] = json_bytes(package)
        lock_packages[f"node_modules/{package['name']}"] = {
            "version": package["version"],
            "resolved": f"https://registry.npmjs.org/{package['name']}/-/{package['name']}-{package['version']}.tgz",
            "license": package["license"],
        }
    lock = {
        "name": NPM_APP["name"],
        "version": NPM_APP["version"],
        "lockfileVersion": 3,
        "packages": lock_packages,
    }
    files["app/package-lock.json"] = json_bytes(lock)
    return files


def json_bytes(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True).encode()
