"""Python Celery 5.2 peer for test/redis-sentinel.test.ts: broker and result
backend through Redis Sentinel, configured as a Celery user would.

Environment (set by the test):
    INTEROP_BROKER_URL   sentinel://:<master password>@127.0.0.1:<p1>/0;sentinel://...
    INTEROP_BACKEND_URL  sentinel://:<master password>@127.0.0.1:<p1>/1;sentinel://...
    SENTINEL_MASTER      the master group name (master_name)
    SENTINEL_PASSWORD    the sentinels' own password (sentinel_kwargs)

Worker:   /usr/bin/python3 -m celery -A sentinel_peer worker ...
Producer: /usr/bin/python3 sentinel_peer.py send <x>   (prints one JSON line)
"""
import json
import os
import sys

from celery import Celery

app = Celery('sentinel_peer', broker=os.environ['INTEROP_BROKER_URL'], backend=os.environ['INTEROP_BACKEND_URL'])
_options = {
    'master_name': os.environ['SENTINEL_MASTER'],
    'sentinel_kwargs': {'password': os.environ['SENTINEL_PASSWORD']},
}
app.conf.update(
    broker_transport_options=_options,
    result_backend_transport_options=_options,
    task_serializer='json',
    result_serializer='json',
    accept_content=['json'],
    worker_hijack_root_logger=False,
)


@app.task(name='py.sentinel_double')
def sentinel_double(x):
    return {'doubled': x * 2, 'by': 'py'}


def main():
    if sys.argv[1] == 'send':
        result = app.send_task('ts.sentinel_square', args=[int(sys.argv[2])])
        print(json.dumps({'id': result.id, 'result': result.get(timeout=30)}))
    else:
        raise SystemExit('usage: sentinel_peer.py send <x>')


if __name__ == '__main__':
    main()
