"""TEST-ONLY mitmproxy script: the test's "DNS and routing" for the red-team suite.

Every upstream connection to a name or address in CLASSGATE_TEST_HOSTS (JSON: {"host": [ip, http_port,
https_port]}) is sent to that test origin instead, port 443 to its HTTPS port and any other to its HTTP
port, so each origin on 127.0.0.x receives exactly what the gateway sends to the host it stands for. Runs
before classgate's own server_connect (scripts load first), like a resolver would. Never part of the product.
"""

import json
import os

HOSTS = {k.lower(): v for k, v in json.loads(os.environ["CLASSGATE_TEST_HOSTS"]).items()}


def server_connect(data) -> None:
    host, port = data.server.address
    target = HOSTS.get(str(host).lower().rstrip(".").strip("[]"))
    if target is not None:
        ip, http_port, https_port = target
        data.server.address = (ip, https_port if port == 443 else http_port)
