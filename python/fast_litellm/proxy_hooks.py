"""Rate limits for the LiteLLM proxy, enforced by ``SimpleRateLimiter``.

In the proxy's ``config.yaml``::

    litellm_settings:
      callbacks: ["fast_litellm.proxy_hooks.proxy_rate_limiter"]

``proxy_rate_limiter`` is built on first access from ``FAST_LITELLM_PROXY_*`` variables (see
``FastRateLimiter.from_env``). Importing ``fast_litellm`` never imports this module, so litellm
(and its proxy dependencies: fastapi) is loaded only by a proxy that names the callback.

Limits are LiteLLM's own, read from ``UserAPIKeyAuth`` as ``parallel_request_limiter_v3`` reads
them: the key's ``rpm_limit``/``tpm_limit``, the user's, the team's, the team member's, the end
user's, and the key's per-model limits (``model_rpm_limit``/``model_tpm_limit`` in the key's
metadata, then its ``model_max_budget``, then the team's metadata). Each scope is a key of one
``SimpleRateLimiter`` per distinct (rpm, tpm) pair, named ``<scope>:<id>``, so every limit is
a GCRA bucket rather than v3's fixed one-minute window.

What is charged when (GCRA has no refund):
- pre-call: one request, and the request's estimated input tokens (``count_message_tokens``
  over ``messages``; 0 without messages, at least 1 against a token limit, so an exhausted
  token budget refuses the next request);
- success: the usage beyond the estimate (``total_tokens`` less cached prompt tokens, as v3's
  default "total" counts), up to what the token bucket still holds; a smaller usage gives
  nothing back;
- failure: nothing more, nothing back (the request and its estimate stay charged).
A request refused by one scope is charged by none in process; with Redis the scopes are checked
concurrently, so the scopes that admitted it keep the charge.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import time
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union

from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import UserAPIKeyAuth
from litellm.proxy.common_utils.proxy_rate_limit_error import (
    ProxyRateLimitError,
    map_v3_rate_limit_type,
)

from . import _fork
from .budget import BudgetTracker
from .errors import FastLiteLLMError
from .ratelimit import MAX_KEY_LENGTH, RateLimitResult, SimpleRateLimiter
from .tokens import count_message_tokens

__all__ = [
    "ENV_PREFIX",
    "FastBudgetLimiter",
    "FastRateLimiter",
    "proxy_budget_limiter",
    "proxy_rate_limiter",
]

ENV_PREFIX = "FAST_LITELLM_PROXY_"
DEFAULT_KEY_PREFIX = "fast_litellm:proxy"

# v3 answers a limit of 0 or less by refusing every request and telling the client to come back
# after its window; this is that window, for that one case.
_REFUSE_ALL_RETRY_AFTER = 60

# (scope, the UserAPIKeyAuth fields naming its id, rpm field, tpm field), in v3's order. A
# team member's id is "<team_id>:<user_id>".
_FIELD_SCOPES: Tuple[Tuple[str, Tuple[str, ...], str, str], ...] = (
    ("api_key", ("api_key",), "rpm_limit", "tpm_limit"),
    ("user", ("user_id",), "user_rpm_limit", "user_tpm_limit"),
    ("team", ("team_id",), "team_rpm_limit", "team_tpm_limit"),
    ("team_member", ("team_id", "user_id"), "team_member_rpm_limit", "team_member_tpm_limit"),
    ("end_user", ("end_user_id",), "end_user_rpm_limit", "end_user_tpm_limit"),
)
_MODEL_SCOPE = "model_per_key"


class Scope(NamedTuple):
    """One limit that applies to a request: ``name`` as v3 names it in its headers and 429s
    (``api_key``, ``user``, ``team``, ``team_member``, ``end_user``, ``model_per_key``), the id
    it limits, and its limits per minute (``None``: that kind is not limited)."""

    name: str
    value: str
    rpm: Optional[int]
    tpm: Optional[int]

    @property
    def key(self) -> str:
        """The limiter key: ``name:value``, or ``name:sha256:<hex of it>`` when that is longer
        than a key may be or is not valid Unicode (an end-user id is the client's to choose: a
        long one, or a lone surrogate in its JSON, is limited like any other instead of failing
        the request)."""
        key = f"{self.name}:{self.value}"
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            if len(key) <= MAX_KEY_LENGTH:
                return key
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.name}:sha256:{digest}"


class _Admission:
    """What the pre-call hook leaves for the success and failure hooks of the same request."""

    __slots__ = ("call_id", "token_charges", "estimated_tokens", "headers")

    def __init__(
        self,
        call_id: Optional[str],
        token_charges: List[Tuple[SimpleRateLimiter, str]],
        estimated_tokens: int,
        headers: Dict[str, int],
    ) -> None:
        self.call_id = call_id
        self.token_charges = token_charges
        self.estimated_tokens = estimated_tokens
        self.headers = headers


# Per request, like v3's stash: the proxy awaits the pre-call hook in the request's own task, so
# the success and failure callbacks of that request see what it set, and no other request does.
_admission: ContextVar[Optional[_Admission]] = ContextVar(
    "fast_litellm_proxy_admission", default=None
)


def _limit_value(raw: Any, where: str) -> Optional[int]:
    """A limit as v3 reads it (``int(value)``: ``"10"`` and ``10.0`` are 10); anything that is
    not a number raises ``ValueError`` naming where it was found."""
    if raw is None or type(raw) is int:
        return raw
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise ValueError(f"{where} must be a whole number of requests or tokens, got {raw!r}")
    try:
        return int(raw)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{where} must be a whole number of requests or tokens, got {raw!r}"
        ) from None


# More than one request or token a nanosecond is more than a limiter can count: no limit (keys
# configured with 2**63 - 1 or 10**11 as "unlimited" were refused with a ValueError instead).
_MOST_PER_MINUTE = 60 * 10**9


def _within_reach(limit: Optional[int]) -> Optional[int]:
    return None if limit is not None and limit > _MOST_PER_MINUTE else limit


def _model_limit(auth: UserAPIKeyAuth, field: str, budget_field: str, model: str) -> Optional[int]:
    """The key's per-model limit for ``model``: from the key's metadata, else its
    ``model_max_budget``, else the team's metadata (the order LiteLLM's auth helpers use)."""
    metadata = auth.metadata or {}
    limits = metadata.get(field)
    where = f"metadata[{field!r}]"
    if not limits:
        limits = {
            name: budget[budget_field]
            for name, budget in (auth.model_max_budget or {}).items()
            if isinstance(budget, dict) and budget.get(budget_field) is not None
        }
        where = f"model_max_budget[...][{budget_field!r}]"
    if not limits:
        limits = (auth.team_metadata or {}).get(field)
        where = f"team_metadata[{field!r}]"
    if not limits:
        return None
    if not isinstance(limits, Mapping):
        raise ValueError(
            f"{where} must map model names to limits, e.g. {{'gpt-4o': 10}}, got {limits!r}"
        )
    return _limit_value(limits.get(model), f"{where}[{model!r}]")


def scopes_for(auth: UserAPIKeyAuth, model: Optional[str]) -> List[Scope]:
    """Every limit LiteLLM's key metadata sets for a request by ``auth`` to ``model``."""
    scopes: List[Scope] = []
    for name, id_fields, rpm_field, tpm_field in _FIELD_SCOPES:
        rpm = getattr(auth, rpm_field)
        tpm = getattr(auth, tpm_field)
        if rpm is None and tpm is None:
            continue
        ids = [getattr(auth, field) for field in id_fields]
        if ids[-1]:
            rpm = _within_reach(_limit_value(rpm, rpm_field))
            tpm = _within_reach(_limit_value(tpm, tpm_field))
            if rpm is not None or tpm is not None:
                scopes.append(Scope(name, ":".join(str(i) for i in ids), rpm, tpm))
    if model and auth.api_key:
        rpm = _within_reach(_model_limit(auth, "model_rpm_limit", "rpm_limit", model))
        tpm = _within_reach(_model_limit(auth, "model_tpm_limit", "tpm_limit", model))
        if rpm is not None or tpm is not None:
            scopes.append(Scope(_MODEL_SCOPE, f"{auth.api_key}:{model}", rpm, tpm))
    return scopes


def estimate_tokens(data: Mapping[str, Any]) -> int:
    """The request's input tokens as ``litellm.token_counter`` counts them, or 0 when the
    request has no chat messages or they cannot be counted (LiteLLM rejects those later)."""
    messages = data.get("messages")
    if not messages or not isinstance(messages, list):
        return 0
    model = data.get("model")
    try:
        return count_message_tokens(
            messages, model=model if isinstance(model, str) else "", tools=data.get("tools")
        )
    except (FastLiteLLMError, ValueError, TypeError, KeyError, AttributeError):
        return 0


def usage_tokens(response: Any) -> int:
    """Tokens a response used, as v3 charges them by default ("total"): ``total_tokens`` less
    cached prompt tokens."""
    usage = getattr(response, "usage", None)
    if usage is None and isinstance(response, Mapping):
        usage = response.get("usage")
    if usage is None:
        return 0
    if isinstance(usage, Mapping):
        total = usage.get("total_tokens") or 0
        details = usage.get("prompt_tokens_details") or {}
        cached = details.get("cached_tokens", 0) if isinstance(details, Mapping) else 0
    else:
        total = getattr(usage, "total_tokens", 0) or 0
        details = getattr(usage, "prompt_tokens_details", None)
        cached = getattr(details, "cached_tokens", 0) if details is not None else 0
    if not isinstance(total, int) or isinstance(total, bool):
        return 0
    cached = cached if isinstance(cached, int) and not isinstance(cached, bool) else 0
    return max(0, total - (cached or 0))


def _env_float(environ: Mapping[str, str], name: str) -> Optional[float]:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


class FastRateLimiter(CustomLogger):  # type: ignore[misc]
    """A LiteLLM proxy callback enforcing the rpm/tpm limits of LiteLLM's key metadata with
    ``SimpleRateLimiter``: an alternative to ``parallel_request_limiter_v3`` (see the README,
    "Proxy rate limiting").

    - ``backend``: ``None`` (in process), or a Redis URL (``redis://``, ``rediss://``,
      ``unix://``, ``redis+cluster://``, or a list of node URLs) shared by every proxy process.
    - ``key_prefix``, ``on_backend_error``, ``backend_timeout``: as for ``SimpleRateLimiter``.
    - ``burst_ratio``: the request burst as a share of ``rpm`` (at least 1 request); ``None``
      keeps the limiter's default, ``rpm / 10``. ``1.0`` admits a whole minute's requests at once.
    - ``clock``: as for ``SimpleRateLimiter`` (a ``ManualClock`` in tests).
    """

    def __init__(
        self,
        *,
        backend: Union[None, str, Sequence[str]] = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        on_backend_error: str = "allow",
        backend_timeout: Optional[float] = None,
        burst_ratio: Optional[float] = None,
        clock: Any = None,
    ) -> None:
        super().__init__()
        if burst_ratio is not None and (
            isinstance(burst_ratio, bool)
            or not isinstance(burst_ratio, (int, float))
            or not 0 < burst_ratio <= 1
        ):
            raise ValueError(f"burst_ratio must be a number in (0, 1], got {burst_ratio!r}")
        self.backend = backend
        self.key_prefix = key_prefix
        self.on_backend_error = on_backend_error
        self.backend_timeout = backend_timeout
        self.burst_ratio = burst_ratio
        self._clock = clock
        self._limiters: Dict[Tuple[Optional[int], Optional[int]], SimpleRateLimiter] = {}
        # A limiter is built once per (rpm, tpm) pair; the lock keeps two threads (a proxy
        # that checks from worker threads) from building two for one pair.
        self._lock = _fork.Lock()
        # One limiter built now, so a bad option fails at start-up, not on the first request.
        self._limiters[(1, None)] = self._build(1, None)

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "FastRateLimiter":
        """A limiter configured by ``FAST_LITELLM_PROXY_REDIS_URL`` (unset: in process),
        ``FAST_LITELLM_PROXY_KEY_PREFIX`` (default ``fast_litellm:proxy``),
        ``FAST_LITELLM_PROXY_ON_BACKEND_ERROR`` (``allow``, ``deny`` or ``local``; default
        ``allow``), ``FAST_LITELLM_PROXY_BACKEND_TIMEOUT`` (seconds) and
        ``FAST_LITELLM_PROXY_BURST_RATIO``."""
        env = os.environ if environ is None else environ
        url = env.get(ENV_PREFIX + "REDIS_URL") or None
        return cls(
            backend=url,
            key_prefix=env.get(ENV_PREFIX + "KEY_PREFIX") or DEFAULT_KEY_PREFIX,
            on_backend_error=env.get(ENV_PREFIX + "ON_BACKEND_ERROR") or "allow",
            backend_timeout=_env_float(env, ENV_PREFIX + "BACKEND_TIMEOUT"),
            burst_ratio=_env_float(env, ENV_PREFIX + "BURST_RATIO"),
        )

    # ---- limiters -------------------------------------------------------------------------------

    def _build(self, rpm: Optional[int], tpm: Optional[int]) -> SimpleRateLimiter:
        burst = None
        if rpm is not None and self.burst_ratio is not None:
            burst = max(1, math.floor(rpm * self.burst_ratio))
        return SimpleRateLimiter(
            requests_per_minute=rpm,
            tokens_per_minute=tpm,
            burst=burst,
            backend=self.backend,
            key_prefix=self.key_prefix,
            on_backend_error=self.on_backend_error,
            backend_timeout=self.backend_timeout,
            clock=self._clock,
        )

    def limiter_for(self, rpm: Optional[int], tpm: Optional[int]) -> SimpleRateLimiter:
        """The limiter shared by every scope limited to ``rpm`` requests and ``tpm`` tokens a
        minute. Scopes are told apart by their keys; on Redis a scope whose limits change keeps
        its bucket (its keys do not name the limits)."""
        limiter = self._limiters.get((rpm, tpm))
        if limiter is None:
            with self._lock:
                limiter = self._limiters.get((rpm, tpm))
                if limiter is None:
                    limiter = self._limiters[(rpm, tpm)] = self._build(rpm, tpm)
        return limiter

    # ---- the proxy's hooks ----------------------------------------------------------------------

    async def async_pre_call_hook(
        self,
        user_api_key_dict: UserAPIKeyAuth,
        cache: Any,
        data: dict,
        call_type: Any,
    ) -> None:
        """Admits the request (charging one request and its estimated tokens to every scope
        that limits it) or raises v3's 429, ``ProxyRateLimitError``."""
        model = data.get("model")
        scopes = scopes_for(user_api_key_dict, model if isinstance(model, str) else None)
        if not scopes:
            return None
        tokens = 0
        if any(scope.tpm is not None for scope in scopes):
            tokens = max(1, estimate_tokens(data))
        for scope in scopes:
            if (scope.rpm is not None and scope.rpm <= 0) or (
                scope.tpm is not None and scope.tpm <= 0
            ):
                raise _refusal_for_non_positive(scope, model)
        planned = [
            (
                scope,
                self.limiter_for(scope.rpm, scope.tpm),
                1 if scope.rpm is not None else 0,
                tokens if scope.tpm is not None else 0,
            )
            for scope in scopes
        ]
        if self.backend is None:
            results = self._check_in_process(planned, model)
        else:
            results = await asyncio.gather(
                *(
                    limiter.acheck(scope.key, cost=cost, tokens=tok)
                    for scope, limiter, cost, tok in planned
                )
            )
            refused = [
                (scope, result, cost)
                for (scope, _limiter, cost, _tok), result in zip(planned, results, strict=True)
                if not result.allowed
            ]
            if refused:
                raise _refusal(*_longest_wait(refused), model)
        headers: Dict[str, int] = {}
        for (scope, _limiter, _cost, _tok), result in zip(planned, results, strict=True):
            headers.update(_ratelimit_headers(scope, result))
        call_id = data.get("litellm_call_id")
        _admission.set(
            _Admission(
                call_id if isinstance(call_id, str) else None,
                [(limiter, scope.key) for scope, limiter, _c, tok in planned if tok],
                tokens,
                headers,
            )
        )
        return None

    @staticmethod
    def _check_in_process(
        planned: List[Tuple[Scope, SimpleRateLimiter, int, int]], model: Any
    ) -> List[RateLimitResult]:
        # In process nothing runs between the peeks and the checks (no await), so a request
        # refused by one scope is charged by none.
        if len(planned) > 1:
            refused = []
            for scope, limiter, cost, tok in planned:
                peeked = limiter.peek(scope.key, cost=cost, tokens=tok)
                if not peeked.allowed:
                    refused.append((scope, peeked, cost))
            if refused:
                raise _refusal(*_longest_wait(refused), model)
        results = []
        for scope, limiter, cost, tok in planned:
            result = limiter.check(scope.key, cost=cost, tokens=tok)
            if not result.allowed:
                raise _refusal(scope, result, cost, model)
            results.append(result)
        return results

    async def async_post_call_success_hook(
        self, data: dict, user_api_key_dict: UserAPIKeyAuth, response: Any
    ) -> None:
        """Adds v3's ``x-ratelimit-<scope>-{remaining,limit}-{requests,tokens}`` headers (as of
        the pre-call check) to the response."""
        admission = self._admission_for(data.get("litellm_call_id"))
        if admission is None or not admission.headers:
            return None
        hidden = getattr(response, "_hidden_params", None)
        if hidden is None and isinstance(response, dict):
            hidden = response.setdefault("_hidden_params", {})
        if not isinstance(hidden, dict):
            return None
        additional = hidden.get("additional_headers")
        if not isinstance(additional, dict):
            additional = hidden["additional_headers"] = {}
        additional.update(admission.headers)
        return None

    async def async_post_call_response_headers_hook(
        self,
        data: dict,
        user_api_key_dict: UserAPIKeyAuth,
        response: Any,
        request_headers: Optional[Dict[str, str]] = None,
        litellm_call_info: Optional[Dict[str, Any]] = None,
    ) -> Optional[Dict[str, str]]:
        """The same headers, for a proxy that asks its callbacks for response headers (1.110.2
        does), which applies them after every success hook's. ``parallel_request_limiter_v3``
        runs after this callback (the proxy registers it later) and writes its own per-process
        numbers under the same names in its success hook: without this hook a client of a real
        proxy saw v3's numbers, not these (tests/test_proxy_e2e.py)."""
        if response is None or not isinstance(data, dict):
            return None  # a failed call: nothing was admitted to report
        admission = self._admission_for(data.get("litellm_call_id"))
        if admission is None or not admission.headers:
            return None
        return {name: str(value) for name, value in admission.headers.items()}

    async def async_log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """Charges the tokens the response used beyond the pre-call estimate."""
        call_id = kwargs.get("litellm_call_id") if isinstance(kwargs, dict) else None
        admission = self._admission_for(call_id)
        if admission is None or not admission.token_charges:
            return
        # Once per request: a second success event (a retried stream's) charges nothing again.
        charges, admission.token_charges = admission.token_charges, []
        excess = usage_tokens(response_obj) - admission.estimated_tokens
        if excess <= 0:
            return
        for limiter, key in charges:
            result = await limiter.acheck(key, cost=0, tokens=excess)
            available = result.remaining_tokens or 0
            if not result.allowed and 0 < available < excess:
                # The bucket holds less than the excess: take what it has. GCRA keeps no debt.
                await limiter.acheck(key, cost=0, tokens=available)

    async def async_log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """A failed call keeps its charge (GCRA cannot refund); only forgets the request."""
        call_id = kwargs.get("litellm_call_id") if isinstance(kwargs, dict) else None
        if self._admission_for(call_id) is not None:
            _admission.set(None)

    async def async_post_call_failure_hook(
        self,
        request_data: dict,
        original_exception: Exception,
        user_api_key_dict: UserAPIKeyAuth,
        traceback_str: Optional[str] = None,
    ) -> None:
        """As ``async_log_failure_event``, for a request the proxy refused after the pre-call."""
        if self._admission_for(request_data.get("litellm_call_id")) is not None:
            _admission.set(None)
        return None

    @staticmethod
    def _admission_for(call_id: Any) -> Optional[_Admission]:
        admission = _admission.get()
        if admission is None:
            return None
        if (
            admission.call_id is not None
            and isinstance(call_id, str)
            and call_id != admission.call_id
        ):
            # A nested call inside the request (a guardrail's own completion) has its own id.
            return None
        return admission

    def __repr__(self) -> str:
        where = "in process" if self.backend is None else "redis"
        return f"FastRateLimiter({where}, limiters={len(self._limiters)})"


# ---- answers ------------------------------------------------------------------------------------


def _ratelimit_headers(scope: Scope, result: RateLimitResult) -> Dict[str, int]:
    """v3's success headers for one scope. ``limit`` is the per-minute limit of the key's
    metadata; ``remaining`` is what the bucket admits at once now (at most its burst)."""
    prefix = f"x-ratelimit-{scope.name}"
    headers: Dict[str, int] = {}
    if scope.rpm is not None:
        headers[f"{prefix}-remaining-requests"] = result.remaining
        headers[f"{prefix}-limit-requests"] = scope.rpm
    if scope.tpm is not None:
        remaining_tokens = result.remaining_tokens
        headers[f"{prefix}-remaining-tokens"] = (
            remaining_tokens if remaining_tokens is not None else result.remaining
        )
        headers[f"{prefix}-limit-tokens"] = scope.tpm
    return headers


def _reset_at(seconds_from_now: float) -> str:
    when = datetime.fromtimestamp(time.time() + seconds_from_now, tz=timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def _exceeded(
    scope: Scope,
    kind: str,
    limit: int,
    remaining: int,
    retry_after: Optional[float],
    headers: Dict[str, int],
    model: Any,
    reason: str = "",
) -> ProxyRateLimitError:
    """v3's 429: its exception class, its detail text, its ``retry-after``, ``rate_limit_type``
    and ``reset_at`` headers, plus the refused scope's ``x-ratelimit-*`` headers."""
    wait = 0.0 if retry_after is None else retry_after
    reset_at = _reset_at(wait)
    detail = (
        f"Rate limit exceeded for {scope.name}: {scope.value}. "
        f"Limit type: {kind}. "
        f"Current limit: {limit}, Remaining: {max(0, remaining)}. "
        f"Limit resets at: {reset_at}{reason}"
    )
    response_headers: Dict[str, Any] = {"rate_limit_type": kind, "reset_at": reset_at}
    if retry_after is not None:
        # Retry-After is whole seconds: round up, so a client that obeys it is admitted.
        response_headers["retry-after"] = str(max(1, math.ceil(retry_after)))
    response_headers.update(headers)
    return ProxyRateLimitError(
        detail=detail,
        headers=response_headers,
        rate_limit_type=map_v3_rate_limit_type(kind),
        model=model if isinstance(model, str) else None,
        descriptor_key=scope.name,
    )


def _longest_wait(
    refused: List[Tuple[Scope, RateLimitResult, int]],
) -> Tuple[Scope, RateLimitResult, int]:
    """The refusal to report when several scopes refuse: the one with the longest wait, so that
    its ``retry-after`` is when the request is admitted (the first refusing scope's told a client
    at rpm 60 with a model limit of 6 to come back in 1 s, to be told 9 s then)."""
    return max(refused, key=lambda refusal: refusal[1].retry_after)


def _refusal(scope: Scope, result: RateLimitResult, cost: int, model: Any) -> ProxyRateLimitError:
    requests_refused = scope.rpm is not None and cost > 0 and result.remaining < cost
    kind = "requests" if requests_refused or scope.tpm is None else "tokens"
    if kind == "requests":
        limit, remaining = scope.rpm, result.remaining
    else:
        limit = scope.tpm
        remaining = (
            result.remaining_tokens if result.remaining_tokens is not None else result.remaining
        )
    assert limit is not None
    retry_after: Optional[float] = result.retry_after
    reason = ""
    if math.isinf(result.retry_after):
        # More tokens than the bucket holds: no wait admits it, so no Retry-After is promised.
        retry_after = None
        reason = ". The request needs more than the limit admits at once and can never be admitted"
    return _exceeded(
        scope, kind, limit, remaining, retry_after, _ratelimit_headers(scope, result), model, reason
    )


def _refusal_for_non_positive(scope: Scope, model: Any) -> ProxyRateLimitError:
    # A limit of 0 (or less) refuses every request, as v3 does.
    if scope.rpm is not None and scope.rpm <= 0:
        kind, limit = "requests", scope.rpm
    else:
        assert scope.tpm is not None
        kind, limit = "tokens", scope.tpm
    prefix = f"x-ratelimit-{scope.name}"
    headers = {f"{prefix}-remaining-{kind}": 0, f"{prefix}-limit-{kind}": limit}
    return _exceeded(scope, kind, limit, 0, _REFUSE_ALL_RETRY_AFTER, headers, model)


# ---- the instance config.yaml names -------------------------------------------------------------

# ---- budgets ------------------------------------------------------------------------------------

# The UserAPIKeyAuth field naming the id of each scope a budget can be kept for.
BUDGET_SCOPES = {
    "api_key": "api_key",
    "user": "user_id",
    "team": "team_id",
    "end_user": "end_user_id",
}

# Per request: (litellm_call_id, budget key) from the pre-call hook, for the success event.
_budget_admission: ContextVar[Optional[Tuple[Optional[str], str]]] = ContextVar(
    "fast_litellm_proxy_budget_admission", default=None
)


class FastBudgetLimiter(CustomLogger):  # type: ignore[misc]
    """A LiteLLM proxy callback keeping a dollar budget per key with ``BudgetTracker``: the
    pre-call hook refuses a request once its key's budget is exhausted (LiteLLM's own
    ``BudgetExceededError``, which the proxy answers as it answers its ``max_budget``), and each
    successful request's ``response_cost`` (what LiteLLM logged for it) is recorded.

    - ``daily`` / ``monthly`` / ``period`` with ``limit``: the budget of every key, as for
      ``BudgetTracker``.
    - ``scope``: what a key is: ``"api_key"`` (default: the virtual key, as the proxy hashes
      it), ``"user"``, ``"team"`` or ``"end_user"``. A request without one is not limited.
    - ``backend``, ``key_prefix``, ``on_backend_error``, ``backend_timeout``, ``clock``: as for
      ``BudgetTracker`` (Redis shares the spend between proxy processes).

    A request is checked with an estimate of 0: it is refused once the budget is spent, and the
    request that crosses the limit is let through (its cost is known only afterwards).
    """

    def __init__(
        self,
        *,
        daily: Optional[float] = None,
        monthly: Optional[float] = None,
        period: Optional[float] = None,
        limit: Optional[float] = None,
        scope: str = "api_key",
        backend: Union[None, str, Sequence[str]] = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        on_backend_error: str = "allow",
        backend_timeout: Optional[float] = None,
        clock: Any = None,
    ) -> None:
        super().__init__()
        if scope not in BUDGET_SCOPES:
            raise ValueError(
                f"scope must be one of {', '.join(map(repr, BUDGET_SCOPES))}, got {scope!r}"
            )
        self.scope = scope
        self.tracker = BudgetTracker(
            daily=daily,
            monthly=monthly,
            period=period,
            limit=limit,
            backend=backend,
            key_prefix=key_prefix,
            on_backend_error=on_backend_error,
            backend_timeout=backend_timeout,
            clock=clock,
        )

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "FastBudgetLimiter":
        """A budget limiter configured by ``FAST_LITELLM_PROXY_DAILY_BUDGET`` and/or
        ``FAST_LITELLM_PROXY_MONTHLY_BUDGET`` (dollars), ``FAST_LITELLM_PROXY_BUDGET_SCOPE``
        (default ``api_key``), and the rate limiter's ``REDIS_URL``, ``KEY_PREFIX``,
        ``ON_BACKEND_ERROR`` and ``BACKEND_TIMEOUT`` variables."""
        env = os.environ if environ is None else environ
        return cls(
            daily=_env_float(env, ENV_PREFIX + "DAILY_BUDGET"),
            monthly=_env_float(env, ENV_PREFIX + "MONTHLY_BUDGET"),
            scope=env.get(ENV_PREFIX + "BUDGET_SCOPE") or "api_key",
            backend=env.get(ENV_PREFIX + "REDIS_URL") or None,
            key_prefix=env.get(ENV_PREFIX + "KEY_PREFIX") or DEFAULT_KEY_PREFIX,
            on_backend_error=env.get(ENV_PREFIX + "ON_BACKEND_ERROR") or "allow",
            backend_timeout=_env_float(env, ENV_PREFIX + "BACKEND_TIMEOUT"),
        )

    def key_for(self, auth: UserAPIKeyAuth) -> Optional[str]:
        """The budget key of a request (``"<scope>:<id>"``), or None when it has no id."""
        value = getattr(auth, BUDGET_SCOPES[self.scope], None)
        return f"{self.scope}:{value}" if isinstance(value, str) and value else None

    async def async_pre_call_hook(
        self,
        user_api_key_dict: UserAPIKeyAuth,
        cache: Any,
        data: dict,
        call_type: Any,
    ) -> None:
        """Refuses the request when its key's budget is exhausted."""
        key = self.key_for(user_api_key_dict)
        if key is None:
            return None
        verdict = await self.tracker.acheck(key)
        if not verdict.allowed:
            from litellm.exceptions import BudgetExceededError

            reset = (
                "never"
                if verdict.reset_at is None or math.isinf(verdict.retry_after)
                else datetime.fromtimestamp(verdict.reset_at, tz=timezone.utc).strftime(
                    "%Y-%m-%d %H:%M:%S UTC"
                )
            )
            raise BudgetExceededError(
                current_cost=verdict.spent,
                max_budget=verdict.limit,
                message=f"Budget has been exceeded: {verdict.reason} (resets at {reset})",
                entity_type=self.scope,
                entity_id=key.split(":", 1)[1],
            )
        call_id = data.get("litellm_call_id")
        _budget_admission.set((call_id if isinstance(call_id, str) else None, key))
        return None

    async def async_log_success_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """Records the request's ``response_cost`` (once per request)."""
        admission = _budget_admission.get()
        if admission is None or not isinstance(kwargs, dict):
            return
        call_id, key = admission
        logged_id = kwargs.get("litellm_call_id")
        if call_id is not None and isinstance(logged_id, str) and logged_id != call_id:
            return  # a nested call inside the request has its own id
        _budget_admission.set(None)
        cost = kwargs.get("response_cost")
        if isinstance(cost, bool) or not isinstance(cost, (int, float)):
            return
        if math.isfinite(cost) and cost > 0:
            await self.tracker.arecord(key, cost)

    async def async_log_failure_event(
        self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        """A failed request costs nothing here; only forgets the request."""
        _budget_admission.set(None)

    def __repr__(self) -> str:
        return f"FastBudgetLimiter(scope={self.scope!r}, {self.tracker!r})"


_instance_lock = _fork.Lock()

# Declared, not assigned: the first access goes through __getattr__ below, which builds them.
proxy_rate_limiter: FastRateLimiter
proxy_budget_limiter: FastBudgetLimiter

_FROM_ENV: Dict[str, Any] = {
    "proxy_rate_limiter": FastRateLimiter,
    "proxy_budget_limiter": FastBudgetLimiter,
}


def __getattr__(name: str) -> Any:
    # Built on first access, not at import: the proxy resolves "module.attribute" with getattr,
    # and a test or a tool can import this module without a Redis URL being read or used.
    kind = _FROM_ENV.get(name)
    if kind is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _instance_lock:
        instance = globals().get(name)
        if instance is None:
            instance = kind.from_env()
            globals()[name] = instance
    return instance
