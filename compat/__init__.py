"""Compatibility harness: FastAPI's own test suite, run with fastapi-serdes injected."""
