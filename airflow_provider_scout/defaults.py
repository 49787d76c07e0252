"""Names and defaults that several parts of the provider must agree on (no Airflow import).

The relay, the provider info, the hooks, the operators and the DAG files import these
instead of spelling them again, so a renamed variable or id cannot drift apart.
"""

from __future__ import annotations

# Environment variables. The DOCKER_SCOUT_* names are those of `docker scout watch` and the
# docker-scout CLI, so a user moving over keeps the environment they have.
REGISTRY_ENV = "SCOUT_ARTIFACTORY_REGISTRY"  # also the Airflow Variable the DAGs read
INDEX_WORKERS_ENV = "SCOUT_INDEX_WORKERS"  # slots of the indexing pool where it is created
INDEX_WORKERS_PER_RUN_ENV = "SCOUT_INDEX_WORKERS_PER_RUN"  # optional cap of one run, at parse time
WORKER_NAME_ENV = "SCOUT_WORKER_NAME"  # the task-instance hostname of a worker (see hostname.py)
REFRESH_SCHEDULE_ENV = "SCOUT_REFRESH_SCHEDULE"
REFRESH_CATCHUP_ENV = "SCOUT_REFRESH_CATCHUP"
REFRESH_START_DATE_ENV = "SCOUT_REFRESH_START_DATE"
REFRESH_LOOKBACK_ENV = "SCOUT_REFRESH_LOOKBACK"
SBOM_DIR_ENV = "SCOUT_SBOM_DIR"
# Where a run's plan is stored for its mapped tasks, and for how long (plan_store.py).
PLAN_DIR_ENV = "SCOUT_PLAN_DIR"
PLAN_RETENTION_ENV = "SCOUT_PLAN_RETENTION"
# repository -> Scout environment map (environments.py), below a DAG param and the Scout connection
ENVIRONMENTS_ENV = "SCOUT_ENVIRONMENTS"
# Limits on what an upstream server may make a task hold or do (limits.py has the defaults).
MAX_BODY_BYTES_ENV = "SCOUT_MAX_BODY_BYTES"
MAX_MANIFEST_BYTES_ENV = "SCOUT_MAX_MANIFEST_BYTES"
MAX_REPORT_BYTES_ENV = "SCOUT_MAX_REPORT_BYTES"
REQUEST_DEADLINE_ENV = "SCOUT_REQUEST_DEADLINE"
AQL_READ_TIMEOUT_ENV = "SCOUT_AQL_READ_TIMEOUT"
MAX_PAGES_ENV = "SCOUT_MAX_PAGES"
MAX_TAGS_PER_REPOSITORY_ENV = "SCOUT_MAX_TAGS_PER_REPOSITORY"
MAX_TAGS_PER_DIGEST_ENV = "SCOUT_MAX_TAGS_PER_DIGEST"
PLANNING_TIMEOUT_ENV = "SCOUT_PLANNING_TIMEOUT"
INDEX_TIMEOUT_ENV = "SCOUT_INDEX_TIMEOUT"
SUMMARY_MAX_ROWS_ENV = "SCOUT_SUMMARY_MAX_ROWS"
# Airflow's retries of every Scout task, and the first delay before one (doubling after).
TASK_RETRIES_ENV = "SCOUT_TASK_RETRIES"
TASK_RETRY_DELAY_ENV = "SCOUT_TASK_RETRY_DELAY"
# The sbom backend's worker-local layer cache (see layer_cache.py for the defaults).
LAYER_CACHE_DIR_ENV = "SCOUT_LAYER_CACHE_DIR"
LAYER_CACHE_MAX_BYTES_ENV = "SCOUT_LAYER_CACHE_MAX_BYTES"
# How many docker-scout processes one host runs at once, and where their lock files live
# (hooks/scout/cli_runner.py has the defaults).
CLI_MAX_PROCESSES_ENV = "SCOUT_CLI_MAX_PROCESSES"
CLI_SLOTS_DIR_ENV = "SCOUT_CLI_SLOTS_DIR"
ARTIFACTORY_USER_ENV = "DOCKER_SCOUT_ARTIFACTORY_API_USER"
ARTIFACTORY_PASSWORD_ENV = "DOCKER_SCOUT_ARTIFACTORY_API_PASSWORD"
WEBHOOK_SECRET_ENV = "DOCKER_SCOUT_ARTIFACTORY_WEBHOOK_SECRET"
HUB_USER_ENV = "DOCKER_SCOUT_HUB_USER"
HUB_PASSWORD_ENV = "DOCKER_SCOUT_HUB_PASSWORD"
AIRFLOW_URL_ENV = "AIRFLOW_API_URL"
AIRFLOW_USERNAME_ENV = "AIRFLOW_API_USERNAME"
AIRFLOW_PASSWORD_ENV = "AIRFLOW_API_PASSWORD"
AIRFLOW_TOKEN_ENV = "AIRFLOW_API_TOKEN"
# `airflow-scout relay --some-option` falls back to SCOUT_RELAY_SOME_OPTION (not --port:
# compose's SCOUT_RELAY_PORT is the host port, the registry string's `port` the relay's).
RELAY_OPTION_ENV_PREFIX = "SCOUT_RELAY_"

# Variables the provider sets (never reads) for the docker-scout CLI it runs, as the CLI
# documents them: registry credentials stay out of argv, its cache stays in the task's directory.
CLI_VAR_PREFIX = "DOCKER_SCOUT_"  # what the CLI reads of the worker's environment (allowlist)
CLI_DOCKER_CONFIG_VAR = "DOCKER_CONFIG"  # Docker's own: where the CLI keeps its config and SBOM cache
CLI_REGISTRY_USER_VAR = "DOCKER_SCOUT_REGISTRY_USER"
CLI_REGISTRY_PASSWORD_VAR = "DOCKER_SCOUT_REGISTRY_PASSWORD"
CLI_REGISTRY_TOKEN_VAR = "DOCKER_SCOUT_REGISTRY_TOKEN"
CLI_CACHE_DIR_VAR = "DOCKER_SCOUT_CACHE_DIR"
# ... and for syft (its documented SYFT_<config key> variables), for the same reasons.
SYFT_VAR_PREFIX = "SYFT_"
SYFT_CHECK_UPDATE_VAR = "SYFT_CHECK_FOR_APP_UPDATE"
SYFT_CACHE_DIR_VAR = "SYFT_CACHE_DIR"
SYFT_INSECURE_HTTP_VAR = "SYFT_REGISTRY_INSECURE_USE_HTTP"
SYFT_AUTH_VAR_PREFIX = "SYFT_REGISTRY_AUTH_"
SYFT_AUTH_AUTHORITY_VAR = "SYFT_REGISTRY_AUTH_AUTHORITY"
SYFT_AUTH_USERNAME_VAR = "SYFT_REGISTRY_AUTH_USERNAME"
SYFT_AUTH_PASSWORD_VAR = "SYFT_REGISTRY_AUTH_PASSWORD"
SYFT_AUTH_TOKEN_VAR = "SYFT_REGISTRY_AUTH_TOKEN"
# syft's registry trust (its configuration reference: registry.ca-cert, registry.auth[].tls-cert
# and tls-key, registry.insecure-skip-tls-verify).
SYFT_CA_CERT_VAR = "SYFT_REGISTRY_CA_CERT"
SYFT_AUTH_TLS_CERT_VAR = "SYFT_REGISTRY_AUTH_TLS_CERT"
SYFT_AUTH_TLS_KEY_VAR = "SYFT_REGISTRY_AUTH_TLS_KEY"
SYFT_SKIP_TLS_VERIFY_VAR = "SYFT_REGISTRY_INSECURE_SKIP_TLS_VERIFY"

# Connections.
ARTIFACTORY_CONN_TYPE = "artifactory"
ARTIFACTORY_CONN_ID = "artifactory_default"
SCOUT_CONN_TYPE = "docker_scout"
SCOUT_CONN_ID = "docker_scout_default"

# Docker's public endpoints (every one configurable on the Scout connection).
SCOUT_API_URL = "https://api.scout.docker.com/v1/graphql"
HUB_URL = "https://hub.docker.com"

# DAGs, tasks and what they share.
DAG_ID_PREFIX = "scout_artifactory"  # the DAG factory's default: <prefix>_full_ingest, ...
FULL_INGEST_DAG_ID = f"{DAG_ID_PREFIX}_full_ingest"
REFRESH_DAG_ID = f"{DAG_ID_PREFIX}_refresh"
WEBHOOK_DAG_ID = f"{DAG_ID_PREFIX}_webhook"
LIST_TASK_ID = "list_images"
RESOLVE_EVENTS_TASK_ID = "resolve_events"
INDEX_TASK_ID = "index_images"
SUMMARY_TASK_ID = "summarize"
PLANNING_WARNINGS_XCOM_KEY = "planning_warnings"  # pushed by the planning task, shown by the summary
PLAN_XCOM_KEY = "scout_plan"  # the planning task's StoredPlan: where its mapped tasks read their batches
SBOM_ASSET_ALIAS_NAME = "scout_sboms"
ASSET_SCHEME = "scout"

# Every mapped indexing task runs in this Airflow pool: one cap across all runs and DAGs,
# changeable at run time (Admin -> Pools). Deployments create it with INDEX_WORKERS slots.
INDEX_POOL = "scout_indexing"
INDEX_POOL_DESCRIPTION = "Docker Scout indexing: images analysed at once across every run"
INDEX_WORKERS = 3  # what `docker scout watch --workers` defaults to
RELAY_PORT = 9000  # what `docker scout watch` listens on when the registry string has no port
