"""chat_core.gc_tuning: a process that holds many streams collects rarely, and never walks
what start-up left alive."""

from __future__ import annotations

import gc
import subprocess
import sys

from chat_core import gc_tuning


def test_start_up_objects_are_frozen_and_collections_are_rarer():
    probe = (
        "import gc; from chat_core import gc_tuning; "
        "before = gc.get_threshold(); gc_tuning.for_many_streams(); "
        "print(before[0], gc.get_threshold()[0], gc.get_freeze_count())"
    )
    # A process of its own: freezing this test run's objects would outlive the test.
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    before, after, frozen = map(int, out.stdout.split())
    assert after == gc_tuning.THRESHOLDS[0] > before
    assert frozen > 1_000  # every module and object loaded so far


def test_garbage_cycles_are_still_collected():
    probe = (
        "import gc, weakref; from chat_core import gc_tuning; gc_tuning.for_many_streams()\n"
        "class Node: pass\n"
        "a, b = Node(), Node(); a.other, b.other = b, a; ref = weakref.ref(a); del a, b\n"
        "gc.collect(); print(ref() is None)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    assert gc.isenabled()
