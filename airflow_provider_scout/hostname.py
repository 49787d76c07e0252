"""The host name a worker records on the task instances it runs (``[core] hostname_callable``).

Airflow's default, the fully qualified domain name, comes out as ``localhost`` for every
worker on hosts without their own DNS entry, so a lost or slow worker cannot be told from
the others in the UI. Set ``AIRFLOW__CORE__HOSTNAME_CALLABLE`` to
``airflow_provider_scout.hostname.worker_hostname`` on the workers: each then reports
``SCOUT_WORKER_NAME`` when set (several workers on one host), else the host's own name (a
container's id, as ``docker ps`` shows it).
"""

from __future__ import annotations

import os
import socket

from airflow_provider_scout.defaults import WORKER_NAME_ENV

__all__ = ["worker_hostname"]


def worker_hostname() -> str:
    """``SCOUT_WORKER_NAME``, else the host name without a DNS lookup."""
    return os.environ.get(WORKER_NAME_ENV, "").strip() or socket.gethostname()
