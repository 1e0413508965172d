"""Brute-force crontab next runs, independent of Celery and of Celeriac's code.

For test/beat-interop.test.ts: where Celery 5.2 is an hour off around daylight-saving
changes, Celeriac's next runs must equal these. Scans real (UTC) minutes with
Python's zoneinfo and matches the local wall time, with the documented rules:
all five fields must match (day of month AND day of week); a wall time shown twice
(fall back) fires at its first occurrence only, unless the hour field is every
hour; a wall time skipped (spring forward) fires at the first instant after the jump.

argv[1]: JSON {"zone": name, "rows": [{"fields": {minute: [..], hour: [..], dow: [..], dom: [..], month: [..]},
                                        "after": iso, "count": n}]}
  (fields as expanded sets; dow 0 = Sunday)
stdout: JSON [[iso utc, ...], ...] one list per row
"""
import json
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

spec = json.loads(sys.argv[1])
zone = ZoneInfo(spec['zone'])
MINUTE = timedelta(minutes=1)


def matches_date(f, d):
    return d.month in f['month'] and d.day in f['dom'] and (d.isoweekday() % 7) in f['dow']


def runs_on(f, day):
    """Every run instant (UTC) whose wall time falls on local date `day`."""
    every_hour = len(f['hour']) == 24
    start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) - timedelta(hours=16)
    if start.astimezone(zone).utcoffset() == (start + timedelta(hours=56)).astimezone(zone).utcoffset():
        # No offset change near this day: each wall time names exactly one instant.
        return [datetime(day.year, day.month, day.day, h, m, tzinfo=zone).astimezone(timezone.utc) for h in sorted(f['hour']) for m in sorted(f['minute'])]
    out = []
    prev = start.astimezone(zone)
    t = start + MINUTE
    while t < start + timedelta(hours=56):
        local = t.astimezone(zone)
        wall_prev = prev.replace(tzinfo=None)
        wall = local.replace(tzinfo=None)
        if wall - wall_prev > MINUTE:  # clocks jumped forward: skipped wall minutes fire now
            w = wall_prev + MINUTE
            while w < wall:
                if w.date() == day and w.hour in f['hour'] and w.minute in f['minute']:
                    out.append(t)
                    break
                w += MINUTE
        if wall.date() == day and wall.hour in f['hour'] and wall.minute in f['minute']:
            if local.fold == 0 or every_hour:
                out.append(t)
        prev = local
        t += MINUTE
    return out


def next_after(f, after):
    local_day = after.astimezone(zone).date() - timedelta(days=1)
    for _ in range(366 * 29):
        if matches_date(f, local_day):
            later = [t for t in runs_on(f, local_day) if t > after]
            if later:
                return min(later)
        local_day += timedelta(days=1)
    raise ValueError('never')


result = []
for row in spec['rows']:
    f = {k: set(v) for k, v in row['fields'].items()}
    last = datetime.fromisoformat(row['after'].replace('Z', '+00:00'))
    runs = []
    for _ in range(row['count']):
        last = next_after(f, last)
        runs.append(last.strftime('%Y-%m-%dT%H:%M:%S.000Z'))
    result.append(runs)
json.dump(result, sys.stdout)
