"""Load tests and benchmarks of the served pipeline (``thaiplate bench``, ``scripts/benchmark``).

- :mod:`~thaiplate.bench.stats`: pure numbers (percentiles, error rate, throughput, stalls, ratios);
- :mod:`~thaiplate.bench.payloads`: the request bodies (synthetic scenes + real crops);
- :mod:`~thaiplate.bench.load`: the closed/open-loop driver and the TorchServe metrics scrape;
- :mod:`~thaiplate.bench.memory`: PSS/RSS of a process tree from ``/proc`` (one sampler for all);
- :mod:`~thaiplate.bench.report`: markdown table, JSON and PNG;
- :mod:`~thaiplate.bench.cli`: ``thaiplate bench``; :mod:`~thaiplate.bench.side_by_side` and
  :mod:`~thaiplate.bench.memory_cli`: ``scripts/benchmark`` and ``scripts/measure-memory``.
"""
