"""fastapi-serdes: format negotiation, views, caching, compression and telemetry for FastAPI."""

from ._types import Codec
from .codecs import JSONCodec, MsgPackCodec
from .compression import Compression
from .compression_layer import no_compression
from .middleware import SerdesMiddleware
from .problems import DecodeError, EncodeError, ProblemError, SerdesError
from .route import SerdesResponse, SerdesRoute
from .settings import SCOPE_KEY, Negotiated, SerdesSettings
from .views import ALL, Selection, Views, selection

__version__ = "0.1.0"

__all__ = [
    "ALL",
    "SCOPE_KEY",
    "Codec",
    "Compression",
    "DecodeError",
    "EncodeError",
    "JSONCodec",
    "MsgPackCodec",
    "Negotiated",
    "ProblemError",
    "Selection",
    "SerdesError",
    "SerdesMiddleware",
    "SerdesResponse",
    "SerdesRoute",
    "SerdesSettings",
    "Views",
    "__version__",
    "no_compression",
    "selection",
]
