"""``ProblemError`` as its full problem document on every route: one exception handler renders
it (other errors keep FastAPI's shape)."""

from fastapi import FastAPI, Request
from starlette.responses import Response

from fastapi_serdes import ProblemError, SerdesMiddleware


async def render_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return exc.to_response(instance=request.url.path)


app = FastAPI()
app.add_middleware(SerdesMiddleware)
app.add_exception_handler(ProblemError, render_problem)


@app.get("/orders/{order_id}")
async def get_order(order_id: int) -> dict[str, int]:
    raise ProblemError(
        404,
        type="https://example.com/problems/no-such-order",
        title="No such order",
        detail=f"There is no order {order_id}.",
        order_id=order_id,
    )
