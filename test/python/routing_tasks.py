"""Python Celery 5.2 side of the routing interop tests (Redis and RabbitMQ).

Broker from INTEROP_BROKER_URL, no result backend; each run is logged to the
list ``interop:executions`` on INTEROP_RECORD_URL (a Redis db) as
``py:<tag>@<routing key>@<priority>``. The queues are the ones the Celeriac side
declares in test/redis-routing.test.ts and test/amqp-routing-interop.test.ts:

    usa      topic exchange news, binding key usa.#
    weather  topic exchange news, binding key *.weather
    bc-a     fanout exchange bc (binding key: Celery's default, celery)
    prio     direct, x-max-priority 10

Worker:   /usr/bin/python3 -m celery -A routing_tasks worker -Q usa,weather
Producer: /usr/bin/python3 routing_tasks.py <case> <tag> [routing key | priority]
          cases: topic (queue usa with a routing key), fanout (queue bc-a),
          priority (queue prio with a priority); prints one JSON line.
"""
import json
import os
import sys

from celery import Celery
from kombu import Exchange, Queue

app = Celery('routing', broker=os.environ.get('INTEROP_BROKER_URL', 'redis://127.0.0.1:6379/0'), backend=None)
news = Exchange('news', type='topic')
app.conf.update(
    task_serializer='json',
    accept_content=['json'],
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    worker_prefetch_multiplier=1,
    task_queues=[
        Queue('usa', news, routing_key='usa.#'),
        Queue('weather', news, routing_key='*.weather'),
        Queue('bc-a', Exchange('bc', type='fanout')),
        Queue('prio', Exchange('prio'), routing_key='prio', queue_arguments={'x-max-priority': 10}),
        Queue('celery', Exchange('celery'), routing_key='celery'),
    ],
)

_record = None


def record(value):
    global _record
    url = os.environ.get('INTEROP_RECORD_URL')
    if not url:
        return
    if _record is None:
        import redis
        _record = redis.Redis.from_url(url)
    _record.rpush('interop:executions', value)


@app.task(name='routing.where', bind=True)
def where(self, tag):
    info = self.request.delivery_info or {}
    record('py:%s@%s@%s' % (tag, info.get('routing_key'), info.get('priority')))
    return tag


def main():
    case, tag = sys.argv[1], sys.argv[2]
    if case == 'topic':
        r = app.send_task('routing.where', args=[tag], queue='usa', routing_key=sys.argv[3])
    elif case == 'fanout':
        r = app.send_task('routing.where', args=[tag], queue='bc-a')
    elif case == 'priority':
        r = app.send_task('routing.where', args=[tag], queue='prio', priority=int(sys.argv[3]))
    else:
        raise SystemExit('unknown case %s' % case)
    print(json.dumps({'id': r.id}))


if __name__ == '__main__':
    main()
