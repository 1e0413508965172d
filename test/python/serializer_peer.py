"""Python Celery 5.2 peer for the serializer / compression interop tests.

Worker:   /usr/bin/python3 -m celery -A serializer_peer worker -P solo ...
          runs ``py.echo``, writing results with SER_RESULT_SERIALIZER.
Producer: /usr/bin/python3 serializer_peer.py produce '[["msgpack", "none"], ["json", "bzip2"]]'
          for each [serializer, compression] sends ``ts.echo`` (run by a Celeriac
          worker) with them, waits with ``AsyncResult.get()`` (results read with
          SER_RESULT_SERIALIZER) and prints one JSON line per case: what Python got back.

Environment: INTEROP_BROKER_URL, INTEROP_BACKEND_URL, SER_RESULT_SERIALIZER.
"""
import json
import os
import sys

from celery import Celery

RESULT_SERIALIZER = os.environ.get('SER_RESULT_SERIALIZER', 'json')

app = Celery(
    'serializer_peer',
    broker=os.environ.get('INTEROP_BROKER_URL', 'redis://127.0.0.1:6379/0'),
    backend=os.environ.get('INTEROP_BACKEND_URL', 'redis://127.0.0.1:6379/1'),
)
app.conf.update(
    accept_content=['json', 'msgpack', 'yaml'],
    result_accept_content=['json', 'msgpack', 'yaml'],
    result_serializer=RESULT_SERIALIZER,
    enable_utc=True,
    worker_hijack_root_logger=False,
)

# The value both sides send: str with non-ASCII, a large int, a float, null/bool, nesting.
PAYLOAD = ['h\u00e9llo', 2 ** 40, 1.5, [1, None, True], {'k': 'v', 'n': -3}]


@app.task(name='py.echo')
def echo(*args, **kwargs):
    """Returns what it received, and how Python typed it."""
    return {'args': list(args), 'kwargs': kwargs, 'types': [type(a).__name__ for a in args]}


def produce(serializer, compression):
    options = {'serializer': serializer}
    if compression != 'none':
        options['compression'] = compression
    result = app.send_task('ts.echo', args=PAYLOAD, kwargs={'tag': serializer + '+' + compression}, **options)
    try:
        value = result.get(timeout=20)
        print(json.dumps({'case': [serializer, compression], 'value': value, 'state': result.state}), flush=True)
    except Exception as exc:  # described, not raised: the test asserts on it
        print(json.dumps({'case': [serializer, compression], 'raised': {'type': type(exc).__name__, 'str': str(exc)}}), flush=True)


if __name__ == '__main__':
    if sys.argv[1] == 'produce':
        for serializer, compression in json.loads(sys.argv[2]):
            produce(serializer, compression)
