"""`make bench`: the service under load from a native load generator, side by side with a bare app.

`python -m tests.bench` creates a scratch PostgreSQL database, migrates it, and runs two servers
as separate processes, one uvicorn worker each: the service (`serve`, production settings, INFO
logs to a file) and the bare app of `tests/bench/bare.py`, which does the same work with nothing
around it. The load comes from wrk (else oha, else a Python client, flagged when it is the
bottleneck), pinned to another core than the servers when the machine has two. Each scenario is
measured in alternating rounds; the table shows the median round's requests/s, p50 and p99,
errors and time-outs, and the server's CPU time per request from /proc, then cold start and
memory. A JSON copy goes to `.benchmarks/`.

`--breakdown` (`make bench-breakdown`) serves the item read with the stack built up one layer at a
time (`tests/bench/layers.py`); `--soak` reads the memory after 100,000 and 200,000 requests.
The benchmark reports; it never fails a build. BENCH_DURATION, BENCH_ROUNDS and BENCH_GENERATOR
set the defaults of --duration, --rounds and --generator.
"""
