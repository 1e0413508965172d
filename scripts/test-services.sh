#!/usr/bin/env bash
# Install, from Debian, the real servers the test suite talks to, when missing:
# redis-server and Python Celery 5.2 (with its Redis client, msgpack and yaml) for the
# interop tests, openssl (TLS test certificates), script (a pseudo-terminal for the log
# test) and tzdata (the zone files Python's zoneinfo and Celery read in the beat interop tests).
# Idempotent and quiet when everything is there. Tests start their own servers.
set -euo pipefail

need=()
[ -x /usr/bin/redis-server ] || need+=(redis-server)
/usr/bin/python3 -c 'import celery' 2>/dev/null || need+=(python3-celery)
/usr/bin/python3 -c 'import redis' 2>/dev/null || need+=(python3-redis)
/usr/bin/python3 -c 'import msgpack' 2>/dev/null || need+=(python3-msgpack)  # kombu's msgpack serializer (interop-serializers test)
/usr/bin/python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)        # kombu's yaml serializer
[ -x /usr/bin/openssl ] || need+=(openssl)    # certificates for the rediss:// (TLS) tests
[ -x /usr/bin/script ] || need+=(bsdutils)    # a pseudo-terminal for the coloured-log test
[ -f /usr/share/zoneinfo/Europe/Berlin ] || need+=(tzdata)    # zones for Python in the beat interop tests

if [ ${#need[@]} -eq 0 ]; then
  echo "test-services: redis-server, python3-celery (+ redis, msgpack, yaml), openssl, script and tzdata present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "test-services: installing ${need[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
# The Debian package starts a system redis on 6379; tests use their own ports, so stop it.
if [ -x /usr/bin/systemctl ] && systemctl is-active --quiet redis-server 2>/dev/null; then $SUDO systemctl stop redis-server || true; fi
