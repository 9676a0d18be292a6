"""Type stubs for the native extension ``fast_litellm._native`` (private; use the package API)."""

from os import PathLike
from typing import (
    Any,
    Awaitable,
    Callable,
    Iterable,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
    final,
)

__all__ = [
    "__version__",
    "_testing_panic",
    "_after_fork",
    "Encoding",
    "ENCODING_NAMES",
    "RateLimiter",
    "RateLimitResult",
    "ManualClock",
    "RATE_LIMIT_MAX_KEY_LENGTH",
    "RATE_LIMIT_MAX_NS",
    "RedisRateLimiter",
    "REDIS_GCRA_SCRIPT",
]

__version__: str
ENCODING_NAMES: List[str]

# Stub-only alias (private, so the stub check does not look for it in the module).
_EncodingName = Literal["r50k_base", "p50k_base", "cl100k_base", "o200k_base"]

@final
class Encoding:
    """One loaded BPE vocabulary; immutable and safe to share between threads."""

    @staticmethod
    def load(name: _EncodingName, path: Union[str, PathLike[str]]) -> Encoding: ...
    @property
    def name(self) -> _EncodingName: ...
    def count(self, text: str) -> int: ...
    def count_batch(self, texts: Iterable[str]) -> List[int]: ...
    def encode(self, text: str) -> List[int]: ...
    def count_messages(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Optional[Sequence[Mapping[str, Any]]] = None,
        tool_choice: Any = None,
        *,
        legacy_accounting: bool = False,
    ) -> int: ...

def _testing_panic(message: str) -> None: ...
def _after_fork() -> None:
    """Called in a forked child (``os.register_at_fork``): resets the I/O runtime, the counting
    pool and the asyncio bridge, whose threads did not survive the fork."""

REDIS_GCRA_SCRIPT: str

@final
class RedisRateLimiter:
    """A rate limiter whose state lives in Redis: one atomic Lua script per check (see
    ``fast_litellm.ratelimit.redis_backend``). Backend failures raise ``RateLimitBackendError``."""

    def __new__(
        cls,
        backend: Union[str, Sequence[str]],
        request_interval_ns: Optional[int],
        burst: Optional[int],
        token_interval_ns: Optional[int],
        token_burst: Optional[int],
        *,
        key_prefix: str = ...,  # "fast_litellm"
        timeout: float = 0.05,
    ) -> RedisRateLimiter: ...
    def check(self, key: str, cost: int = 1, tokens: int = 0) -> "RateLimitResult": ...
    def peek(self, key: str, cost: int = 1, tokens: int = 0) -> "RateLimitResult": ...
    def acheck(self, key: str, cost: int = 1, tokens: int = 0) -> Awaitable["RateLimitResult"]: ...
    def apeek(self, key: str, cost: int = 1, tokens: int = 0) -> Awaitable["RateLimitResult"]: ...
    def reset(self, key: str) -> bool: ...
    def areset(self, key: str) -> Awaitable[bool]: ...
    def ping(self) -> None: ...
    def aping(self) -> Awaitable[None]: ...
    def redis_keys(self, key: str) -> Tuple[str, str]: ...
    @property
    def backend(self) -> str: ...
    @property
    def is_cluster(self) -> bool: ...
    @property
    def key_prefix(self) -> str: ...
    @property
    def timeout(self) -> float: ...

RATE_LIMIT_MAX_KEY_LENGTH: int
RATE_LIMIT_MAX_NS: int

@final
class ManualClock:
    """A clock that moves only when told to; a limiter reads it with no Python call."""

    def __new__(cls, start: Optional[float] = None) -> ManualClock: ...
    def now(self) -> float: ...
    def now_ns(self) -> int: ...
    def advance(self, seconds: float) -> None: ...
    def advance_ns(self, nanoseconds: int) -> None: ...
    def set(self, seconds: float) -> None: ...
    def set_ns(self, nanoseconds: int) -> None: ...

@final
class RateLimitResult:
    """The answer to one check; truthy when allowed."""

    @property
    def allowed(self) -> bool: ...
    @property
    def remaining(self) -> int: ...
    @property
    def retry_after(self) -> float: ...
    @property
    def reset_after(self) -> float: ...
    @property
    def limit(self) -> int: ...
    @property
    def remaining_tokens(self) -> Optional[int]: ...
    @property
    def token_limit(self) -> Optional[int]: ...
    def __bool__(self) -> bool: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class RateLimiter:
    """The in-process GCRA limiter (see ``fast_litellm._fallback.ratelimit`` for the rule)."""

    def __new__(
        cls,
        request_interval_ns: Optional[int],
        burst: Optional[int],
        token_interval_ns: Optional[int],
        token_burst: Optional[int],
        *,
        clock: Any = None,
        on_error: Optional[Callable[[BaseException], Any]] = None,
    ) -> RateLimiter: ...
    # The defaults are cost=1, tokens=0 (the module's signatures show them as "...").
    def check(self, key: str, cost: int = ..., tokens: int = ...) -> RateLimitResult: ...
    def allow(self, key: str, cost: int = ..., tokens: int = ...) -> bool: ...
    def peek(self, key: str, cost: int = ..., tokens: int = ...) -> RateLimitResult: ...
    def reset(self, key: str) -> None: ...
    def cleanup(self) -> int: ...
    def stats(self) -> dict[str, int]: ...
    def _testing_fail_next(self) -> None: ...
