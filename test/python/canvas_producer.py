"""Python Celery 5.2 producer for the Celeriac canvas interop tests.

    CANVAS_STUBS=1 INTEROP_BROKER_URL=... INTEROP_BACKEND_URL=... /usr/bin/python3 canvas_producer.py <case> [arg]

Builds canvases with Celery's own primitives, waits with ``get()`` and prints
ONE line of JSON with what the Python side saw.
"""
import json
import sys
import time

from celery import chain, chord, group
from celery.result import GroupResult

from canvas_tasks import add, app, fail, mul, py_only_add, py_only_xsum, xsum

TIMEOUT = 60  # generous: the CI machine may be loaded


def ts_only(name):
    return app.tasks[name]


def case_examples():
    """Every acceptance example of the canvas issue, with the value Python got."""
    out = {}
    r = add.apply_async((2, 2), link=add.s(16))
    r.get(timeout=TIMEOUT)
    out['link'] = r.children[0].get(timeout=TIMEOUT)
    out['group'] = group(add.s(i, i) for i in range(10))().get(timeout=TIMEOUT)
    out['chain'] = chain(add.s(2, 2), add.s(4), add.s(8))().get(timeout=TIMEOUT)
    out['pipe'] = (add.s(4, 4) | mul.s(8))().get(timeout=TIMEOUT)
    out['partial_chain'] = chain(add.s(4), mul.s(8))(4).get(timeout=TIMEOUT)
    out['arith'] = chain(add.s(4, 16), mul.s(2), add.s(4), mul.s(8))().get(timeout=TIMEOUT)
    out['chord'] = chord((add.s(i, i) for i in range(10)), xsum.s())().get(timeout=TIMEOUT)
    out['map'] = xsum.map([list(range(10)), list(range(100))]).delay().get(timeout=TIMEOUT)
    out['starmap'] = add.starmap(list(zip(range(10), range(10)))).delay().get(timeout=TIMEOUT)
    out['chunks'] = add.chunks(list(zip(range(100), range(100))), 10)().get(timeout=TIMEOUT)
    r = (add.si(2, 2) | add.si(4, 4) | add.si(8, 8))()
    out['immutable'] = [r.get(timeout=TIMEOUT), r.parent.get(timeout=TIMEOUT), r.parent.parent.get(timeout=TIMEOUT)]
    out['partial_group'] = group(add.s(i) for i in range(10))(10).get(timeout=TIMEOUT)
    # nesting
    out['group_then_task'] = chain(add.s(1, 1), group(add.s(1), add.s(2)), xsum.s())().get(timeout=TIMEOUT)
    out['chord_in_chain'] = chain(add.s(1, 1), chord([add.s(1), add.s(2)], xsum.s()), mul.s(10))().get(timeout=TIMEOUT)
    out['chain_ending_in_group'] = chain(add.s(2, 2), group(add.s(1), mul.s(3)))().get(timeout=TIMEOUT)
    out['group_of_chords'] = group(chord([add.s(1, 1), add.s(2, 2)], xsum.s()), chord([add.s(3, 3), add.s(4, 4)], xsum.s()))().get(timeout=TIMEOUT)
    return out


def case_alternating():
    """A chain alternating Python-only and Celeriac-only tasks."""
    ts_add = ts_only('ts.only_add')
    r = chain(py_only_add.s(1, 1), ts_add.s(10), py_only_add.s(100), ts_add.s(1000))()
    return {'value': r.get(timeout=TIMEOUT), 'parents': [r.parent.get(timeout=TIMEOUT), r.parent.parent.get(timeout=TIMEOUT)]}


def case_chord_ts_header_py_body():
    r = chord([ts_only('ts.only_add').s(i, i) for i in range(5)], py_only_xsum.s())()
    return {'value': r.get(timeout=TIMEOUT)}


def case_chord_py_header_ts_body():
    r = chord([py_only_add.s(i, i) for i in range(5)], ts_only('ts.only_xsum').s())()
    return {'value': r.get(timeout=TIMEOUT)}


def case_chord_failure():
    """get() re-raises the failed header member (Celery follows the parents); the body itself is a ChordError."""
    r = chord([add.s(1, 1), fail.s()], xsum.s())()
    out = {}
    try:
        r.get(timeout=TIMEOUT)
        out['raised'] = None
    except Exception as exc:  # noqa: BLE001
        out['raised'] = {'type': type(exc).__name__, 'str': str(exc)}
    # The body is stored as FAILURE by the worker that counted the last member: poll its
    # state (no parents followed), then read the exception Celery rebuilds from it.
    body = app.AsyncResult(r.id)
    deadline = time.monotonic() + TIMEOUT
    while body.state not in ('SUCCESS', 'FAILURE') and time.monotonic() < deadline:
        time.sleep(0.1)
    exc = body.result
    out['body'] = {'state': body.state, 'type': type(exc).__name__, 'str': str(exc)}
    return out


def case_save_group():
    res = group(add.s(1, 1), add.s(2, 2), add.s(3, 3))()
    res.get(timeout=TIMEOUT)
    res.save()
    return {'id': res.id, 'children': [r.id for r in res.results]}


def case_restore_group(group_id):
    res = GroupResult.restore(group_id, app=app)
    return {'children': [r.id for r in res.results], 'value': res.get(timeout=TIMEOUT)}


def case_signature_arg():
    """A canvas passed as a task argument: Celeriac's ts.only_apply rebuilds and sends it."""
    sig = chain(add.s(2, 2), mul.s(10))
    r = ts_only('ts.only_apply').delay(sig)
    return {'value': r.get(timeout=TIMEOUT)}


if __name__ == '__main__':
    name, *args = sys.argv[1:]
    result = globals()['case_' + name](*args)
    sys.stdout.write(json.dumps(result) + '\n')
