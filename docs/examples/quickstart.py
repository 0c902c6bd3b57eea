"""A small item store that answers in JSON or MessagePack: ``uvicorn quickstart:app``."""

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from fastapi_serdes import ProblemError, SerdesMiddleware, SerdesRoute


class ItemIn(BaseModel):
    name: str
    price: float
    tags: list[str] = []


class Item(ItemIn):
    id: int


def create_app() -> FastAPI:
    """A new app with its own in-memory store (tests build one each)."""
    items: dict[int, Item] = {1: Item(id=1, name="Widget", price=9.5, tags=["tools"])}

    # Routes on this router answer in the negotiated format and read JSON or MessagePack bodies.
    router = APIRouter(prefix="/items", route_class=SerdesRoute)

    @router.get("/{item_id}")
    async def get_item(item_id: int) -> Item:
        item = items.get(item_id)
        if item is None:
            raise ProblemError(404, detail=f"No item with id {item_id}.")
        return item

    @router.post("", status_code=201)
    async def create_item(item: ItemIn) -> Item:
        created = Item(id=max(items, default=0) + 1, **item.model_dump())
        items[created.id] = created
        return created

    app = FastAPI(title="Items")
    app.add_middleware(SerdesMiddleware)
    app.include_router(router)

    # A plain FastAPI route: the middleware transcodes its JSON for MessagePack clients.
    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


app = create_app()
