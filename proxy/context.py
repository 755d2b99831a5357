"""What the deciding components share: the policy, the fail-closed recorder, the clock, the block page,
where connection verdicts go, the gateway's own addresses, its name lookups (which the gateway's resolver
feeds with the answers it gives), where events without a verdict are counted, and the teachers' class actions
(every gate decides through `classes`, so the teacher tier is one rule for HTTP, TLS and TCP). Built once by the gateway
builder (classgate.agent.gateway)."""

from __future__ import annotations

from dataclasses import dataclass, field

from classgate.proxy.class_watch import ClassTier
from classgate.proxy.clock import REAL_CLOCK, Clock
from classgate.proxy.events import EventRecorder, NoEvents
from classgate.proxy.failsafe import FailSafe
from classgate.proxy.local_addresses import LocalAddresses
from classgate.proxy.name_addresses import NameAddresses
from classgate.proxy.policy_holder import PolicyHolder
from classgate.proxy.responses import BlockResponder
from classgate.proxy.verdict import NoSink, VerdictSink
from classgate.proxy.warn import StudentSide


@dataclass(frozen=True)
class FilterContext:
    holder: PolicyHolder
    failsafe: FailSafe
    clock: Clock = REAL_CLOCK
    verdicts: VerdictSink = field(default_factory=NoSink)
    local: LocalAddresses = field(default_factory=LocalAddresses)
    names: NameAddresses = field(default_factory=NameAddresses)
    events: EventRecorder = field(default_factory=NoEvents)
    classes: ClassTier = field(default_factory=ClassTier)
    # Warn-and-continue, quotas, ask codes (proxy/warn.py); the block page shows its ask codes.
    student: StudentSide = field(default_factory=StudentSide.in_memory)
    responder: BlockResponder = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "responder", BlockResponder(self.clock, asks=self.student.asks,
                                                                teacher_action=self.classes.named))

