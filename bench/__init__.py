"""Benchmark and test harness code: what measures the product and drives it from outside
(simulated speakers and cameras, a WebRTC client, the real site in subprocesses). Nothing in the
product's runtime imports this package; the ``bench_*`` management commands and the tests do."""
