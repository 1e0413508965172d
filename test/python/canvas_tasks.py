"""Python Celery 5.2 side of the Celeriac canvas interop tests.

URLs come from the environment, as in interop_tasks.py (INTEROP_BROKER_URL,
INTEROP_BACKEND_URL). ``tasks.add`` / ``tasks.mul`` / ``tasks.xsum`` exist on
both sides (test/apps/canvas-app.ts); ``py.only_*`` only here, ``ts.only_*``
only in Celeriac (declared here as stubs so a Python producer can call them).

Worker:  cd test/python && /usr/bin/python3 -m celery -A canvas_tasks worker ...
"""
import os

from celery import Celery

app = Celery(
    'canvas',
    broker=os.environ.get('INTEROP_BROKER_URL', 'redis://127.0.0.1:6379/0'),
    backend=os.environ.get('INTEROP_BACKEND_URL', 'redis://127.0.0.1:6379/1'),
)
app.conf.update(
    task_serializer='json',
    result_serializer='json',
    accept_content=['json'],
    enable_utc=True,
    worker_hijack_root_logger=False,
    # Each language's own tasks on its own queue; shared tasks.* on the default queue.
    task_routes={'py.only_*': {'queue': 'py'}, 'ts.only_*': {'queue': 'ts'}},
)
# Only a Celeriac worker runs ts.* tasks; a Python worker started on this module
# does not register the stubs (CANVAS_STUBS=1 is set for producers only).
STUBS = os.environ.get('CANVAS_STUBS') == '1'


@app.task(name='tasks.add')
def add(x, y):
    return x + y


@app.task(name='tasks.mul')
def mul(x, y):
    return x * y


@app.task(name='tasks.xsum')
def xsum(numbers):
    return sum(numbers)


@app.task(name='tasks.fail')
def fail(*args):
    raise TypeError('expected failure')


@app.task(name='py.only_add')
def py_only_add(x, y):
    return x + y


@app.task(name='py.only_xsum')
def py_only_xsum(numbers):
    return sum(numbers)


def _stub(name):
    def run(*args, **kwargs):
        raise NotImplementedError('%s runs on the Celeriac worker' % name)
    run.__name__ = name.replace('.', '_')
    return app.task(name=name)(run)


if STUBS:
    ts_only_add = _stub('ts.only_add')
    ts_only_xsum = _stub('ts.only_xsum')
    ts_only_apply = _stub('ts.only_apply')
