"""pytest plugin (``-p celeriac_suite_plugin``) for running Celery 5.2's own
integration tests (``t/integration``, unmodified) from scripts/celery-suite.mjs.

Four jobs (the tests themselves are never changed):

1. Always: the tests' ``get_redis_connection()`` builds ``StrictRedis(host=REDIS_HOST)``,
   i.e. port 6379. Our Redis runs on a free port, so once Celery's
   ``t/integration/conftest.py`` is loaded its ``get_redis_connection`` is replaced by
   one that also passes ``CELERIAC_SUITE_REDIS_PORT``. Nothing else changes, so the
   baseline run keeps Celery's in-process Python worker.

2. With ``CELERIAC_SUITE_WORKER`` set (a JSON list: the argv of a ``celeriac worker``):
   ``celery.contrib.pytest.celery_session_worker`` is replaced, before the conftest
   imports it, by a fixture that starts that command as a child process named as
   Celery's in-process worker would be (``anon_nodename()``, i.e. ``gen<pytest pid>@<host>``,
   which test_inspect.py expects), waits until it answers a remote-control ping, and
   stops it by its PID at the end of the session. The Python worker never starts.

3. Always: bind the conftest's class-based task before the worker fixture runs (see
   ``bind_class_based_tasks``), without which Celery 5.2's own worker cannot start.

4. With ``CELERIAC_SUITE_RESULTS`` set: write every test's outcome there as JSON.
"""
import json
import os
import signal
import subprocess
import time

import pytest

# Celery's fixtures (celery_session_app, celery_app, ...): pip's celery registers this
# module through the pytest-celery entry point; Debian's python3-celery has none.
pytest_plugins = ['celery.contrib.pytest']

REDIS_PORT = int(os.environ.get('CELERIAC_SUITE_REDIS_PORT', '6379'))
WORKER_ARGV = os.environ.get('CELERIAC_SUITE_WORKER')
WORKER_CWD = os.environ.get('CELERIAC_SUITE_WORKER_CWD')
WORKER_LOG = os.environ.get('CELERIAC_SUITE_WORKER_LOG', 'celeriac-suite-worker.log')
RESULTS_FILE = os.environ.get('CELERIAC_SUITE_RESULTS')


def _redis_connection():
    from redis import StrictRedis
    return StrictRedis(host=os.environ.get('REDIS_HOST'), port=REDIS_PORT)


def pytest_plugin_registered(plugin, manager):
    """Point the integration conftest's Redis helper at our port, before the test modules import it."""
    if getattr(plugin, '__name__', '').endswith('integration.conftest'):
        plugin.get_redis_connection = _redis_connection


@pytest.fixture(scope='session', autouse=True)
def bind_class_based_tasks(celery_session_app, celery_class_tasks):
    """Bind the conftest's class-based tasks (ClassBasedAutoRetryTask) to the session app.

    Celery 5.2's ``TaskRegistry.register`` instantiates a Task class without binding
    it, so its ``request_stack`` stays None and the in-process Python worker dies in
    ``build_tracer`` ("'NoneType' object has no attribute 'push'", celery/celery#7173)
    unless something touched ``task.app`` first. Binding here (autouse: before the
    worker fixture) is what that first touch would do; the tests are unchanged.
    """
    for class_task in celery_class_tasks:
        class_task.bind(celery_session_app)


# Outcome per test id, written as JSON to CELERIAC_SUITE_RESULTS at the end:
# passed / failed / error / skipped / xfailed / xpassed, and the first line of the reason.
_outcomes = {}


def _reason(report):
    crash = getattr(report.longrepr, 'reprcrash', None)
    if crash is not None:
        return crash.message.splitlines()[0] if crash.message else ''
    if isinstance(report.longrepr, tuple):  # skips: (file, line, reason)
        return str(report.longrepr[2])
    text = str(report.longrepr or '')
    return text.strip().splitlines()[-1] if text.strip() else ''


def pytest_runtest_logreport(report):
    entry = _outcomes.setdefault(report.nodeid, {'outcome': 'passed', 'reason': ''})
    is_subtest = type(report).__name__ == 'SubTestReport'
    if report.failed:
        outcome = 'failed' if report.when == 'call' or is_subtest else 'error'
        if entry['outcome'] not in ('failed', 'error'):
            entry.update(outcome=outcome, reason=_reason(report))
    elif report.skipped and entry['outcome'] == 'passed':
        entry.update(outcome='xfailed' if hasattr(report, 'wasxfail') else 'skipped', reason=_reason(report))
    elif report.passed and report.when == 'call' and hasattr(report, 'wasxfail'):
        entry['outcome'] = 'xpassed'


def pytest_sessionfinish(session):
    if RESULTS_FILE:
        with open(RESULTS_FILE, 'w') as out:
            json.dump(_outcomes, out, indent=1, sort_keys=True)


class CeleriacWorker:
    """What the tests get instead of a WorkController: the child process and its node name."""

    def __init__(self, process, hostname):
        self.process = process
        self.hostname = hostname


def _stop(process):
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope='session', name='celery_session_worker')
def celeriac_session_worker(celery_session_app, celery_includes, celery_class_tasks):
    """Session fixture: a Celeriac worker in a child process instead of Celery's in-process one."""
    from celery.utils.nodenames import anon_nodename

    # The test process is only a client, but it still needs the task classes registered.
    for module in celery_includes:
        celery_session_app.loader.import_task_module(module)
    for class_task in celery_class_tasks:
        celery_session_app.tasks.register(class_task)

    hostname = anon_nodename()
    argv = json.loads(WORKER_ARGV) + ['--hostname', hostname]
    log = open(WORKER_LOG, 'ab')
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=WORKER_CWD)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f'celeriac worker exited with {process.returncode}; see {WORKER_LOG}')
            replies = celery_session_app.control.ping(destination=[hostname], timeout=1.0)
            if any(hostname in reply for reply in replies):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f'celeriac worker {hostname} did not answer ping within 60 s; see {WORKER_LOG}')
        yield CeleriacWorker(process, hostname)
    finally:
        _stop(process)
        log.close()


if WORKER_ARGV:
    # The conftest does `from celery.contrib.pytest import celery_app, celery_session_worker`,
    # so the replacement must be in that module before the conftest is imported (now).
    import celery.contrib.pytest as celery_pytest
    celery_pytest.celery_session_worker = celeriac_session_worker
