"""HTTP requests to webhook endpoints: which addresses may receive them, and one signed POST.

An endpoint's host must resolve to public addresses only (no loopback, private, link-local,
shared or metadata address), checked when the webhook is written and again before each
attempt, and the attempt connects to the very address that was checked (a second lookup could
answer otherwise: DNS rebinding). Redirects are not followed; each attempt has a total
deadline.
"""

import contextlib
import datetime
import email.utils
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from standardwebhooks import Webhook as Signer
from werkzeug.urls import iri_to_uri

from models.webhooks import Outcome, SecretUnreadable

USER_AGENT = "Newsdesk-Webhooks/1.0"
#: Of an answer, at most this much is read; of a failed one, this much is logged.
READ_LIMIT = 64 * 1024
LOGGED_BODY = 200
#: NAT64 embeds an IPv4 address in IPv6; the embedded one is what is reached.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: Not globally reachable (IANA's special-purpose registry), where the ``ipaddress`` of some
#: Python versions says they are: the IETF protocol assignments (192.0.0.0/24, of which only
#: two anycast services are global, none a webhook receiver) and the 6to4 relay anycast block.
NOT_GLOBAL = [ipaddress.ip_network("192.0.0.0/24"), ipaddress.ip_network("192.88.99.0/24")]


class Refused(Exception):
    """An endpoint that may not receive webhooks, and why."""


def is_public(address):
    """Whether ``address`` (text) is a public unicast address: not loopback, private,
    link-local (cloud metadata lives there), shared (100.64/10), reserved or multicast."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    elif ip.version == 6 and ip.sixtofour is not None:  # 2002::/16 routes to the IPv4 inside
        ip = ip.sixtofour
    elif ip.version == 6 and ip in NAT64:
        ip = ipaddress.ip_address(int(ip) & 0xFFFFFFFF)
    # is_global alone passes some reserved IPv6 forms of IPv4 addresses (64:ff9b:1::/48), and
    # IPv6's deprecated site-local addresses (fec0::/10), which old networks still route inside.
    site_local = ip.version == 6 and ip.is_site_local
    not_global = any(ip in network for network in NOT_GLOBAL if network.version == ip.version)
    return (
        ip.is_global
        and not ip.is_reserved
        and not ip.is_multicast
        and not site_local
        and not not_global
    )


def resolve(host, port, allow_private=False):
    """The addresses of ``host``; raises Refused when it has none, or (unless
    ``allow_private``) when any of them is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise Refused(f"{host} does not resolve ({error}).") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise Refused(f"{host} does not resolve.")
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise Refused(
                    f"{host} resolves to {address}, which is not a public address "
                    "(loopback, private, link-local and metadata addresses are refused)."
                )
    return addresses


def _port(parts):
    if parts.port is not None:
        return parts.port
    return 443 if parts.scheme == "https" else 80


def endpoint_problem(url, allow_private):
    """Why ``url`` (a syntactically valid http or https URL) may not receive webhooks, or None.

    Without ``allow_private``: https only, and its host must resolve to public addresses.
    """
    parts = urlsplit(url)  # no credentials, a valid port: the schema's Url field checked
    if allow_private:
        return None
    if parts.scheme != "https":
        return "Use https."
    try:
        resolve(parts.hostname, _port(parts))
    except Refused as error:
        return str(error)
    return None


class PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to ``host`` made to the checked ``address``, whatever the host
    resolves to now; TLS still verifies the certificate against ``host``. ``abort`` ends it
    from another thread (the attempt's deadline)."""

    def __init__(self, host, port, address, timeout, tls=None):
        super().__init__(host, port, timeout=timeout)
        if tls is not None:  # the Host header names no port of https's own
            self.default_port = http.client.HTTPS_PORT
        self.address = address
        self.tls = tls
        self.aborted = False

    def connect(self):
        sock = socket.create_connection((self.address, self.port), self.timeout)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        self.sock = sock

    def abort(self):
        self.aborted = True
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)


def _retry_after(value):
    """Seconds from a ``Retry-After`` header (delay-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit takes "²" too
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return max(0.0, (moment - datetime.datetime.now(datetime.UTC)).total_seconds())


def post(url, body, headers, timeout, allow_private=False):
    """POST ``body`` to ``url`` once; returns an :class:`Outcome`. Never raises for what the
    network or the endpoint does."""
    started = time.monotonic()

    def spent():
        return int((time.monotonic() - started) * 1000)

    parts = urlsplit(iri_to_uri(url))  # what the wire carries: IDNA host, %-encoded path
    if parts.scheme != "https" and not allow_private:  # written while private ones were allowed
        return Outcome(None, spent(), "Refused: use https.")
    try:
        address = resolve(parts.hostname, _port(parts), allow_private)[0]
    except (Refused, ValueError) as error:
        return Outcome(None, spent(), f"Refused: {error}")
    tls = ssl.create_default_context() if parts.scheme == "https" else None
    connection = PinnedConnection(parts.hostname, _port(parts), address, timeout, tls)
    deadline = threading.Timer(timeout, connection.abort)
    deadline.start()
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        status = response.status
        # Of a success, only the status counts: a body sent slowly ran the attempt past its
        # deadline, and a delivery that had succeeded was sent again as timed out.
        answer = b"" if 200 <= status < 300 else response.read(READ_LIMIT)
        retry_after = response.getheader("Retry-After")
        location = response.getheader("Location")
    except (OSError, http.client.HTTPException) as error:
        if connection.aborted or isinstance(error, TimeoutError):
            return Outcome(None, spent(), f"Timed out after {timeout:g} s.")
        return Outcome(None, spent(), f"Connection failed: {error or type(error).__name__}.")
    finally:
        deadline.cancel()
        connection.close()
    outcome = Outcome(status, spent())
    if outcome.ok:
        return outcome
    if 300 <= status < 400:
        outcome.error = f"Answered {status}, a redirect (not followed) to {location}."
    else:
        text = answer[:LOGGED_BODY].decode("utf-8", "replace").strip()
        outcome.error = f"Answered {status}" + (f": {text}" if text else ".")
    if status in (429, 503):
        outcome.retry_after = _retry_after(retry_after)
    outcome.gone = status == 410
    return outcome


def signature(secrets, message_id, at, body):
    """The ``webhook-signature`` header: a ``v1,`` signature by each of ``secrets`` of
    ``message_id.timestamp.body`` (Standard Webhooks), separated by spaces."""
    return " ".join(Signer(secret).sign(message_id, at, body) for secret in secrets)


def deliver(held, config):
    """Send one attempt of the claimed delivery ``held`` (``models.webhooks.Claim``), signed
    with its endpoint's secrets; returns the :class:`Outcome`."""
    at = datetime.datetime.now(datetime.UTC)
    try:
        secrets = held.webhook.signing_secrets(
            config.key_for("webhook-secrets"), at.replace(tzinfo=None)
        )
    except SecretUnreadable as error:
        return Outcome(None, 0, str(error))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": held.message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature(secrets, held.message_id, at, held.payload),
    }
    return post(
        held.webhook.url,
        held.payload.encode(),
        headers,
        config.webhook_timeout,
        config.webhook_allow_private,
    )
