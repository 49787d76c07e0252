"""The full ingestion DAG: see ``airflow_provider_scout.dag_factory.full_ingest_dag``."""

from airflow_provider_scout.dag_factory import full_ingest_dag

dag = full_ingest_dag()
