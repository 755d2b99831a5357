"""TEST-ONLY mitmproxy script: send every upstream connection to the local test origin.

The Host header (and, for passed-through TLS, the SNI) are kept, so the origin records what the
proxy really sent (e.g. the SafeSearch rewrite of a www.google.com search). Requests are redirected
in the `request` hook, after classgate decided in `requestheaders`, so mitmproxy can reuse its
upstream connections; connections that carry no request we see (passthrough) are redirected when
they connect. Loaded with `--set scripts=<this file>`; never part of the product.
"""

import os

ORIGIN_IP = "127.0.0.50"  # tests/proxy/proxytest_origin.py; the test policies open it (local_services)
HTTP_PORT = int(os.environ["CLASSGATE_TEST_ORIGIN_HTTP"])
HTTPS_PORT = int(os.environ["CLASSGATE_TEST_ORIGIN_HTTPS"])


def request(flow) -> None:
    if flow.response:
        return
    host_header = flow.request.host_header
    flow.request.host = ORIGIN_IP
    flow.request.port = HTTPS_PORT if flow.request.scheme == "https" else HTTP_PORT
    flow.request.host_header = host_header


def server_connect(data) -> None:
    host, port = data.server.address
    if host != ORIGIN_IP:
        data.server.address = (ORIGIN_IP, HTTPS_PORT if port == 443 else HTTP_PORT)
