# The image every production service of docker-compose.yaml runs: the official Airflow 3 image
# extended with this provider, syft (the `sbom` indexing backend) and, optionally, the
# docker-scout CLI (the `cli` backend). Extending the official image is the documented way to
# add packages: https://airflow.apache.org/docs/docker-stack/build.html
#
# Stages: `product` holds the provider only, and is what a plain `docker build .` gives (the
# last stage is a bare copy of it); `dev` adds the test rig (testing/: the Artifactory emulator
# and its fixture images), for the compose `demo` profile only.
#
# The base image is pulled by digest, never by its tag alone (a tag can be moved to other
# content). scripts/pin-base-image.sh reads the tag's current digest with skopeo and writes
# it to .env, which compose passes as this build argument (`docker build` takes
# --build-arg AIRFLOW_BASE_DIGEST=sha256:...). A build without it stops at this FROM with
# "AIRFLOW_BASE_DIGEST: unset,run-scripts/pin-base-image.sh" (one word: FROM splits on spaces).
ARG AIRFLOW_BASE_DIGEST
FROM apache/airflow:3.3.2-python3.11@${AIRFLOW_BASE_DIGEST:?unset,run-scripts/pin-base-image.sh} AS product

# docker-scout release to install for the `cli` backend, e.g. --build-arg DOCKER_SCOUT_VERSION=1.23.0.
# Empty (the default) installs nothing: the `sbom` backend needs only syft.
ARG DOCKER_SCOUT_VERSION=""
# SHA-256 of the release tarball for the architecture being built: required for a release the
# installer does not pin (docker/install-docker-scout.sh), and must agree with a pin otherwise.
# The release's own checksums file is not used: it comes from the same place as the tarball.
ARG DOCKER_SCOUT_SHA256=""
# A mirror of https://github.com/docker/scout-cli/releases/download for builds without GitHub.
ARG DOCKER_SCOUT_DOWNLOAD_URL="https://github.com/docker/scout-cli/releases/download"
# Set by BuildKit to the platform being built (amd64, arm64).
ARG TARGETARCH

USER root
COPY docker/install-docker-scout.sh /usr/local/libexec/install-docker-scout.sh
# Build arguments reach RUN as environment variables, which is how the script reads them.
# The relay's event store lives on a named volume; Docker gives a new volume the ownership of
# its mount point, and group 0 write access lets any AIRFLOW_UID (always group 0) use it.
RUN /usr/local/libexec/install-docker-scout.sh \
    && install -d -o airflow -g 0 -m 2775 /opt/airflow/relay-state

# airflow-init creates the relay's role, the users and the connections from .env with this.
COPY --chown=airflow:root docker/write_init_files.py /opt/airflow/docker/write_init_files.py

# pip runs as the airflow user, who owns the image's Python environment (~/.local), pins
# apache-airflow to the image's version so nothing upgrades it, and takes every version from
# the project's constraints (constraints-3.11.txt: the set the tests ran with, Celery included).
# Every service gets syft and the Celery worker: one image serves both executors. The FAB
# auth manager (`fab`) holds compose's users and the relay's role.
USER airflow
# Every pip install that may download is `--require-hashes` from a lock in docker/: the
# versions of the constraints with each file's SHA-256, so a file PyPI or a mirror serves
# differently is refused. First the distributions (requirements-image.txt), then the build
# backend (requirements-build.txt); the provider itself is built from the copied source with
# `--no-index --no-build-isolation --no-deps`: pip may fetch nothing for it, not even setuptools.
COPY --chown=airflow:root pyproject.toml README.md constraints-3.11.txt docker/requirements-image.txt docker/requirements-build.txt /opt/airflow/provider-src/
COPY --chown=airflow:root airflow_provider_scout /opt/airflow/provider-src/airflow_provider_scout
RUN pip install --no-cache-dir --require-hashes --no-deps \
        --requirement /opt/airflow/provider-src/requirements-image.txt \
    && pip install --no-cache-dir --require-hashes --no-deps \
        --requirement /opt/airflow/provider-src/requirements-build.txt \
    && pip install --no-cache-dir --no-index --no-build-isolation --no-deps \
        --constraint /opt/airflow/provider-src/constraints-3.11.txt \
        "apache-airflow==${AIRFLOW_VERSION}" \
        "/opt/airflow/provider-src[sbom,celery,s3,fab]" \
    && syft version \
    && airflow-scout --help >/dev/null \
    && python -c "import airflow.providers.celery.executors.celery_executor"

# The test rig on top of the product: the `artifactory-emulator` command of the demo profile.
# What it needs beyond the product comes hashed from docker/requirements-dev.txt; the rig is
# then built from its source as the provider is, fetching nothing.
FROM product AS dev
COPY --chown=airflow:root docker/requirements-dev.txt /opt/airflow/provider-src/
COPY --chown=airflow:root testing /opt/airflow/testing-src
RUN pip install --no-cache-dir --require-hashes --no-deps \
        --requirement /opt/airflow/provider-src/requirements-dev.txt \
    && pip install --no-cache-dir --no-index --no-build-isolation --no-deps \
        --constraint /opt/airflow/provider-src/constraints-3.11.txt \
        "apache-airflow==${AIRFLOW_VERSION}" \
        /opt/airflow/testing-src \
    && artifactory-emulator --help >/dev/null

# Built when no --target is given: the production image, without the test rig.
FROM product
