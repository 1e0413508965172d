"""Firing times of Python Celery 5.2's own beat Scheduler over a simulated period.

Used by test/beat-interop.test.ts: the same entries are run through Celeriac's beat
on a simulated clock and the two lists are compared. Celery's real
``celery.beat.Scheduler`` does the work (``tick()``, ``reserve()``, the entries'
``is_due``); only its clock is simulated and ``apply_async`` records the time
instead of sending.

argv[1]: JSON {"zone": "Asia/Shanghai", "start": iso, "end": iso,
               "entries": {name: {"crontab": {minute, hour, day_of_week, day_of_month, month_of_year}}
                                | {"interval": seconds, "relative": bool}}}
stdout: JSON {"celery": version, "fired": [[name, iso utc], ...]}
"""
import json
import sys
from datetime import datetime, timedelta, timezone

import celery
from celery import Celery
from celery.beat import Scheduler
from celery.schedules import crontab, schedule

spec = json.loads(sys.argv[1])
start = datetime.fromisoformat(spec['start'].replace('Z', '+00:00'))
end = datetime.fromisoformat(spec['end'].replace('Z', '+00:00'))
clock = [start]


def now():
    # What Celery.now() returns: the current time in the app's time zone.
    return clock[0].astimezone(app.timezone)


app = Celery('beat_firing_times', broker='memory://', set_as_current=False)
app.conf.timezone = spec['zone']
app.conf.enable_utc = True
app.now = now

beat_schedule = {}
for name, entry in spec['entries'].items():
    if 'crontab' in entry:
        sched = crontab(nowfun=now, app=app, **entry['crontab'])
    else:
        sched = schedule(timedelta(seconds=entry['interval']), relative=entry.get('relative', False), nowfun=now, app=app)
    beat_schedule[name] = {'task': 'cmp.' + name, 'schedule': sched}
app.conf.beat_schedule = beat_schedule

fired = []


class RecordingScheduler(Scheduler):
    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        fired.append([entry.name, clock[0].astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z'])
        return SentResult()


class SentResult:
    id = 'recorded'


scheduler = RecordingScheduler(app, lazy=False)
while clock[0] < end:
    interval = scheduler.tick()
    # Beat sleeps `interval` (Celery subtracts a 10 ms drift allowance; add it back so the
    # simulated clock lands on the due time instead of 10 ms before it).
    step = interval + 0.010 if interval > 0 else 0
    if step > 0:
        clock[0] = min(clock[0] + timedelta(seconds=step), end)

json.dump({'celery': celery.__version__, 'fired': fired}, sys.stdout)
