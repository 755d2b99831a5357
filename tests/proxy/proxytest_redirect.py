"""TEST-ONLY mitmproxy script: send every upstream connection to the local test origin.

The Host header and the TLS SNI are kept, so the origin records what the proxy really sent (e.g. the
SafeSearch rewrite of a www.google.com search). Loaded with `--set scripts=<this file>`; never part
of the product.
"""

import os

HTTP_PORT = int(os.environ["CLASSGATE_TEST_ORIGIN_HTTP"])
HTTPS_PORT = int(os.environ["CLASSGATE_TEST_ORIGIN_HTTPS"])


def server_connect(data) -> None:
    _, port = data.server.address
    data.server.address = ("127.0.0.1", HTTPS_PORT if port == 443 else HTTP_PORT)
