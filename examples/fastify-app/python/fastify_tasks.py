"""A task only Python defines; the Fastify example sends it by name.

    cd examples/fastify-app/python
    CELERY_BROKER_URL=redis://127.0.0.1:6379/0 celery -A fastify_tasks worker -Q python -l info

It consumes the `python` queue, so the Celeriac worker (on `celery`) never sees
a task it does not define.
"""
import os

from celery import Celery

broker = os.environ.get('CELERY_BROKER_URL', 'redis://127.0.0.1:6379/0')
backend = os.environ.get('CELERY_RESULT_BACKEND') or broker.rsplit('/', 1)[0] + '/1'
app = Celery('fastify_py', broker=broker, backend=backend)
app.conf.task_routes = {'py.*': {'queue': 'python'}}


@app.task(name='py.text.word_count', bind=True)
def word_count(self, text):
    """Count words, and say which request (id, trace context) sent the task."""
    return {
        'words': len(text.split()),
        'request_id': self.request.get('request_id'),
        'traceparent': self.request.get('traceparent'),
    }
