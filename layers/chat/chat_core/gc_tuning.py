"""Garbage collection for a process that holds many open streams.

    gc_tuning.for_many_streams()    # once the app is built: make dev, a container serving readers

A thousand readers of a turn keep tens of thousands of objects alive (connections, tasks,
queues, generators). With CPython's default thresholds a collection runs every 700
allocations, and every so often one walks all of those objects: a pause that every
reader's next event waits for, which is what sets the delivery p99 of a busy process
(bench/load.py). So what start-up left alive is frozen out of collections (`gc.freeze`, as
the docs advise for long-lived servers) and collections run less often; reference cycles
are still found, later. Not for Lambda: there each execution environment serves one
request, and the full collection this starts with would lengthen its cold start.
"""

from __future__ import annotations

import gc

THRESHOLDS = (100_000, 50, 1_000)


def for_many_streams() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
