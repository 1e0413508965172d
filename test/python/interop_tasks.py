"""Python Celery 5.2 side of the Celeriac interop tests.

The broker and backend URLs come from the environment (the test harness sets
them to a throw-away redis-server on a loopback port):

    INTEROP_BROKER_URL   redis://127.0.0.1:<port>/0
    INTEROP_BACKEND_URL  redis://127.0.0.1:<port>/1
    INTEROP_RECORD_URL   redis://127.0.0.1:<port>/2   (execution log, optional)

Worker:  cd test/python && /usr/bin/python3 -m celery -A interop_tasks worker ...

Task names are explicit so Celeriac finds them: ``tasks.*`` run here (and
only here), ``mixed.who`` is implemented on both sides (it returns ``'py'``
here and ``'ts'`` in Celeriac) to check that both workers share one queue.
The ``ts.*`` tasks Celeriac implements are declared as stubs in producer.py.
"""
import os
import time

from celery import Celery

app = Celery(
    'interop',
    broker=os.environ.get('INTEROP_BROKER_URL', 'redis://127.0.0.1:6379/0'),
    backend=os.environ.get('INTEROP_BACKEND_URL', 'redis://127.0.0.1:6379/1'),
)
app.conf.update(
    task_serializer='json',
    result_serializer='json',
    accept_content=['json'],
    enable_utc=True,
    worker_hijack_root_logger=False,
)

# INTEROP_VISIBILITY_TIMEOUT (seconds): kombu's visibility timeout, for the test
# that a Python worker's restore leaves live Celeriac-held messages alone.
if os.environ.get('INTEROP_VISIBILITY_TIMEOUT'):
    app.conf.broker_transport_options = {
        'visibility_timeout': float(os.environ['INTEROP_VISIBILITY_TIMEOUT']),
    }

# INTEROP_TRACK_STARTED=1: store STARTED (the rpc:// tests watch the states go by).
if os.environ.get('INTEROP_TRACK_STARTED') == '1':
    app.conf.task_track_started = True

_record = None


def record(kind, value):
    """RPUSH one execution to the shared log list (exactly-once checks)."""
    global _record
    url = os.environ.get('INTEROP_RECORD_URL')
    if not url:
        return
    if _record is None:
        import redis
        _record = redis.Redis.from_url(url)
    _record.rpush('interop:executions', '%s:%s' % (kind, value))


# ---------------------------------------------------------------- Python tasks

@app.task(name='tasks.add')
def add(x, y):
    return x + y


@app.task(name='tasks.mul')
def mul(x, y):
    return x * y


@app.task(name='tasks.div')
def div(x, y):
    return x / y  # ZeroDivisionError('division by zero') for y == 0


@app.task(name='tasks.fail')
def fail():
    raise ValueError('bad', 7)


@app.task(name='tasks.echo_kwargs')
def echo_kwargs(*args, **kwargs):
    return {'args': list(args), 'kwargs': kwargs}


@app.task(name='tasks.now')
def now():
    return time.time()


@app.task(name='tasks.errback')
def errback(task_id):
    """Old-style errback: Celery calls it with the failed task's id."""
    return {'failed_task_id': task_id}


@app.task(name='tasks.flaky', bind=True, max_retries=3)
def flaky(self, value):
    if self.request.retries < 1:
        raise self.retry(countdown=1)
    return {'value': value, 'retries': self.request.retries, 'ran_at': time.time()}


@app.task(name='tasks.sleep')
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@app.task(name='mixed.who')
def who(i):
    record('py', i)
    time.sleep(0.005)
    return ['py', i]


@app.task(name='mixed.hold')
def hold(tag):
    """Celeriac holds these for a long time; here it only records that it ran."""
    record('py', tag)
    return ['py', tag]


@app.task(name='web.request_context', bind=True)
def request_context(self):
    """What a Python worker sees of the web request that sent the task (headers a
    Celeriac web adapter adds: request_id, traceparent)."""
    return {
        'request_id': getattr(self.request, 'request_id', None),
        'traceparent': getattr(self.request, 'traceparent', None),
    }
