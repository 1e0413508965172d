"""Celery producer / round-trip client, run as its own process by bench/run.ts.

  python3 client.py enqueue <n>              -> {"ms": ...}   (add.delay in a plain loop)
  python3 client.py roundtrip <n> <warmup>   -> {"latencies": [...ms]}  (add.delay(...).get())
"""
import json
import sys
import time

from bench_tasks import add, app


def warm_up():
    # Connect before timing (all systems do): the producer pool's connection and the backend.
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=3)
    app.backend.client.ping()


def enqueue(n):
    warm_up()
    t0 = time.perf_counter()
    for i in range(n):
        add.delay(i, i)
    ms = (time.perf_counter() - t0) * 1000
    # Close the pooled broker connection with the AMQP handshake (connection.close,
    # close-ok): RabbitMQ answers after it has handled every publish before it. Exiting
    # with the socket open can reset it (unread heartbeats in its receive buffer), and
    # RabbitMQ then drops publishes it had not read yet: 9,735 or 9,899 of 10,000 queued.
    # A no-op on Redis (publishes are replies-awaited there).
    with app.producer_or_acquire() as producer:
        producer.connection.release()
    return {'ms': ms}


def roundtrip(n, warmup):
    warm_up()
    latencies = []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        v = add.delay(i, i).get(timeout=10)
        ms = (time.perf_counter() - t0) * 1000
        if v != 2 * i:
            raise RuntimeError('bench.add(%d, %d) returned %r' % (i, i, v))
        if i >= warmup:
            latencies.append(ms)
    return {'latencies': latencies}


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    if mode == 'enqueue':
        out = enqueue(n)
    elif mode == 'roundtrip':
        out = roundtrip(n, int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    else:
        raise SystemExit('unknown mode %s' % mode)
    sys.stdout.write(json.dumps(out) + '\n')
    sys.stdout.flush()


if __name__ == '__main__':
    main()
