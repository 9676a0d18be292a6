"""Type stubs for the native extension ``fast_litellm._native`` (private; use the package API)."""

from os import PathLike
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
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
    "ALLOCATOR",
    "CostTable",
    "cost_custom",
    "_testing_panic",
    "_after_fork",
    "_before_fork",
    "_after_fork_in_parent",
    "Encoding",
    "ENCODING_NAMES",
    "HfTokenizer",
    "ParsedRequest",
    "parse_chat_request",
    "_set_count_config",
    "RateLimiter",
    "RateLimitResult",
    "ManualClock",
    "RATE_LIMIT_MAX_KEY_LENGTH",
    "RATE_LIMIT_MAX_NS",
    "RedisRateLimiter",
    "REDIS_GCRA_SCRIPT",
    "HttpClient",
    "HttpStream",
    "SseDecoder",
    "parse_sse",
    "parse_retry_after",
    "backoff_delay",
    "metrics_record",
    "metrics_snapshot",
    "metrics_reset",
    "metrics_use_clock",
    "metrics_self_timing",
    "metrics_sample_every",
    "_metrics_probe",
    "METRICS_SLOT_SECONDS",
    "METRICS_WINDOW_SLOTS",
    "METRICS_BUILTIN_OPERATIONS",
    "ResponseCache",
    "cache_key",
    "CACHE_IGNORED_PARAMETERS",
    "CACHE_MAX_DEPTH",
    "Router",
    "HealthProber",
    "BudgetTracker",
    "BudgetCheck",
    "RedisBudget",
    "REDIS_BUDGET_SCRIPT",
    "BUDGET_MAX_NANODOLLARS",
]

__version__: str
# "jemalloc" (the built extension on Linux) or "system".
ALLOCATOR: Literal["jemalloc", "system"]
ENCODING_NAMES: List[str]

# Stub-only alias (private, so the stub check does not look for it in the module).
_EncodingName = Literal["r50k_base", "p50k_base", "cl100k_base", "o200k_base", "o200k_harmony"]

@final
class Encoding:
    """One loaded BPE vocabulary; immutable and safe to share between threads."""

    @staticmethod
    def load(name: _EncodingName, path: Union[str, PathLike[str], None] = ...) -> Encoding: ...
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
    def count_parsed(self, request: ParsedRequest, *, legacy_accounting: bool = False) -> int: ...
    def acount_parsed(
        self, request: ParsedRequest, *, legacy_accounting: bool = False
    ) -> Awaitable[int]: ...

@final
class HfTokenizer:
    """One loaded Hugging Face ``tokenizer.json``; immutable and safe to share between threads."""

    @staticmethod
    def load(path: Union[str, PathLike[str]]) -> HfTokenizer: ...
    @property
    def source(self) -> str: ...
    @property
    def accelerated(self) -> bool: ...
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
    def count_parsed(self, request: ParsedRequest, *, legacy_accounting: bool = False) -> int: ...
    def acount_parsed(
        self, request: ParsedRequest, *, legacy_accounting: bool = False
    ) -> Awaitable[int]: ...

@final
class ParsedRequest:
    """A chat-completions request body read by ``parse_chat_request``."""

    @property
    def model(self) -> Optional[str]: ...
    @property
    def needs_litellm(self) -> bool: ...
    @property
    def has_tools(self) -> bool: ...

def parse_chat_request(body: Union[bytes, str]) -> ParsedRequest: ...
def _set_count_config(chunk_chars: int, max_exact_chars: int) -> bool: ...
def _testing_panic(message: str) -> None: ...
def _after_fork() -> None:
    """Called in a forked child (``os.register_at_fork``): resets the I/O runtime, the counting
    pool and the asyncio bridge, whose threads did not survive the fork."""

def _before_fork() -> None:
    """Called in the parent right before ``fork()``: runtime threads finish writing into shared
    state (health-check answers) and start nothing more until ``_after_fork_in_parent``."""

def _after_fork_in_parent() -> None:
    """Called in the parent right after ``fork()``."""

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

# ---- HTTP client (fast_litellm.http wraps these) ------------------------------------------------

_Headers = List[Tuple[str, str]]
_Timeouts = Optional[Tuple[Optional[float], Optional[float], Optional[float], Optional[float]]]
_Event = Tuple[str, str, Optional[str], Optional[int]]
_Finished = Tuple[int, _Headers, bytes, float, int, str, str]
_RequestHeaders = Sequence[Union[Tuple[str, str], Tuple[bytes, bytes]]]
# (status, headers as received, http_version, whole body or None, open stream or None, elapsed)
_Exchange = Tuple[
    int,
    List[Tuple[bytes, bytes]],
    bytes,
    Optional[bytes],
    Optional["HttpStream"],
    float,
    Optional[bytes],
]

@final
class HttpStream:
    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> _Headers: ...
    @property
    def raw_headers(self) -> List[Tuple[bytes, bytes]]: ...
    @property
    def url(self) -> str: ...
    @property
    def http_version(self) -> str: ...
    @property
    def retries(self) -> int: ...
    @property
    def elapsed(self) -> float: ...
    @property
    def time_to_first_byte(self) -> Optional[float]: ...
    @property
    def time_to_first_event(self) -> Optional[float]: ...
    @property
    def at_end(self) -> bool: ...
    def try_read_chunk(self) -> Optional[bytes]: ...
    def try_read_events(self) -> Optional[List[_Event]]: ...
    def read_chunk(self) -> Optional[bytes]: ...
    def aread_chunk(self) -> Awaitable[Optional[bytes]]: ...
    def read_events(self) -> Optional[List[_Event]]: ...
    def aread_events(self) -> Awaitable[Optional[List[_Event]]]: ...
    def close(self) -> None: ...

@final
class HttpClient:
    def __new__(
        cls,
        *,
        base_url: Optional[str] = None,
        headers: Optional[Sequence[Tuple[str, str]]] = None,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
        keepalive_expiry: float = 300.0,
        stream_buffer_size: int = 65536,
        connect_timeout: Optional[float] = ...,  # 10.0
        read_timeout: Optional[float] = ...,  # 60.0
        write_timeout: Optional[float] = ...,  # 10.0
        pool_timeout: Optional[float] = ...,  # 10.0
        max_retries: int = 2,
        retry_on_status: Optional[Sequence[int]] = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        respect_retry_after: bool = True,
        max_concurrency: Optional[int] = None,
        adaptive_concurrency: bool = False,
        http2: bool = False,
        gzip_threshold: Optional[int] = None,
    ) -> HttpClient: ...
    def request(
        self,
        method: str,
        url: str,
        headers: _RequestHeaders,
        body: Optional[bytes] = None,
        timeout: _Timeouts = None,
    ) -> _Finished: ...
    def arequest(
        self,
        method: str,
        url: str,
        headers: _RequestHeaders,
        body: Optional[bytes] = None,
        timeout: _Timeouts = None,
    ) -> Awaitable[_Finished]: ...
    def stream(
        self,
        method: str,
        url: str,
        headers: _RequestHeaders,
        body: Optional[bytes] = None,
        timeout: _Timeouts = None,
    ) -> HttpStream: ...
    def astream(
        self,
        method: str,
        url: str,
        headers: _RequestHeaders,
        body: Optional[bytes] = None,
        timeout: _Timeouts = None,
    ) -> Awaitable[HttpStream]: ...
    def send(
        self,
        method: str,
        url: str,
        headers: _RequestHeaders,
        body: Optional[bytes] = None,
        timeout: _Timeouts = None,
    ) -> _Exchange: ...
    def asend(
        self,
        method: str,
        url: str,
        headers: _RequestHeaders,
        body: Optional[bytes] = None,
        timeout: _Timeouts = None,
    ) -> Awaitable[_Exchange]: ...
    def stats(self) -> dict[str, Any]: ...
    def cleanup_expired(self) -> int: ...
    def close(self) -> None: ...
    def aclose(self) -> Awaitable[None]: ...
    @property
    def closed(self) -> bool: ...

@final
class SseDecoder:
    def __new__(cls) -> SseDecoder: ...
    def feed(self, data: bytes) -> List[_Event]: ...
    def finish(self) -> List[_Event]: ...

def parse_sse(body: bytes) -> List[_Event]: ...
def parse_retry_after(value: str, now: float) -> Optional[float]: ...
def backoff_delay(attempt: int, base: float, cap: float, rand: float) -> float: ...

# ---- monitoring (src/metrics) ----------------------------------------------------------------

METRICS_SLOT_SECONDS: int
METRICS_WINDOW_SLOTS: int
METRICS_BUILTIN_OPERATIONS: List[str]

def metrics_record(operation: str, path: str, latency_ns: int, outcome: str = "ok") -> None: ...
def metrics_snapshot() -> List[Tuple[str, str, Dict[str, Any], Dict[str, Any]]]: ...
def metrics_reset() -> None: ...
def metrics_use_clock(clock: Optional[ManualClock] = None) -> None: ...
def metrics_self_timing(on: bool) -> bool: ...
def metrics_sample_every(every: Optional[int] = None) -> int: ...
def _metrics_probe(latencies_ns: Sequence[int]) -> Dict[str, Any]: ...

# ---- response cache (src/cache) --------------------------------------------------------------

CACHE_IGNORED_PARAMETERS: List[str]
CACHE_MAX_DEPTH: int

def cache_key(request: Mapping[str, Any]) -> str: ...

@final
class ResponseCache:
    def __new__(
        cls,
        max_entries: int,
        ttl_seconds: Optional[float] = None,
        max_bytes: Optional[int] = None,
        *,
        clock: Any = None,
    ) -> ResponseCache: ...
    def get(self, key: Union[str, Mapping[str, Any]], default: Any = None) -> Any: ...
    def set(
        self,
        key: Union[str, Mapping[str, Any]],
        value: Any,
        *,
        ttl: Optional[float] = None,
        size: Optional[int] = None,
    ) -> bool: ...
    def delete(self, key: Union[str, Mapping[str, Any]]) -> bool: ...
    def cleanup(self) -> int: ...
    def clear(self) -> None: ...
    def __len__(self) -> int: ...
    def keys(self) -> List[str]: ...
    def stats(self) -> Dict[str, Any]: ...

# ---- routing (src/py/routing.rs) ----------------------------------------------------------------

_DeploymentSpec = Tuple[
    int,
    Tuple[float, float, float],
    Tuple[float, float, float, float],
    float,
    Optional[float],
    Optional[int],
]

@final
class Router:
    def __new__(
        cls,
        strategy: str,
        groups: int,
        deployments: Sequence[_DeploymentSpec],
        *,
        allowed_fails: Optional[int],
        cooldown_time: float,
        circuit_breaker: bool,
        lowest_latency_buffer: float,
        seed: int,
        health_check_staleness: float,
    ) -> Router: ...
    def pick(self, group: int, input_tokens: int, stream: bool, now: float) -> int: ...
    def available(self, group: int, now: float) -> List[int]: ...
    def is_available(self, index: int, now: float) -> bool: ...
    def record_start(self, index: int, now: float) -> None: ...
    def record_success(
        self,
        index: int,
        now: float,
        latency: float,
        completion_tokens: int,
        total_tokens: int,
        time_to_first_token: Optional[float],
    ) -> None: ...
    def record_failure(
        self,
        index: int,
        now: float,
        status: int,
        retry_after: Optional[float],
        timeout: bool,
        connection_error: bool,
        latency: Optional[float],
    ) -> bool: ...
    def record_health_check(
        self,
        index: int,
        now: float,
        healthy: bool,
        status_code: Optional[int] = ...,
        latency: Optional[float] = ...,
    ) -> None: ...
    def check_health(
        self,
        targets: Sequence[Tuple[int, str]],
        timeout: float,
        clock: Optional[ManualClock],
        origin: float,
    ) -> List[bool]: ...
    def start_health_checks(
        self,
        targets: Sequence[Tuple[int, str]],
        interval: float,
        timeout: float,
        clock: Optional[ManualClock],
        origin: float,
    ) -> HealthProber: ...
    def clear_cooldown(self, index: int) -> None: ...
    def status(self, index: int, now: float) -> dict[str, Any]: ...
    def __len__(self) -> int: ...

@final
class HealthProber:
    """Health checks running on the native runtime until stopped or dropped."""

    def stop(self, timeout: Optional[float] = ...) -> bool: ...
    @property
    def running(self) -> bool: ...
    @property
    def forked(self) -> bool: ...
    @property
    def rounds(self) -> int: ...

# ---- budgets (fast_litellm.budget) ------------------------------------------------------------

# (now_ns, [(window, limit, spent, requests, reset_at_ns), ...]), amounts in nanodollars.
_BudgetRows = Tuple[int, List[Tuple[str, int, int, int, Optional[int]]]]

@final
class BudgetCheck:
    """The answer to one budget check; truthy when the call fits every budget."""

    @property
    def allowed(self) -> bool: ...
    @property
    def window(self) -> str: ...
    @property
    def limit(self) -> float: ...
    @property
    def spent(self) -> float: ...
    @property
    def remaining(self) -> float: ...
    @property
    def estimated_cost(self) -> float: ...
    @property
    def reset_at(self) -> Optional[float]: ...
    @property
    def retry_after(self) -> float: ...
    @property
    def reason(self) -> Optional[str]: ...
    def __bool__(self) -> bool: ...
    def to_dict(self) -> dict[str, Any]: ...

@final
class BudgetTracker:
    """The in-process budget tracker (see ``fast_litellm._fallback.budget`` for the rule);
    limits in nanodollars, costs in dollars."""

    def __new__(
        cls,
        daily: Optional[int],
        monthly: Optional[int],
        period_ns: Optional[int],
        period_limit: Optional[int],
        *,
        clock: Any = None,
    ) -> BudgetTracker: ...
    def record(self, key: str, cost: float) -> None: ...
    def check(self, key: str, estimated_cost: Optional[float] = None) -> BudgetCheck: ...
    def status(self, key: str) -> _BudgetRows: ...
    def reset(self, key: str) -> bool: ...
    def cleanup(self) -> int: ...
    def stats(self) -> dict[str, int]: ...

@final
class RedisBudget:
    """A budget tracker whose spend lives in Redis (one Lua script per call); ``now_ns`` is the
    caller's Unix time, or None for the server's. Backend failures raise
    ``RateLimitBackendError``."""

    def __new__(
        cls,
        backend: Union[str, Sequence[str]],
        daily: Optional[int],
        monthly: Optional[int],
        period_ns: Optional[int],
        period_limit: Optional[int],
        *,
        key_prefix: str = ...,  # "fast_litellm"
        timeout: float = 0.05,
    ) -> RedisBudget: ...
    def record(self, key: str, cost: float, now_ns: Optional[int] = None) -> None: ...
    def arecord(self, key: str, cost: float, now_ns: Optional[int] = None) -> Awaitable[None]: ...
    def check(
        self, key: str, estimated_cost: Optional[float] = None, now_ns: Optional[int] = None
    ) -> BudgetCheck: ...
    def acheck(
        self, key: str, estimated_cost: Optional[float] = None, now_ns: Optional[int] = None
    ) -> Awaitable[BudgetCheck]: ...
    def status(self, key: str, now_ns: Optional[int] = None) -> _BudgetRows: ...
    def astatus(self, key: str, now_ns: Optional[int] = None) -> Awaitable[_BudgetRows]: ...
    def reset(self, key: str) -> bool: ...
    def areset(self, key: str) -> Awaitable[bool]: ...
    def ping(self) -> None: ...
    def redis_key(self, key: str) -> str: ...
    @property
    def backend(self) -> str: ...
    @property
    def is_cluster(self) -> bool: ...
    @property
    def key_prefix(self) -> str: ...

REDIS_BUDGET_SCRIPT: str
BUDGET_MAX_NANODOLLARS: int
# ---- request cost (src/py/cost.rs) ----------------------------------------------------------------

_CostThreshold = Tuple[float, Optional[float], Optional[float], Optional[float], Optional[float]]

@final
class CostTable:
    def __new__(cls) -> CostTable: ...
    def __len__(self) -> int: ...
    def add(
        self,
        input: Optional[float],
        output: Optional[float],
        cache_read: Optional[float],
        cache_creation: Optional[float],
        reasoning: Optional[float],
        input_audio: Optional[float],
        output_audio: Optional[float],
        output_image: Optional[float],
        thresholds: Sequence[_CostThreshold],
    ) -> int: ...
    def cost(
        self,
        index: int,
        prompt_tokens: int,
        completion_tokens: int,
        prompt_details: bool,
        cached_tokens: int,
        cache_creation_tokens: int,
        prompt_text_tokens: int,
        prompt_audio_tokens: int,
        completion_details: bool,
        completion_text_tokens: int,
        reasoning_tokens: int,
        completion_audio_tokens: int,
    ) -> Tuple[float, float]: ...

def cost_custom(
    prompt_tokens: float,
    completion_tokens: int,
    cached_tokens: float,
    cache_creation_tokens: float,
    input_rate: float,
    output_rate: float,
    cache_read_rate: float,
    cache_creation_rate: float,
) -> Tuple[float, float]: ...
