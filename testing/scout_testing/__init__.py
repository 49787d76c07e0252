"""The test rig of airflow-provider-docker-scout: test doubles and the dev stack, never shipped.

* :mod:`.artifactory_emulator`: a test double of JFrog Artifactory (``artifactory-emulator``);
* :mod:`.fixture_images`: real OCI images with package databases, built without Docker;
* :mod:`.stand_ins`: Docker Scout, Docker Hub and Airflow API stand-ins;
* :mod:`.processes`: free ports, managed subprocesses, a real ``docker-registry``;
* :mod:`.waiting`: :func:`~.waiting.wait_until`, the one polling wait of the rig and the tests;
* :mod:`.relay_process`: the provider's relay run as a process;
* :mod:`.devstack`: registry + emulator + a real Airflow, for the demo and the e2e tests.

Installed by ``./scripts/bootstrap.sh`` (``pip install -e ./testing``); the provider's wheel
holds none of it.
"""
