"""Dask worker preload of the fleet's swarm services: retire gracefully on SIGUSR1.

Swarm stops a worker task (an image roll, a scale-down) with its service's stop signal, SIGUSR1,
and kills it after the stop grace period. On SIGTERM `dask worker` closes at once: the tasks it
was running go to other workers and count as suspicious (three strikes make a KilledWorker).
Dask's own `Worker.close_gracefully` instead stops taking tasks, hands its results to other
workers and then exits, and the scheduler reschedules what it ran without counting it against
the task. The worker runs without a nanny, so this module runs in the process Swarm signals.
"""

from __future__ import annotations

import asyncio
import signal

# The event loop keeps only weak references to its tasks.
_retiring: set[asyncio.Task] = set()


def dask_setup(worker) -> None:
    loop = asyncio.get_running_loop()

    def retire() -> None:
        task = loop.create_task(worker.close_gracefully(reason="stopped by swarm (SIGUSR1)"))
        _retiring.add(task)
        task.add_done_callback(_retiring.discard)

    loop.add_signal_handler(signal.SIGUSR1, retire)
