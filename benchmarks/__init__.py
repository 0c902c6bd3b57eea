"""Interleaved in-process benchmarks of fastapi-serdes against its peers; run ``python -m benchmarks``."""
