"""classgate as a mitmdump script, for admins who already run mitmproxy:

    mitmdump -s "$(classgate-path)/agent/mitmdump_script.py" --set classgate_policy=/etc/classgate/department.yaml \
        --set connection_strategy=lazy --set onboarding=false [--set classgate_metrics=127.0.0.1:9741]

classgate must be installed in mitmdump's Python environment (`pip install classgate` next to mitmproxy).
Options: classgate_policy, classgate_overlay, classgate_state_dir, classgate_reload_interval_ms,
classgate_ca_host, classgate_metrics. mitmproxy's confdir holds the CA devices must trust.
Until a policy is loaded every request is blocked with the "filter error" page (fail closed).
"""

from __future__ import annotations

from classgate.agent.gateway import GatewayConfig, build_gateway
from classgate.proxy.clock import Clock

# The same builder as `classgate run`; the policy, state dir and metrics address come from the
# classgate_* options on mitmdump's command line, read when mitmdump configures the addons.
addons = build_gateway(GatewayConfig(policy=None, metrics=None, clock=Clock.from_environment())).addons
