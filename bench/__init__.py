"""Benchmarks of the statistical kernels and the pipeline (issue 9): ``python -m bench.run [--quick]``.

Results go to ``bench/results/*.json`` and ``docs/benchmarks.md``; see ``docs/benchmarks.md`` for what is
measured and how.
"""
