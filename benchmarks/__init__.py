"""Benchmarks: ``python -m benchmarks.loss`` (fused loss vs PyTorch), ``python -m benchmarks.widgets`` (every
live explorer's update), ``python -m benchmarks.audit`` (the cost of ``bw.audit()`` on a training loop)."""
