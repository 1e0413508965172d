"""The Python Celery 5.2 side of the canvas benchmark (bench/canvas.ts).

Worker: /usr/bin/python3 -m celery -A canvas_tasks worker -P prefork -c 2 -l warning \
            --without-gossip --without-mingle --without-heartbeat
(bench/canvas on PYTHONPATH; URLs from BENCH_BROKER_URL / BENCH_BACKEND_URL).
"""
import os

from celery import Celery

app = Celery(
    'bench-canvas',
    broker=os.environ.get('BENCH_BROKER_URL', 'redis://127.0.0.1:6379/0'),
    backend=os.environ.get('BENCH_BACKEND_URL', 'redis://127.0.0.1:6379/1'),
)


@app.task(name='bench.add')
def add(x, y):
    return x + y


@app.task(name='bench.tsum')
def tsum(numbers):
    return sum(numbers)
