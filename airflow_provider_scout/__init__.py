"""Apache Airflow provider that indexes JFrog Artifactory container images into Docker Scout."""

from __future__ import annotations

# The one place the version is written: the packaging and the provider info read it from here.
__version__ = "0.1.0"
