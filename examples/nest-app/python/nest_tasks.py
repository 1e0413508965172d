"""A task only Python defines; the Nest example's api sends it by name (POST /resize).

    cd examples/nest-app/python
    CELERY_BROKER_URL=redis://127.0.0.1:6379/0 celery -A nest_tasks worker -Q python -l info

It consumes the `python` queue, so the Nest worker (on `celery`) never sees a task
it does not define.
"""
import os

from celery import Celery

broker = os.environ.get('CELERY_BROKER_URL', 'redis://127.0.0.1:6379/0')
backend = os.environ.get('CELERY_RESULT_BACKEND') or broker.rsplit('/', 1)[0] + '/1'
app = Celery('nest_py', broker=broker, backend=backend)
app.conf.task_routes = {'py.*': {'queue': 'python'}}


@app.task(name='py.tasks.resize', bind=True)
def resize(self, image, width=128):
    """Pretend to make a thumbnail; say which request (id, trace context) asked for it."""
    stem, _, ext = image.rpartition('.')
    return {
        'thumbnail': f'{stem or image}_{width}.{ext or "png"}',
        'request_id': self.request.get('request_id'),
        'traceparent': self.request.get('traceparent'),
    }
