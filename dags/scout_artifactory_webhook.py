"""The DAG the webhook relay triggers: see ``airflow_provider_scout.dag_factory.webhook_dag``."""

from airflow_provider_scout.dag_factory import webhook_dag

dag = webhook_dag()
