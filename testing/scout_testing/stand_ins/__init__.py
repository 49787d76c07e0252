"""Stand-ins for the services no machine here reaches: Docker Scout, Docker Hub and Airflow's API.

* :mod:`.scout_server`: Docker Hub's token exchange and Scout's GraphQL API;
* ``docker-scout``: an executable standing in for the ``docker-scout`` CLI
  (:data:`DOCKER_SCOUT_STAND_IN`), which records how it was called;
* :mod:`.airflow_api`: the two Airflow 3 API routes the relay calls.
"""

from pathlib import Path

DOCKER_SCOUT_STAND_IN = Path(__file__).resolve().parent / "docker-scout"
