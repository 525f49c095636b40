"""Benchmarks of the job queue (not a test suite, not deployed). Run: python bench/run.py [--quick]."""
