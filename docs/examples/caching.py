"""Articles served from the response cache: ``uvicorn caching:app``.

Set ``REDIS_URL`` (e.g. ``redis://localhost:6379/0``) to share the cache between replicas;
without it, each process keeps its own in-memory cache.
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel

from fastapi_serdes import ProblemError, SerdesMiddleware, SerdesRoute, Store, cached, invalidate


class ArticleIn(BaseModel):
    title: str
    body: str


class Article(ArticleIn):
    id: int


def author_of(request: Request) -> str | None:
    """The principal of a request. A real app reads a verified token here, never a raw header."""
    token = request.headers.get("authorization", "")
    return token.removeprefix("Bearer ") or None


def response_store() -> Store | bool:
    """Redis when ``$REDIS_URL`` is set (every replica shares it), else in this process."""
    url = os.environ.get("REDIS_URL")
    if not url:
        return True  # an in-process MemoryStore
    from fastapi_serdes.cache.redis_store import RedisStore

    return RedisStore(url)


def create_app(cache: Store | bool | None = None) -> FastAPI:
    """A new app with its own articles; ``calls`` counts how often each endpoint really ran.

    ``cache`` is the middleware's ``cache=`` (default: :func:`response_store`).
    """
    store = response_store() if cache is None else cache
    articles = {1: Article(id=1, title="Hello", body="First post.")}
    calls = {"get": 0, "list": 0, "drafts": 0}
    router = APIRouter(prefix="/articles", route_class=SerdesRoute)

    @router.get("")
    @cached(30, tags=lambda request: ["articles"])
    async def list_articles() -> list[Article]:
        calls["list"] += 1
        return list(articles.values())

    @router.get("/{article_id}")
    @cached(60)
    async def get_article(article_id: int) -> Article:
        calls["get"] += 1
        article = articles.get(article_id)
        if article is None:
            raise ProblemError(404, detail=f"No article {article_id}.")  # never cached
        return article

    @router.put("/{article_id}")
    async def put_article(article_id: int, article: ArticleIn, request: Request) -> Article:
        articles[article_id] = stored = Article(id=article_id, **article.model_dump())
        # A successful PUT drops the entries of /articles/{article_id} by itself;
        # the list lives at another path, so drop it by its tag.
        await invalidate(request, tags=["articles"])
        return stored

    @router.get("/drafts/mine")
    @cached(30, key=author_of)  # one entry per author; requests without a token skip the cache
    async def my_drafts(request: Request) -> dict[str, str | None]:
        calls["drafts"] += 1
        return {"author": author_of(request)}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if not isinstance(store, bool):
            await store.aclose()  # a RedisStore closes its connections

    app = FastAPI(lifespan=lifespan)
    app.add_middleware(SerdesMiddleware, cache=store)
    app.include_router(router)
    app.state.calls = calls
    return app


app = create_app()
