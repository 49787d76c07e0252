"""Artifactory emulator: a TEST DOUBLE of JFrog Artifactory for tests, benchmarks and the demo.

Not a product and not in the provider's wheel: it speaks the REST subset and the Docker
Registry v2 access methods the provider relies on, stores content in a real
``docker-registry`` and adds controls for tests (fault injection, request counts, webhook
targets, tag seeding).

* :mod:`.app`: the HTTP application; :mod:`.aql`: the AQL subset; :mod:`.state`: tag index,
  faults, counters; :mod:`.cli`: the ``artifactory-emulator`` command; :mod:`.harness`:
  start/stop the emulator from Python. Fixture images: :mod:`scout_testing.fixture_images`.
"""
