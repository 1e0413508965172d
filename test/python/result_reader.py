"""Reads results the way a Python Celery 5.2 client does, for the interop tests.

    INTEROP_BACKEND_URL=... /usr/bin/python3 result_reader.py <task-id> [...]

Prints one JSON line: for each id, what ``AsyncResult`` shows — state, info, and
the result_extended properties (name, args, kwargs, worker, queue, retries).
"""
import json
import os
import sys

from celery import Celery
from celery.result import AsyncResult

import proj.errors  # noqa: F401  (a caller that knows the error's module has imported it)

app = Celery('result_reader', backend=os.environ['INTEROP_BACKEND_URL'], broker='memory://')
app.conf.update(result_extended=True, accept_content=['json'])

out = {}
for task_id in sys.argv[1:]:
    r = AsyncResult(task_id, app=app)
    info = r.info
    if isinstance(info, BaseException):
        info = {'exception': type(info).__name__, 'module': type(info).__module__, 'args': list(info.args),
                'is_proj_error': isinstance(info, proj.errors.ExpectedException)}
    out[task_id] = {
        'state': r.state,
        'info': info,
        'name': r.name,
        'args': r.args,
        'kwargs': r.kwargs,
        'worker': r.worker,
        'queue': r.queue,
        'retries': r.retries,
    }
print(json.dumps(out))
