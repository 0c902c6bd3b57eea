"""A realistic video-platform service built on fastapi-serdes.

Run it with ``uvicorn example_app.main:app`` (or ``python -m example_app``) and ask for
``Accept: application/msgpack`` to get MessagePack instead of JSON. The data lives in SQLite
(the path comes from ``EXAMPLE_DB_PATH``) and is seeded deterministically on first start.
"""
