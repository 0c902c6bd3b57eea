"""fastapi-serdes: format negotiation, views, caching, compression and telemetry for FastAPI."""

from ._types import Codec, Store
from .cache import cached
from .cache.fragments import cached_fragments
from .cache.invalidation import invalidate
from .cache.memory_store import MemoryStore
from .cache.response_cache import ResponseCache
from .codecs import JSONCodec, MsgPackCodec
from .compression import Compression
from .compression.layer import no_compression
from .middleware import SerdesMiddleware
from .problems import DecodeError, EncodeError, ProblemError, SerdesError
from .response import SerdesResponse
from .route import SerdesRoute
from .settings import Negotiated, SerdesSettings
from .state import negotiated_of
from .telemetry import Telemetry
from .views import ALL, Selection, Views, selection
from .whole_app import use_serdes_routes

__version__ = "0.2.0.dev0"

__all__ = [
    "ALL",
    "Codec",
    "Compression",
    "DecodeError",
    "EncodeError",
    "JSONCodec",
    "MemoryStore",
    "MsgPackCodec",
    "Negotiated",
    "ProblemError",
    "ResponseCache",
    "Selection",
    "SerdesError",
    "SerdesMiddleware",
    "SerdesResponse",
    "SerdesRoute",
    "SerdesSettings",
    "Store",
    "Telemetry",
    "Views",
    "__version__",
    "cached",
    "cached_fragments",
    "invalidate",
    "negotiated_of",
    "no_compression",
    "selection",
    "use_serdes_routes",
]
