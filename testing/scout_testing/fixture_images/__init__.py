"""Fixture container images for the test double: real OCI images built without a Docker daemon.

Every image is written as an OCI image layout (:mod:`.oci_layout`), byte-reproducibly, and
holds real package databases that syft catalogs (:mod:`.package_databases`). What syft is
expected to find is recorded next to each kind of image (:mod:`.catalogue`) so tests
assert against these definitions instead of hard-coding results.

Images are pushed through the Docker Registry HTTP API v2 (:mod:`.registry_push`), which is
how tests seed the Artifactory emulator.
"""

from scout_testing.fixture_images.catalogue import (
    KINDS,
    ExpectedPackage,
    FixtureSpec,
    expected_packages,
    fixture_platforms,
    standard_fixtures,
)
from scout_testing.fixture_images.oci_layout import BuiltLayout, build_layout
from scout_testing.fixture_images.registry_push import (
    FixturePushError,
    PushedImage,
    push_oci_layout,
    seed_fixtures,
)

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
