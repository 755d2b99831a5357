"""BENCH-ONLY mitmproxy script: measures event-loop stalls inside the proxy process.

A task sleeps 5 ms in a loop and records how late it wakes up (the overshoot): any stretch where
the loop could not run (a reload compiling while holding the GIL, a slow hook) shows up here.
Every overshoot over 1 ms is written, with its wall-clock time, to $CLASSGATE_BENCH_LAG_FILE
(JSON lines, flushed every 0.2 s) so bench_proxy.py can line them up with its reloads.
"""

import asyncio
import json
import os
import time

TICK = 0.005


class LoopLagProbe:
    def __init__(self) -> None:
        self.task = None
        self.path = os.environ["CLASSGATE_BENCH_LAG_FILE"]

    def running(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._probe())

    def done(self) -> None:
        if self.task:
            self.task.cancel()

    async def _probe(self) -> None:
        pending = []
        last_flush = time.monotonic()
        with open(self.path, "a", encoding="utf-8") as out:  # noqa: ASYNC230 - bench-only, tiny writes
            while True:
                t0 = time.perf_counter()
                await asyncio.sleep(TICK)
                over = time.perf_counter() - t0 - TICK
                if over > 0.001:
                    pending.append({"t": time.time(), "over_ms": round(over * 1000, 2)})
                if time.monotonic() - last_flush > 0.2:
                    out.write("".join(json.dumps(p) + "\n" for p in pending))
                    out.write(json.dumps({"t": time.time(), "tick": True}) + "\n")
                    out.flush()
                    pending.clear()
                    last_flush = time.monotonic()


addons = [LoopLagProbe()]
