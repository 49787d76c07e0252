"""Artifactory emulator: a TEST DOUBLE of JFrog Artifactory for tests, benchmarks and the demo.

It is shipped in the package so ``airflow-scout emulator`` works anywhere, but it is not
a product: it speaks the REST subset and the Docker Registry v2 access methods the
provider relies on, stores content in a real ``docker-registry`` and adds controls for
tests (fault injection, request counts, webhook targets, tag seeding).

* :mod:`.app`: the HTTP application; :mod:`.aql`: the AQL subset; :mod:`.state`: tag index,
  faults, counters; :mod:`.cli`: ``airflow-scout emulator``; :mod:`.harness`: start/stop
  the registry and the emulator from Python; :mod:`.images`: fixture images.
"""
