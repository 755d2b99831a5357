"""The gateway's own resolver: one policy for DNS and TLS (see docs/dns.md).

The chain, in order: `listener` (UDP and TCP) -> `server` (who may ask, how often, is it a query) ->
`resolver` (the policy's decision, `blocking`; then `cache` and `upstream`, with `ech_strip` on every upstream
answer; then what the gateway answered is learnt for the TLS gate). `wire` reads and writes messages on
mitmproxy's codec. Assembled by classgate.proxy.addons.gateway_dns.
"""
