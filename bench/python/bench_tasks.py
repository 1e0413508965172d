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


@app.task(name='bench.hash_loop')
def hash_loop(iterations):
    """CPU-bound work for the pool benchmark: `iterations` SHA-256 digests of 64 bytes,
    calibrated by bench/cpu-pools.ts to take about 20 ms in Python on one core."""
    import hashlib
    data = b'\x00' * 64
    for _ in range(iterations):
        data = hashlib.sha256(data).digest()
    return data[:4].hex()

