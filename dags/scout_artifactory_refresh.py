"""The scheduled refresh DAG: see ``airflow_provider_scout.dag_factory.refresh_dag``."""

from airflow_provider_scout.dag_factory import refresh_dag

dag = refresh_dag()
