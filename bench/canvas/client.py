"""Python producer of the canvas benchmark: one chord or chain, timed from the
call to the final result (`get()`), printed as one JSON line.

    client.py chord <n> | chain <n>
"""
import json
import sys
import time

from celery import chain, chord

from canvas_tasks import add, tsum

kind, n = sys.argv[1], int(sys.argv[2])
# Warm-up (unmeasured): connections, imports and the worker's first messages.
add.delay(1, 1).get(timeout=60)
for _ in range(3):
    chord([add.s(j, j) for j in range(100)], tsum.s())().get(timeout=60)
    chain([add.s(1, 1)] + [add.s(1) for _ in range(20)])().get(timeout=60)
start = time.perf_counter()
if kind == 'chord':
    value = chord([add.s(i, i) for i in range(n)], tsum.s())().get(timeout=600)
else:
    value = chain([add.s(1, 1)] + [add.s(1) for _ in range(n - 1)])().get(timeout=600)
elapsed = time.perf_counter() - start
sys.stdout.write(json.dumps({'seconds': elapsed, 'value': value}) + '\n')
