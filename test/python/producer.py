"""Python Celery 5.2 producer for the Celeriac interop tests.

    INTEROP_BROKER_URL=... INTEROP_BACKEND_URL=... /usr/bin/python3 producer.py <case> [arg]

Sends tasks the way a Python web app would (``delay`` / ``apply_async`` on
task objects, or ``send_task``), waits with ``AsyncResult.get()`` and prints
ONE line of JSON on stdout describing exactly what the Python side saw. The
test asserts on that. Exceptions raised by ``get()`` are described, not
re-raised: ``{"raised": {"type", "module", "args", "str", ...}}``.
"""
import json
import sys
import time
from datetime import datetime, timedelta, timezone

from celery.result import AsyncResult

from interop_tasks import app, who

TIMEOUT = 15  # seconds for each get(); the test itself has a longer guard


# Stubs of the tasks the Celeriac worker implements (test/apps/interop-app.ts).
# A Python producer declares them like any task and calls delay/apply_async;
# no Python worker consumes them in these tests.
def _stub(name):
    def run(*args, **kwargs):
        raise NotImplementedError('%s runs on the Celeriac worker' % name)
    run.__name__ = name.replace('.', '_')
    return app.task(name=name)(run)


ts_add = _stub('ts.add')
ts_kwargs = _stub('ts.kwargs')
ts_add_positional = _stub('ts.add_positional')
ts_kwargs_accepted = _stub('ts.kwargs_accepted')
ts_fail = _stub('ts.fail')
ts_fail_custom = _stub('ts.fail_custom')
ts_collect = _stub('ts.collect')
ts_flaky = _stub('ts.flaky')
ts_now = _stub('ts.now')
ts_sleep = _stub('ts.sleep')


def jsonable(value):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def describe(exc):
    cls = type(exc)
    return {
        'type': cls.__name__,
        'module': cls.__module__,
        'args': [jsonable(a) for a in exc.args],
        'str': str(exc),
        'is_TypeError': isinstance(exc, TypeError),
        'is_builtin_class': cls.__module__ == 'builtins',
    }


def outcome(result):
    """get() the result; describe the value or the exception it raised."""
    out = {'id': result.id}
    try:
        out['value'] = result.get(timeout=TIMEOUT)
    except Exception as exc:  # noqa: BLE001 — the point is to report it
        out['raised'] = describe(exc)
    out['state'] = result.state
    tb = result.traceback
    out['traceback'] = tb if isinstance(tb, str) else None
    return out


def states_until_ready(result, timeout=TIMEOUT):
    """Poll the stored state; list every distinct state seen, in order, and
    what ``AsyncResult.result`` was while the state was RETRY."""
    seen = []
    retry_result = 'never seen'
    deadline = time.time() + timeout
    while time.time() < deadline:
        result._cache = None
        meta = result._get_task_meta()
        state = meta['status']
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == 'RETRY' and retry_result == 'never seen':
            value = meta.get('result')
            retry_result = describe(value) if isinstance(value, BaseException) else jsonable(value)
        if state in ('SUCCESS', 'FAILURE', 'REVOKED'):
            break
        time.sleep(0.02)
    return seen, retry_result


# ----------------------------------------------------------------------- cases

def case_delay_args():
    return outcome(ts_add.delay(2, 3))


def case_send_task():
    # By name only, no task object (what a service that does not import the task does).
    return outcome(app.send_task('ts.add', args=(20, 22)))


def case_not_registered():
    return outcome(app.send_task('ts.does_not_exist', args=(1,)))


def case_kwargs_by_name():
    # ts.add declares argNames ['x', 'y']: Python keyword arguments fill them.
    return outcome(ts_add.apply_async(kwargs={'x': 4, 'y': 5}))


def case_kwargs_trailing():
    return outcome(ts_kwargs.apply_async(args=(1, 'two'), kwargs={'flag': True, 'n': [1, 2], 'name': 'élan'}))


def case_kwargs_undeclared():
    # ts.add_positional declares no argNames: Celery would raise TypeError for unexpected kwargs.
    return outcome(ts_add_positional.apply_async(kwargs={'x': 1, 'y': 2}))


def case_kwargs_accepted():
    return outcome(ts_kwargs_accepted.apply_async(args=(7,), kwargs={'mode': 'fast'}))


def case_countdown():
    sent = time.time()
    out = outcome(ts_now.apply_async(countdown=1))
    out['sent'] = sent
    return out


def case_expires_past():
    past = datetime.now(timezone.utc) - timedelta(seconds=30)
    return outcome(ts_add.apply_async((1, 1), expires=past))


def case_expires_before_eta():
    # Expires 2 s from now but may not start before 4 s: Celery revokes it when
    # the eta comes (the expiry is checked again before execution). The wide
    # margin makes sure the worker receives it well before it expires, so the
    # check on receipt alone cannot pass this case.
    sent = time.time()
    out = outcome(ts_add.apply_async((1, 1), countdown=4, expires=2))
    out['elapsed'] = time.time() - sent
    return out


def case_link():
    add10 = ts_add.s(10)
    add10.freeze()
    collect = ts_collect.s('tagged')
    collect.freeze()
    result = ts_add.apply_async((2, 2), link=[add10, collect])
    # The callbacks first: once the parent's result is read, its children (one GroupResult,
    # as Celery 5.2's tracer sends several callbacks as a group) register their own
    # AsyncResult objects as pending, and a second AsyncResult for the same id then waits
    # in vain (celery.backends.asynchronous) -- the same with a Python worker.
    callbacks = [outcome(AsyncResult(add10.id, app=app)), outcome(AsyncResult(collect.id, app=app))]
    out = outcome(result)
    out['callbacks'] = callbacks
    out['callback_ids'] = [add10.id, collect.id]
    result._cache = None
    # Celery 5.2's tracer sends several callbacks as one group: children = [GroupResult(callbacks)].
    out['children_kinds'] = [type(c).__name__ for c in (result.children or [])]
    out['children'] = sorted(r.id for c in (result.children or []) for r in (c.results if hasattr(c, 'results') else [c]))
    out['callback_parent_ids'] = [AsyncResult(i, app=app)._get_task_meta().get('parent_id') for i in out['callback_ids']]
    return out


def case_link_error():
    errback = ts_collect.s('errback')
    errback.freeze()
    out = outcome(ts_fail.apply_async(('bad input',), link_error=errback))
    out['errback'] = outcome(AsyncResult(errback.id, app=app))
    return out


def case_fail():
    return outcome(ts_fail.delay('bad input for ts.fail'))


def case_fail_custom():
    return outcome(ts_fail_custom.delay(42))


def case_retry():
    started = time.time()
    result = ts_flaky.delay('v1')
    states, retry_result = states_until_ready(result)
    out = outcome(result)
    out['elapsed'] = time.time() - started
    out['states'] = states
    out['retry_result'] = retry_result
    return out


def case_started():
    # ts.sleep(1) on a worker with track started: STARTED is seen before SUCCESS.
    result = ts_sleep.delay(1)
    states, _ = states_until_ready(result)
    out = outcome(result)
    out['states'] = states
    return out


def case_mixed(n='200'):
    """Send n mixed.who tasks (both workers implement it); read every result."""
    results = [who.delay(i) for i in range(int(n))]
    values = {}
    failures = {}
    for i, r in enumerate(results):
        try:
            values[str(i)] = r.get(timeout=TIMEOUT)
        except Exception as exc:  # noqa: BLE001
            failures[str(i)] = describe(exc)
    return {'ids': [r.id for r in results], 'values': values, 'failures': failures}


if __name__ == '__main__':
    name, *rest = sys.argv[1:]
    fn = globals().get('case_' + name)
    if fn is None:
        sys.exit('unknown case %r' % name)
    print(json.dumps(fn(*rest)), flush=True)
