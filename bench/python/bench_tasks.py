"""The Python Celery 5.2 side of the benchmark: one app, one no-op task.

Worker: /usr/bin/python3 -m celery -A bench_tasks worker -P prefork -c 2 -l warning \
            --without-gossip --without-mingle --without-heartbeat
(run with bench/python on PYTHONPATH; URLs from BENCH_BROKER_URL / BENCH_BACKEND_URL).
Everything else is Celery's defaults (prefetch multiplier 4, early ack, json).
"""
import os

from celery import Celery

app = Celery(
    'bench',
    broker=os.environ.get('BENCH_BROKER_URL', 'redis://127.0.0.1:6379/0'),
    backend=os.environ.get('BENCH_BACKEND_URL', 'redis://127.0.0.1:6379/1'),
)


@app.task(name='bench.add')
def add(x, y):
    return x + y


BLOCK = b'\x5a' * 65536


@app.task(name='bench.hash_loop')
def hash_loop(blocks):
    """CPU-bound work for the pool benchmark: SHA-256 over `blocks` x 64 KiB, one
    update per block, as bench/systems/celeriac/cpu-tasks.mjs does (OpenSSL's SHA-256
    on both sides, so equal `blocks` is equal work; calibrated by bench/cpu-pools.ts
    to about 20 ms of CPU)."""
    import hashlib
    h = hashlib.sha256()
    for _ in range(blocks):
        h.update(BLOCK)
    return h.hexdigest()[:8]
