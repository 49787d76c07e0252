"""Development stack for the demo and the end-to-end tests: a real Airflow run as subprocesses.

Part of the test rig: the provider's wheel only holds ``airflow_provider_scout``.
"""
