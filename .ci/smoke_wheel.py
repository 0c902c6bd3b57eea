"""Smoke check of the built wheel: run by .ci/run with the python of a fresh virtualenv that has
only the wheel (and httpx) installed, as ``python -I .ci/smoke_wheel.py README.md``.

It builds the README's quickstart app (the code is read from the README, so the two cannot drift)
and sends it a JSON and a MessagePack request through httpx's ASGI transport.
"""

import asyncio
import re
import sys
from pathlib import Path

import httpx
import msgpack

import fastapi_serdes

REPO = Path(__file__).resolve().parent.parent


def quickstart_code(readme: Path) -> str:
    section = readme.read_text(encoding="utf-8").split("## Quickstart", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "no python block in the README's Quickstart section"
    return found.group(1)


async def check(app: object) -> None:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        plain = await client.get("/users/1")
        assert plain.status_code == 200, plain.text
        assert plain.headers["content-type"] == "application/json"
        assert plain.json() == {"id": 1, "name": "Ada"}

        packed = await client.get("/users/1", headers={"accept": "application/msgpack"})
        assert packed.status_code == 200, packed.text
        assert packed.headers["content-type"] == "application/msgpack"
        assert msgpack.unpackb(packed.content) == {"id": 1, "name": "Ada"}

        created = await client.post(
            "/users",
            content=msgpack.packb({"id": 2, "name": "Grace"}),
            headers={"content-type": "application/msgpack", "accept": "application/msgpack"},
        )
        assert created.status_code == 201, created.text
        assert msgpack.unpackb(created.content) == {"id": 2, "name": "Grace"}


def main() -> None:
    installed = Path(fastapi_serdes.__file__).resolve()
    assert not installed.is_relative_to(REPO), f"imported the checkout, not the wheel: {installed}"
    assert "site-packages" in installed.parts, installed
    assert (installed.parent / "py.typed").is_file(), "the wheel lacks py.typed"
    namespace: dict[str, object] = {"__name__": "quickstart"}
    exec(compile(quickstart_code(Path(sys.argv[1])), "README quickstart", "exec"), namespace)
    asyncio.run(check(namespace["app"]))
    print(f"fastapi-serdes {fastapi_serdes.__version__} wheel OK ({installed.parent})")


if __name__ == "__main__":
    main()
