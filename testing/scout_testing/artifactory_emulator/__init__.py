"""Artifactory emulator: a TEST DOUBLE of JFrog Artifactory for tests, benchmarks and the demo.

Not a product and not in the provider's wheel: it speaks the REST subset and the Docker
Registry v2 access methods the provider relies on, stores content in a real
``docker-registry`` and adds controls for tests (fault injection, request counts, webhook
targets, tag seeding).

* :mod:`.app`: the HTTP application, routing each request to its API area;
* API areas: :mod:`.rest` (REST), :mod:`.aql_search` (AQL, over the :mod:`.aql` subset),
  :mod:`.registry_front` (Registry API v2), :mod:`.webhooks`, :mod:`.admin` (test controls);
* behind them: :mod:`.auth`, :mod:`.seeding`, :mod:`.backing_registry`, :mod:`.responses`;
* state: :mod:`.state` (config and what the areas share), :mod:`.repositories`,
  :mod:`.tag_index`, :mod:`.controls` (faults, request counts);
* :mod:`.cli`: the ``artifactory-emulator`` command; :mod:`.harness`: start/stop the
  emulator from Python. Fixture images: :mod:`scout_testing.fixture_images`.
"""
