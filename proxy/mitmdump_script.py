"""classgate as a mitmdump script, for admins who already run mitmproxy:

    mitmdump -s proxy/mitmdump_script.py --set classgate_policy=/etc/classgate/department.yaml \
        --set connection_strategy=lazy --set onboarding=false [--set classgate_metrics=127.0.0.1:9741]

Options: classgate_policy, classgate_overlay, classgate_state_dir, classgate_reload_interval_ms,
classgate_ca_host, classgate_metrics. mitmproxy's confdir holds the CA devices must trust.
Until a policy is loaded every request is blocked with the "filter error" page (fail closed).
"""

from __future__ import annotations

import sys
from pathlib import Path

# mitmdump loads this file by path: make the project importable when it is not pip-installed.
_root = str(Path(__file__).resolve().parents[1])
if _root not in sys.path:
    sys.path.insert(0, _root)

from metrics import Metrics
from proxy.addons import default_addons
from proxy.addons.metrics_endpoint import MetricsEndpoint
from proxy.policy_holder import PolicyHolder

_metrics = Metrics()
_holder = PolicyHolder(metrics=_metrics)

addons = default_addons(_holder, _metrics) + [MetricsEndpoint(_metrics)]
