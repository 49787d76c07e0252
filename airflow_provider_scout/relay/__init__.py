"""The webhook relay: Artifactory docker push events in, webhook DAG runs out.

``airflow-scout relay`` runs it from the command line. From Python, build a
:class:`~airflow_provider_scout.relay.settings.RelaySettings` and pass it to
:func:`airflow_provider_scout.relay.app.build_app` (an ASGI app) or
:func:`airflow_provider_scout.relay.server.serve` (uvicorn until SIGTERM). This package
module imports nothing so that ``airflow-scout --help`` stays fast.
"""
