"""A requests session whose credentials reach only the hosts of a :class:`CredentialScope`.

``Session.send`` is where every request leaves, the first one and each redirect requests
follows alike, whatever ``auth`` put on it (the connection's, or a registry token). A
request to a host the scope does not allow leaves without ``Authorization``: a redirect to
a blob store, a ``Link`` or token realm naming another host. The hook refuses such URLs
itself where it builds them (:meth:`CredentialScope.check_url`); this is the last line.
"""

from __future__ import annotations

from typing import Any

import requests

from airflow_provider_scout.credential_scope import CredentialScope

__all__ = ["ScopedSession"]


class ScopedSession(requests.Session):
    """A :class:`requests.Session` that strips ``Authorization`` outside its scope."""

    def __init__(self, scope: CredentialScope) -> None:
        super().__init__()
        self.scope = scope
        self.stripped = 0  # requests that left without their credentials, for tests and logs

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if "Authorization" in request.headers and not self.scope.allows_url(request.url or ""):
            del request.headers["Authorization"]
            self.stripped += 1
        return super().send(request, **kwargs)
