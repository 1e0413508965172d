#!/usr/bin/env bash
# Install, from Debian, the real servers the test suite talks to, when missing:
# redis-server, rabbitmq-server (the AMQP transport and rpc:// tests start their own
# node), redis-sentinel, and Python Celery 5.2 (with its Redis and AMQP clients, msgpack and yaml) for the
# interop tests, pytest with its subtests / timeout / rerunfailures plugins (Celery's own integration
# tests, scripts/celery-suite.mjs), openssl (TLS test certificates), script (a pseudo-terminal for the log
# test), tzdata (the zone files Python's zoneinfo and Celery read in the beat interop tests) and
# chromium (the dashboard's browser test drives Debian's /usr/bin/chromium headless; no browser is downloaded).
# Idempotent and quiet when everything is there. Tests start their own servers.
set -euo pipefail

need=()
[ -x /usr/bin/redis-server ] || need+=(redis-server)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
[ -x /usr/bin/redis-sentinel ] || need+=(redis-sentinel)
/usr/bin/python3 -c 'import amqp' 2>/dev/null || need+=(python3-amqp)
/usr/bin/python3 -c 'import celery' 2>/dev/null || need+=(python3-celery)
/usr/bin/python3 -c 'import redis' 2>/dev/null || need+=(python3-redis)
/usr/bin/python3 -c 'import msgpack' 2>/dev/null || need+=(python3-msgpack)  # kombu's msgpack serializer (interop-serializers test)
/usr/bin/python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)        # kombu's yaml serializer
# pytest and the plugins Celery's t/integration uses, for scripts/celery-suite.mjs (Celery's own tests; not run in CI).
/usr/bin/python3 -c 'import pytest' 2>/dev/null || need+=(python3-pytest)
/usr/bin/python3 -c 'import pytest_subtests' 2>/dev/null || need+=(python3-pytest-subtests)
/usr/bin/python3 -c 'import pytest_timeout' 2>/dev/null || need+=(python3-pytest-timeout)
/usr/bin/python3 -c 'import pytest_rerunfailures' 2>/dev/null || need+=(python3-pytest-rerunfailures)
[ -x /usr/bin/openssl ] || need+=(openssl)    # certificates for the rediss:// (TLS) tests
[ -x /usr/bin/script ] || need+=(bsdutils)    # a pseudo-terminal for the coloured-log test
[ -f /usr/share/zoneinfo/Europe/Berlin ] || need+=(tzdata)    # zones for Python in the beat interop tests
[ -x /usr/bin/chromium ] || need+=(chromium)  # headless browser for test/dashboard-browser.test.ts (playwright-core drives it)

if [ ${#need[@]} -eq 0 ]; then
  echo "test-services: redis-server, rabbitmq-server, redis-sentinel, python3-celery (+ redis, amqp, msgpack, yaml), python3-pytest (+ subtests, timeout, rerunfailures), openssl, script, tzdata and chromium present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "test-services: installing ${need[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
# The Debian package starts a system redis on 6379; tests use their own ports, so stop it.
if [ -x /usr/bin/systemctl ] && systemctl is-active --quiet redis-server 2>/dev/null; then $SUDO systemctl stop redis-server || true; fi
# Same for the system rabbitmq-server and redis-sentinel (tests run private nodes on free ports).
for svc in rabbitmq-server redis-sentinel; do
  if [ -x /usr/bin/systemctl ] && systemctl is-active --quiet "$svc" 2>/dev/null; then $SUDO systemctl stop "$svc" || true; fi
done
