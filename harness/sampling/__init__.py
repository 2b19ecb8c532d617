"""Capture during a run: psutil sampler, memray capture reading, tracemalloc probe."""
