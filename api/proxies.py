"""The client's address behind proxies: ``X-Forwarded-For`` (and ``-Proto``) are believed only
from the proxies ``NEWSDESK_TRUSTED_PROXIES`` names, through werkzeug's ``ProxyFix``."""

import functools
import ipaddress

from werkzeug.middleware.proxy_fix import ProxyFix


def trust_proxies(wsgi_app, trusted):
    """``wsgi_app`` seeing clients' addresses: ``trusted`` is how many proxies stand in front
    (each adds itself to ``X-Forwarded-For``), or the networks they are in; 0 trusts none."""
    if not trusted:
        return wsgi_app
    if isinstance(trusted, int):
        return ProxyFix(wsgi_app, x_for=trusted, x_proto=trusted)
    return TrustedNetworks(wsgi_app, trusted)


class TrustedNetworks:
    """WSGI middleware: a request from an address of ``networks`` has its client address from
    ``X-Forwarded-For``: the nearest entry that is not itself a trusted proxy. A request from any
    other address keeps its own, whatever it sends."""

    def __init__(self, wsgi_app, networks):
        self.wsgi_app = wsgi_app
        self.networks = networks

    def __call__(self, environ, start_response):
        if not self.trusted(environ.get("REMOTE_ADDR")):
            return self.wsgi_app(environ, start_response)
        hops = [part.strip() for part in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [hop for hop in hops if hop]
        count = 1
        while count < len(hops) and self.trusted(hops[-count]):
            count += 1
        return self._fix(count)(environ, start_response)

    def trusted(self, address):
        try:
            parsed = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(parsed in network for network in self.networks)

    @functools.lru_cache(maxsize=8)  # noqa: B019 - a few hop counts, for the app's life
    def _fix(self, count):
        return ProxyFix(self.wsgi_app, x_for=count, x_proto=count)
