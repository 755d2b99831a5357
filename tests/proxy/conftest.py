"""Fixtures for the proxy tests; they live in proxytest_support so tests can import them by a unique name."""



from tests.proxy.proxytest_support import origin, origin_pki, policy_file, proxy  # noqa: F401  (fixtures)
