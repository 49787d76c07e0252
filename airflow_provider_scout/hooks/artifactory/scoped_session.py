"""A requests session whose credentials reach only the hosts of a :class:`CredentialScope`.

``Session.send`` is where every request leaves, the first one and each redirect requests
follows alike, whatever ``auth`` put on it (the connection's, or a registry token). A
request to a host the scope does not allow leaves without ``Authorization``: a redirect to
a blob store, a ``Link`` or token realm naming another host. The hook refuses such URLs
itself where it builds them (:meth:`CredentialScope.check_url`); this is the last line.
Headers the connection's extras add (``HttpHook``'s rule; often an API key) are stripped
there too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import requests

from airflow_provider_scout.credential_scope import CredentialScope
from airflow_provider_scout.hooks.http_session import ExtrasSession

__all__ = ["ScopedSession"]


class ScopedSession(ExtrasSession):
    """A session that strips ``Authorization`` (and ``private_headers``) outside its scope."""

    def __init__(self, scope: CredentialScope, private_headers: Iterable[str] = ()) -> None:
        super().__init__()
        self.scope = scope
        self.private_headers = ("Authorization", *private_headers)
        self.stripped = 0  # requests that left without their credentials, for tests and logs

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        carried = [name for name in self.private_headers if name in request.headers]
        if carried and not self.scope.allows_url(request.url or ""):
            for name in carried:
                del request.headers[name]
            self.stripped += 1
        return super().send(request, **kwargs)
