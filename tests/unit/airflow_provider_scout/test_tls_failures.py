"""The one-line TLS and proxy failures both HTTP stacks share, named for where the setting lives."""

from __future__ import annotations

import pytest

from airflow_provider_scout.tls_failures import Remedies, chain_text, proxy_failure, shown_proxy, tls_failure

FLAGS = Remedies(
    verify="--x-ca-bundle",
    cert="--x-client-cert",
    verify_and_cert="--x-ca-bundle and --x-client-cert",
    proxies="--x-proxy",
)
UNTRUSTED = (
    "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
    "self-signed certificate in certificate chain (_ssl.c:1006)"
)


def test_an_untrusted_certificate_names_the_reason_without_openssls_source_location() -> None:
    message = tls_failure(UNTRUSTED, "af:8443", FLAGS, connection_error=True, ssl_error=True, cert_sent=False)
    assert message == (
        "the TLS certificate of af:8443 is not trusted (self-signed certificate in certificate chain); "
        "set --x-ca-bundle to the CA bundle that signed it"
    )


@pytest.mark.parametrize(
    ("text", "cert_sent", "said"),
    [
        (
            "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required",
            False,
            "alert: certificate required): no client certificate was sent",
        ),
        (
            "EOF occurred in violation of protocol (_ssl.c:2427)",
            True,
            "it closed the connection): it refused the client certificate",
        ),
    ],
)
def test_a_handshake_the_server_ended_asks_for_a_client_certificate(
    text: str, cert_sent: bool, said: str
) -> None:
    message = tls_failure(text, "af", FLAGS, connection_error=True, ssl_error=False, cert_sent=cert_sent)
    assert (
        message is not None
        and said in message
        and message.endswith("set --x-client-cert to a certificate (and key) af accepts")
    )


def test_anything_else_is_not_a_tls_failure() -> None:
    assert (
        tls_failure(
            "[Errno 111] Connection refused",
            "af",
            FLAGS,
            connection_error=True,
            ssl_error=False,
            cert_sent=False,
        )
        is None
    )


def test_a_proxy_refusal_is_final_but_a_proxy_that_cannot_reach_the_host_is_not() -> None:
    proxy = shown_proxy("http://user:secret@proxy.corp:3128")
    assert proxy == "proxy http://proxy.corp:3128"
    assert proxy_failure("503", "Service Unavailable", proxy, "af", FLAGS) is None
    assert proxy_failure("403", "Forbidden", proxy, "af", FLAGS) == (
        "proxy http://proxy.corp:3128 refused to connect to af: 403 Forbidden; allow af on the proxy, "
        "or set --x-proxy to one that may reach it"
    )
    assert (
        proxy_failure(None, "", proxy, "af", FLAGS)
        == "cannot reach proxy http://proxy.corp:3128 to connect to af; check --x-proxy"
    )


def test_the_chain_text_reaches_the_wrapped_error() -> None:
    try:
        try:
            raise OSError(UNTRUSTED)
        except OSError as inner:
            raise ConnectionError("") from inner
    except ConnectionError as outer:
        assert "self-signed certificate" in chain_text(outer)
