"""Development stack for the demo and the end-to-end tests: a real Airflow run as subprocesses.

Not part of the shipped provider (the wheel only holds ``airflow_provider_scout``).
"""
