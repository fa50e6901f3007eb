"""Benchmarks: ``python -m benchmarks.widgets`` times every live explorer's update."""
