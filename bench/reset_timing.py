"""Does POST /api/auth/password-reset take as long for an unknown address as for a known one?

    NEXUS_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus_h16_bench \\
        .venv/bin/python bench/reset_timing.py [--rounds 400]

Serves the whole WSGI app (webtest: throttles, database, token, template, envelope) on the
database named in the URL (dropped and created), registers one account, then asks for resets
of that account and of unknown addresses in interleaved rounds (known, unknown, known, ...),
each from its own client address so the throttles never refuse. Prints the median and p90 of
both and their ratio: a ratio near 1 means the answer's time tells nothing about whether an
account exists (the mail itself leaves after the commit, from the mailer's thread). Measured
in one run on whatever else the machine is doing: read the ratio, not the milliseconds.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alembic import command  # noqa: E402
from webtest import TestApp  # noqa: E402

from nexus_pyramid import make_app  # noqa: E402
from tests.conftest import alembic_config, make_settings, recreate_postgres_database  # noqa: E402


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=400)
    args = parser.parse_args(argv)
    url = os.environ.get("NEXUS_BENCH_DATABASE_URL")
    if not url:
        print("set NEXUS_BENCH_DATABASE_URL to a PostgreSQL database the bench may drop", file=sys.stderr)
        return 2
    recreate_postgres_database(url)
    command.upgrade(alembic_config(url), "head")
    outbox = tempfile.mkdtemp(prefix="nexus-bench-mail-")
    app = TestApp(make_app(make_settings(url, **{"mail.outbox_dir": outbox, "nexus.gc_freeze": "false",
                                                 "auth.reset_limit_per_account": "1000000/hour"}), environ={}))
    app.post_json("/api/auth/register", {"name": "Known", "email": "known@example.com",
                                          "password": "correct horse battery"}, status=201)
    timings = {"known": [], "unknown": []}
    for i in range(args.rounds + 20):
        for kind in ("known", "unknown"):
            email = "known@example.com" if kind == "known" else f"nobody{i}@example.com"
            address = f"10.{i // 250 % 250}.{i % 250}.{1 if kind == 'known' else 2}"
            start = time.perf_counter()
            app.post_json("/api/auth/password-reset", {"email": email}, status=202,
                          extra_environ={"REMOTE_ADDR": address})
            if i >= 20:  # the first rounds warm caches and connections
                timings[kind].append(time.perf_counter() - start)
    print(f"{args.rounds} interleaved rounds, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for kind, values in timings.items():
        print(f"  {kind:8s} median {statistics.median(values) * 1000:6.2f} ms  p90 {percentile(values, 0.9) * 1000:6.2f} ms")
    ratio = statistics.median(timings["known"]) / statistics.median(timings["unknown"])
    print(f"  median known / unknown: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
