"""Request cost, equal to LiteLLM's: ``completion_cost(...)`` and ``cost_per_token(...)``.

The prices are the installed LiteLLM's own (``litellm.model_cost``, entries added at run time
with ``litellm.register_model`` included); this module keeps no copy of its own. What it keeps is
a table of the prices it has already looked up, per model name as called:

- The first call for a ``(model, provider)`` resolves the name the way LiteLLM's
  ``cost_per_token`` does (its own ``get_llm_provider`` and ``get_model_info``, once), checks that
  the entry holds only prices this module computes exactly, and adds them to the price table
  (``COST``: the native table in ``fast_litellm._native.CostTable``, or the fallback's).
  Later calls are a dict lookup and the arithmetic.
- The table follows LiteLLM's cost map without copying it: LiteLLM counts every change it makes
  to ``litellm.model_cost`` (``register_model`` and the map reloads bump
  ``litellm.utils._model_cost_mutation_generation``, which also clears LiteLLM's own lookup
  caches), so each call compares that counter, the map's identity and its size with the ones
  the table was built from (three reads) and starts a new table when any of them moved. A hook on
  ``register_model`` would miss the other writers (map reloads, the router's deployment prices);
  hashing the map per call would cost more than the arithmetic it guards.

Anything this module does not compute exactly is handed to LiteLLM itself, with the same
arguments, so the answer is never a different number: prices other than per-token, cached,
cache-write, reasoning and audio rates and the ``_above_<n>_tokens`` thresholds (tiered tables,
off-peak windows, per-second, per-character or per-image billing, service tiers, regional
uplifts), providers with calculators of their own (Vertex AI, Bedrock, Azure, Gemini, ...), usage
with other token classes (image, video, cache lifetimes), responses other than a chat
``ModelResponse`` and the options that change the pricing path. ``stats()`` counts both paths.

The arithmetic (``src/cost/`` and ``_fallback/cost.py``) follows LiteLLM's order of operations,
so the floats are bit-identical: compare them with ``==``.

Bad input: a negative token count passed as an argument raises ``ValueError`` and one that is not
an ``int`` ``TypeError`` (LiteLLM would return a negative cost); a usage object or a response is
priced as LiteLLM prices it, whatever it holds; a model LiteLLM cannot price raises what LiteLLM
raises (its call is the one that runs).
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import re
import sys
import threading
from typing import Any, Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple

from . import _flags, _fork
from ._fallback import cost as _fallback_cost
from ._flags import native as _native

__all__ = [
    "completion_cost",
    "cost_per_token",
    "health_probe",
    "reset_cost_stats",
    "stats",
]

_state = _flags.feature("COST")

# ---- which prices are computed here ------------------------------------------------------------

# Rates the arithmetic uses.
_RATE_KEYS = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
    "input_cost_per_audio_token",
    "output_cost_per_audio_token",
    "output_cost_per_image_token",
)
_THRESHOLD_PREFIXES = (
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
)
# Service-tier and batch variants: LiteLLM reads them only for a request priced on that tier or as
# a batch, which this module hands to LiteLLM.
_TIER_SUFFIXES = ("_ultrafast", "_balanced", "_priority", "_flex", "_fast", "_batches")
# Prices LiteLLM's token calculator reads only for usage this module hands over (image, video,
# character, query or second counts, cache lifetimes, cached audio/images), for a data residency
# or Vertex location (never passed here), per-second prices (not read while a token rate is set,
# which the entry must have), and built-in tool prices (read by completion_cost for tool usage,
# which it hands over).
_INERT_KEYS = frozenset(
    {
        "input_cost_per_image",
        "output_cost_per_image",
        "input_cost_per_image_token",
        "input_cost_per_video_token",
        "output_cost_per_video_token",
        "input_cost_per_character",
        "output_cost_per_character",
        "input_cost_per_query",
        "input_cost_per_second",
        "output_cost_per_second",
        "cost_per_second",
        "input_cost_per_video_per_second",
        "input_cost_per_audio_per_second",
        "output_cost_per_video_per_second",
        "cache_read_input_audio_token_cost",
        "cache_read_input_image_token_cost",
        "cache_creation_input_token_cost_above_1hr",
        "cache_creation_input_token_cost_above_12hr",
        "fedramp_uplift_multiplier",
        "regional_processing_uplift_multiplier_eu",
        "regional_processing_uplift_multiplier_us",
        "regional_endpoint_uplift_multiplier",
        "search_context_cost_per_query",
        "google_maps_grounding_cost_per_query",
        "citation_cost_per_token",
        "code_interpreter_cost_per_session",
        "computer_use_input_cost_per_1k_tokens",
        "computer_use_output_cost_per_1k_tokens",
        "file_search_cost_per_1k_calls",
        "file_search_cost_per_gb_per_day",
        "vector_store_cost_per_gb_per_day",
        "provider_specific_entry",  # Anthropic's geo/speed multipliers: only for such usage
    }
)
_PRICE_WORDS = ("cost", "price", "pricing", "multiplier", "uplift", "peak", "tier")
_THRESHOLD_KEY = re.compile(r"_above_(\d+k?)_tokens$")

# Providers whose branch of LiteLLM's cost_per_token is the generic token calculator with the
# entry LiteLLM's get_model_info returns: OpenAI, Anthropic (plus multipliers that stay 1.0 for
# usage without a geo or speed) and every provider without a calculator of its own. The providers
# listed here have their own (or a different threshold rule, or a default cache rate).
_OWN_CALCULATOR = frozenset(
    {
        "vertex_ai",
        "bedrock",
        "databricks",
        "fireworks_ai",
        "azure",
        "gemini",
        "deepseek",
        "tencent",
        "perplexity",
        "xai",
        "lemonade",
        "dashscope",
        "qwencloud",
        "qwen_ai_platform",
        "azure_ai",
        "together_ai",
        "replicate",
    }
)


def _rate(value: Any) -> Optional[float]:
    """A price as LiteLLM's get_cost_per_unit reads it, or raises _Unsupported."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Unsupported
    result = float(value)
    if not math.isfinite(result):
        raise _Unsupported
    return result


class _Unsupported(Exception):
    """This entry or call is priced by LiteLLM itself."""


def _parse_threshold(text: str) -> float:
    return float(text.replace("k", "")) * (1000 if "k" in text else 1)


def _entry_prices(info: Mapping[str, Any], provider: str) -> Tuple[Any, ...]:
    """The arguments of ``CostTable.add`` for one resolved entry, or raises _Unsupported."""
    if provider in _OWN_CALCULATOR or provider.startswith("vertex_ai"):
        raise _Unsupported
    threshold_keys = []
    for key, value in info.items():
        if value is None or key in _RATE_KEYS or key in _INERT_KEYS:
            continue
        if key.startswith("input_cost_per_audio_token_above_"):
            raise _Unsupported  # a modality threshold
        if key.startswith(tuple(f"{p}_above_" for p in _THRESHOLD_PREFIXES)) and "_tokens" in key:
            if key.endswith(_TIER_SUFFIXES):
                continue
            threshold_keys.append(key)
            continue
        if key.endswith(_TIER_SUFFIXES):
            continue
        if key.startswith("cache_creation_input_token_cost_above_1") and key.endswith("hr"):
            continue
        if any(word in key for word in _PRICE_WORDS) and key not in ("litellm_provider",):
            raise _Unsupported
    rates = [_rate(info.get(key)) for key in _RATE_KEYS]
    if not ((rates[0] or 0.0) > 0 or (rates[1] or 0.0) > 0):
        raise _Unsupported  # zero token prices: per-second or free, LiteLLM decides
    thresholds = []
    # LiteLLM's order: the keys sorted by their threshold (a stable sort), each applied in turn.
    try:
        ordered = sorted(
            threshold_keys,
            key=lambda k: _parse_threshold(k.rsplit("_above_", 1)[1].split("_tokens")[0]),
        )
    except ValueError:
        raise _Unsupported from None
    for key in ordered:
        text = key.rsplit("_above_", 1)[1].split("_tokens")[0]
        threshold = _parse_threshold(text)
        thresholds.append(
            (
                threshold,
                _rate(info.get(f"input_cost_per_token_above_{text}_tokens")),
                _rate(info.get(f"output_cost_per_token_above_{text}_tokens")),
                _rate(info.get(f"cache_creation_input_token_cost_above_{text}_tokens")),
                _rate(info.get(f"cache_read_input_token_cost_above_{text}_tokens")),
            )
        )
    return (*rates[:8], thresholds)


# ---- the price table and what has been resolved into it -----------------------------------------


class _Table:
    """The price table of one path (native or fallback) and the names resolved into it."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.by_name: Dict[Tuple[Any, Any], int] = {}  # (model, provider) -> index, -1: LiteLLM
        # completion_cost plans -> (index or -1, the name and provider LiteLLM priced under)
        self.plans: Dict[Tuple[Any, ...], Tuple[int, Any, Any]] = {}
        self.thresholds: Dict[int, Tuple[float, ...]] = {}  # index -> its price thresholds
        # (model, provider, thresholds passed) -> LiteLLM's BilledTokenRates for the breakdown
        self.rates: Dict[Tuple[Any, Any, int], Any] = {}


# fork() waits for a table update in progress: a child gets whole tables (and the lock free).
_lock = _fork.StateLock()
_tables: Dict[bool, _Table] = {}
_map_version: Tuple[int, int, int] = (0, -1, -1)
_counts = {"native": 0, "fallback": 0, "litellm": 0}


def _litellm() -> Any:
    import litellm

    return litellm


def _version(litellm: Any) -> Tuple[int, int, int]:
    model_cost = litellm.model_cost
    return (
        id(model_cost),
        len(model_cost),
        getattr(litellm.utils, "_model_cost_mutation_generation", 0),
    )


def _table(native: bool, litellm: Any) -> _Table:
    global _map_version
    version = _version(litellm)
    if version != _map_version:
        with _lock:
            _tables.clear()
            _map_version = version
    table = _tables.get(native)
    if table is None:
        with _lock:
            table = _tables.get(native)
            if table is None:
                raw = _native.CostTable() if native else _fallback_cost.CostTable()
                table = _tables[native] = _Table(raw)
    return table


def _resolve(litellm: Any, model: str, provider: Optional[str]) -> Tuple[str, str]:
    """The cost-map name and provider LiteLLM's cost_per_token prices ``model`` under (its own
    steps, for a call without a region)."""
    model_cost = litellm.model_cost
    if provider is not None:
        prefix = f"{provider}/"
        while model.startswith(prefix):
            remainder = model[len(prefix) :]
            if remainder.startswith(prefix):
                model = remainder
            else:
                break
        with_provider = model if model.startswith(prefix) else f"{provider}/{model}"
    else:
        with_provider = model
        _, provider, _, _ = litellm.get_llm_provider(model=model)
    assert provider is not None
    parts = model.split("/", 1)
    relative = with_provider == f"{provider}/{model}" and with_provider in model_cost
    without_prefix = model if len(parts) == 1 or relative else parts[1]
    if with_provider in model_cost:
        model = with_provider
    elif model in model_cost:
        pass
    elif without_prefix in model_cost:
        model = without_prefix
    return model, provider


def _index(table: _Table, litellm: Any, model: Any, provider: Any) -> int:
    key = (model, provider)
    index = table.by_name.get(key)
    if index is not None:
        return index
    index = -1
    if isinstance(model, str) and (provider is None or isinstance(provider, str)) and model:
        try:
            name, resolved_provider = _resolve(litellm, model, provider)
            info = litellm.get_model_info(model=name, custom_llm_provider=resolved_provider)
            prices = _entry_prices(info, resolved_provider)
        except Exception:  # unknown model, unsupported prices: LiteLLM answers (or raises)
            index = -1
        else:
            with _lock:
                index = table.table.add(*prices)
                table.thresholds[index] = tuple(t[0] for t in prices[-1])
    table.by_name[key] = index
    return index


# ---- usage ---------------------------------------------------------------------------------------

_PROMPT_DETAIL_FIELDS = frozenset(
    {"cached_tokens", "text_tokens", "audio_tokens", "cache_write_tokens", "cache_creation_tokens"}
)
_COMPLETION_DETAIL_FIELDS = frozenset(
    {
        "reasoning_tokens",
        "text_tokens",
        "audio_tokens",
        "accepted_prediction_tokens",
        "rejected_prediction_tokens",
    }
)


def _field(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)`` for a pydantic model, without its ``__getattr__`` (which
    costs microseconds when the attribute is missing, the usual case here)."""
    try:
        fields = obj.__dict__
    except AttributeError:
        return getattr(obj, name, None)
    if name in fields:
        return fields[name]
    extra = getattr(obj, "__pydantic_extra__", None)
    if extra:
        return extra.get(name)
    cls = type(obj)
    ask = _ask_object.get((cls, name))
    if ask is None:
        # a property or a class attribute (or not a pydantic model): the object answers
        ask = _ask_object[(cls, name)] = hasattr(cls, name) or not hasattr(cls, "model_fields")
    return getattr(obj, name, None) if ask else None


_ask_object: Dict[Tuple[type, str], bool] = {}


def _count(value: Any) -> int:
    if value is None:
        return 0
    if type(value) is not int:
        raise _Unsupported
    return value


def _types_utils() -> Any:
    """``litellm.types.utils`` (imported with litellm, which this module's callers have)."""
    return sys.modules.get("litellm.types.utils") or importlib.import_module("litellm.types.utils")


def _usage_counts(usage: Any) -> Tuple[Any, ...]:
    """The arguments of ``CostTable.cost`` after the index, from a LiteLLM ``Usage``; raises
    _Unsupported for a usage with other token classes."""
    if _field(usage, "inference_geo") is not None or _field(usage, "speed"):
        raise _Unsupported
    # Server-side tool calls (Anthropic's `server_tool_use`, xAI's and others'
    # `server_side_tool_usage_details`) are billed by LiteLLM's built-in tool pricing.
    if (
        _field(usage, "server_tool_use") is not None
        or _field(usage, "server_side_tool_usage_details") is not None
    ):
        raise _Unsupported
    prompt = usage.prompt_tokens
    completion = usage.completion_tokens
    if type(prompt) is not int or type(completion) is not int:
        raise _Unsupported  # set after the Usage was built (pydantic does not check): LiteLLM's
    details = usage.prompt_tokens_details
    if details is not None:
        if type(details) is not _types_utils().PromptTokensDetailsWrapper:
            raise _Unsupported  # a dict or other object assigned after the Usage was built
        for field, value in details:
            if value is not None and field not in _PROMPT_DETAIL_FIELDS:
                raise _Unsupported
        cached = _count(details.cached_tokens)
        written = _count(getattr(details, "cache_write_tokens", None)) or _count(
            getattr(details, "cache_creation_tokens", None)
        )
        text = _count(getattr(details, "text_tokens", None))
        audio = _count(details.audio_tokens)
    else:
        cached = written = text = audio = 0
    out = usage.completion_tokens_details
    if out is not None:
        if type(out) is not _types_utils().CompletionTokensDetailsWrapper:
            raise _Unsupported
        for field, value in out:
            if value is not None and field not in _COMPLETION_DETAIL_FIELDS:
                raise _Unsupported
        out_text = _count(getattr(out, "text_tokens", None))
        reasoning = _count(out.reasoning_tokens)
        out_audio = _count(out.audio_tokens)
    else:
        out_text = reasoning = out_audio = 0
    for value in (prompt, completion, cached, written, text, audio, out_text, reasoning, out_audio):
        if value < 0 or value > _MAX_TOKENS:
            # A usage object as LiteLLM got it (negative, or beyond the native table's 64-bit
            # counts): LiteLLM prices it as it does.
            raise _Unsupported
    return (
        prompt,
        completion,
        details is not None,
        cached,
        written,
        text,
        audio,
        out is not None,
        out_text,
        reasoning,
        out_audio,
    )


def _token_count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


# The largest token count the native table takes (a signed 64-bit integer).
_MAX_TOKENS = 2**63 - 1


# ---- the API -------------------------------------------------------------------------------------


def _custom(
    custom: Any,
    prompt: int,
    completion: int,
    cache_read: Any,
    cache_creation: Any,
) -> Tuple[float, float]:
    if not isinstance(custom, Mapping):
        raise _Unsupported
    input_rate = custom["input_cost_per_token"]
    output_rate = custom["output_cost_per_token"]
    read_rate = custom.get("cache_read_input_token_cost", input_rate)
    creation_rate = custom.get("cache_creation_input_token_cost", input_rate)
    for rate in (input_rate, output_rate, read_rate, creation_rate):
        if type(rate) is not float:
            raise _Unsupported
    read = float(cache_read) if cache_read else 0.0
    creation = float(cache_creation) if cache_creation else 0.0
    normalized = float(prompt)
    if read or creation:  # the counts were passed apart from the prompt (Anthropic's way)
        normalized += read + creation
    if normalized - read - creation < 0:
        raise _Unsupported
    if _state.fast or _state.choose():
        _counts["native"] += 1
        result: Tuple[float, float] = _native.cost_custom(
            normalized,
            completion,
            read,
            creation,
            input_rate,
            output_rate,
            read_rate,
            creation_rate,
        )
        return result
    _counts["fallback"] += 1
    return _fallback_cost.custom_cost(
        normalized, completion, read, creation, input_rate, output_rate, read_rate, creation_rate
    )


def cost_per_token(
    model: str = "",
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    *,
    custom_llm_provider: Optional[str] = None,
    cache_creation_input_tokens: Optional[int] = 0,
    cache_read_input_tokens: Optional[int] = 0,
    custom_cost_per_token: Optional[Mapping[str, float]] = None,
    usage_object: Any = None,
    **litellm_options: Any,
) -> Tuple[float, float]:
    """``(prompt_cost_usd, completion_cost_usd)``, equal to ``litellm.cost_per_token`` called
    with the same arguments (any other keyword of LiteLLM's is accepted and handed to it)."""
    _token_count("prompt_tokens", prompt_tokens)
    _token_count("completion_tokens", completion_tokens)
    if cache_creation_input_tokens is not None:
        _token_count("cache_creation_input_tokens", cache_creation_input_tokens)
    if cache_read_input_tokens is not None:
        _token_count("cache_read_input_tokens", cache_read_input_tokens)
    litellm = _litellm()
    try:
        if (
            litellm_options
            or model is None  # LiteLLM raises its own error for it, custom prices or not
            or max(
                prompt_tokens,
                completion_tokens,
                cache_creation_input_tokens or 0,
                cache_read_input_tokens or 0,
            )
            > _MAX_TOKENS
        ):
            # Counts beyond the native table's 64 bits: LiteLLM prices them, in Python ints.
            raise _Unsupported
        if custom_cost_per_token is not None:
            if usage_object is not None:
                raise _Unsupported
            return _custom(
                custom_cost_per_token,
                prompt_tokens,
                completion_tokens,
                cache_read_input_tokens,
                cache_creation_input_tokens,
            )
        native = _state.fast or _state.choose()
        table = _table(native, litellm)
        index = _index(table, litellm, model, custom_llm_provider)
        if index < 0:
            raise _Unsupported
        if usage_object is not None:
            if type(usage_object) is not litellm.Usage:
                raise _Unsupported
            counts = _usage_counts(usage_object)
        else:
            # LiteLLM builds Usage(prompt, completion, cache_creation_input_tokens=...,
            # cache_read_input_tokens=...): the two counts land in prompt_tokens_details.
            read = cache_read_input_tokens
            written = cache_creation_input_tokens
            details = type(read) is int or type(written) is int
            counts = (
                prompt_tokens,
                completion_tokens,
                details,
                read or 0,
                written or 0,
                0,
                0,
                False,
                0,
                0,
                0,
            )
        return _price(table, native, index, counts)
    except _Unsupported:
        pass
    _counts["litellm"] += 1
    options = dict(litellm_options)
    if custom_llm_provider is not None:
        options["custom_llm_provider"] = custom_llm_provider
    if custom_cost_per_token is not None:
        options["custom_cost_per_token"] = custom_cost_per_token
    if usage_object is not None:
        options["usage_object"] = usage_object
    result: Tuple[float, float] = litellm.cost_per_token(
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cache_creation_input_tokens=cache_creation_input_tokens,
        cache_read_input_tokens=cache_read_input_tokens,
        **options,
    )
    return result


def _price(table: _Table, native: bool, index: int, counts: Tuple[Any, ...]) -> Tuple[float, float]:
    if native:
        try:
            result: Tuple[float, float] = table.table.cost(index, *counts)
        except _flags.NativeError as exc:
            _state.native_failed(exc)
        else:
            _counts["native"] += 1
            if _state.consecutive_errors:
                _state.record_success()
            return result
        raise _Unsupported  # LiteLLM prices this call
    _counts["fallback"] += 1
    return table.table.cost(index, *counts)  # type: ignore[no-any-return]


# completion_cost: the options whose default value keeps LiteLLM on the token path priced here.
_COMPLETION_DEFAULTS: Dict[str, Any] = {
    "prompt": "",
    "messages": [],
    "completion": "",
    "total_time": 0.0,
    "region_name": None,
    "size": None,
    "quality": None,
    "n": None,
    "custom_cost_per_token": None,
    "custom_cost_per_second": None,
    "requested_model_info_override": None,
    "custom_pricing": None,
    "base_model": None,
    "standard_built_in_tools_params": None,
    "litellm_model_name": None,
    "router_model_id": None,
    "pricing_provider": None,
    "service_tier": None,
    "data_residency": None,
    "vertex_location": None,
}


def _inert(name: str, value: Any) -> bool:
    """Option values LiteLLM treats like the default: ``custom_pricing=False`` (it tests
    ``is True`` or truth), built-in tool parameters that are all unset."""
    if name == "custom_pricing":
        return value is False
    if name == "standard_built_in_tools_params":
        return isinstance(value, dict) and all(v is None for v in value.values())
    return False


_CHAT_CALL_TYPES = frozenset({None, "completion", "acompletion"})
_HIDDEN_KEYS = (
    "custom_llm_provider",
    "region_name",
    "model",
    "provider_response_model",
    "litellm_model_name",
)


def completion_cost(
    response: Any = None,
    *,
    model: Optional[str] = None,
    prompt_tokens: Optional[int] = None,
    completion_tokens: Optional[int] = None,
    usage: Any = None,
    custom_llm_provider: Optional[str] = None,
    call_type: Optional[str] = None,
    optional_params: Optional[Mapping[str, Any]] = None,
    litellm_logging_obj: Any = None,
    **litellm_options: Any,
) -> float:
    """The USD cost of a call, equal to LiteLLM's.

    - ``completion_cost(response, model=..., ...)``: ``litellm.completion_cost(
      completion_response=response, ...)`` with the same options.
    - ``completion_cost(model=..., prompt_tokens=..., completion_tokens=...)`` or
      ``completion_cost(model=..., usage=Usage(...))``: the sum of the two parts of
      ``litellm.cost_per_token(model=..., ...)`` for that usage.
    """
    if response is None:
        if model is None:
            raise TypeError("completion_cost needs a response, or a model and token counts")
        if usage is not None:
            prompt_part, completion_part = cost_per_token(
                model,
                usage_object=usage,
                custom_llm_provider=custom_llm_provider,
                **litellm_options,
            )
        else:
            prompt_part, completion_part = cost_per_token(
                model,
                prompt_tokens if prompt_tokens is not None else 0,
                completion_tokens if completion_tokens is not None else 0,
                custom_llm_provider=custom_llm_provider,
                **litellm_options,
            )
        return prompt_part + completion_part
    return _response_cost(
        _Request(
            response,
            model,
            custom_llm_provider,
            call_type,
            optional_params,
            litellm_logging_obj,
            litellm_options,
            None,
        )
    )


class _Request(NamedTuple):
    """One ``completion_cost`` call of a response, as LiteLLM's ``completion_cost`` takes it."""

    response: Any
    model: Optional[str]
    custom_llm_provider: Optional[str]
    call_type: Optional[str]
    optional_params: Optional[Mapping[str, Any]]
    litellm_logging_obj: Any
    options: Dict[str, Any]  # LiteLLM's other keywords, passed on as they are
    original: Optional[Callable[..., float]]  # the unpatched function, when called from patch()


def _response_cost(request: _Request) -> float:
    """``completion_cost`` of a response: native for a chat response priced by tokens, else
    LiteLLM's."""
    litellm = _litellm()
    response = request.response
    options = request.options
    try:
        plan = _plan_key(litellm, request)
        for name, value in options.items():
            if _COMPLETION_DEFAULTS.get(name, _Unsupported) != value and not _inert(name, value):
                # The router's deployment id is read only for a deployment with prices of its
                # own (custom_pricing=True, handed to LiteLLM above).
                if name != "router_model_id" or options.get("custom_pricing"):
                    raise _Unsupported
        counts = _usage_counts(response.usage)
        native = _state.fast or _state.choose()
        table = _table(native, litellm)
        known = table.plans.get(plan)
        if known is None:
            return _first_of_plan(litellm, table, plan, counts, native, request)
        index, priced_model, priced_provider = known
        if index >= 0:
            prompt_part, completion_part = _price(table, native, index, counts)
            total = prompt_part + completion_part
            if request.litellm_logging_obj is not None:
                _store_breakdown(
                    table,
                    index,
                    request.litellm_logging_obj,
                    priced_model,
                    priced_provider,
                    response.usage,
                    prompt_part,
                    completion_part,
                    total,
                )
            return total
    except _Unsupported:
        pass
    _counts["litellm"] += 1
    return _litellm_completion_cost(litellm, request)


def _litellm_completion_cost(litellm: Any, request: _Request) -> float:
    # A direct call while patch() is in place finds our wrapper under LiteLLM's name: go to the
    # function it wraps (the wrapper would come back here, into the recording lock).
    original = request.original
    function = original if original is not None else litellm.completion_cost
    function = getattr(function, "__fast_litellm_original__", function)
    result: float = function(
        completion_response=request.response,
        model=request.model,
        custom_llm_provider=request.custom_llm_provider,
        call_type=request.call_type,
        optional_params=request.optional_params,
        litellm_logging_obj=request.litellm_logging_obj,
        **request.options,
    )
    return result


def _plan_key(litellm: Any, request: _Request) -> Tuple[Any, ...]:
    """What LiteLLM's completion_cost reads to choose the name and provider it prices a chat
    response under (everything but the usage), or raises _Unsupported."""
    response, call_type = request.response, request.call_type
    optional_params = request.optional_params
    if type(response) is not litellm.ModelResponse or call_type not in _CHAT_CALL_TYPES:
        raise _Unsupported
    if litellm.cost_discount_config or litellm.cost_margin_config:
        raise _Unsupported
    usage = _field(response, "usage")
    if type(usage) is not litellm.Usage or _field(usage, "cost") is not None:
        raise _Unsupported
    if _field(usage, "service_tier") is not None:
        raise _Unsupported
    served = _field(response, "service_tier")
    if served is not None and not (
        isinstance(served, str) and served.lower() in ("default", "standard")
    ):
        raise _Unsupported
    if served is None and optional_params:
        requested = optional_params.get("service_tier")
        if requested is not None and not (
            isinstance(requested, str) and requested.lower() == "auto"
        ):
            raise _Unsupported
    if optional_params and optional_params.get("model_id"):
        raise _Unsupported
    hidden = getattr(response, "_hidden_params", None)
    if hidden is not None and not isinstance(hidden, dict):
        raise _Unsupported
    hidden_values: Tuple[Any, ...] = ()
    if hidden:
        if hidden.get("provider_specific_fields") or "upstream_usage_cost" in hidden:
            raise _Unsupported
        hidden_values = tuple(hidden.get(key) for key in _HIDDEN_KEYS)
    for choice in response.choices:
        message = _field(choice, "message")
        if message is None:
            raise _Unsupported
        if _field(message, "annotations") or _field(message, "images"):
            raise _Unsupported
    return (
        request.model,
        request.custom_llm_provider,
        response.model,
        call_type,
        hidden is None,
        hidden_values,
    )


def _first_of_plan(
    litellm: Any,
    table: _Table,
    plan: Tuple[Any, ...],
    counts: Tuple[Any, ...],
    native: bool,
    request: _Request,
) -> float:
    """The first response of a plan is priced by LiteLLM, which says which name and provider it
    priced under; the plan is kept only if the table gives that same answer for it, so a name
    resolved in a way this module does not follow stays with LiteLLM."""
    from litellm import cost_calculator

    seen: list = []
    owner = threading.get_ident()
    # `litellm.cost_per_token` is resolved lazily, on first access, and then kept: resolved
    # now, before the swap, it keeps LiteLLM's own function.
    getattr(litellm, "cost_per_token", None)
    _counts["litellm"] += 1
    with _recording_lock:
        # Read under the lock (never another call's stand-in: that call restores what it found
        # before it lets go), and what it is put back to.
        current = cost_calculator.cost_per_token
        calculator = getattr(current, "__fast_litellm_original__", current)

        # In place for the length of one LiteLLM call, process-wide: other threads may call it
        # meanwhile (with any arguments), or bind it for good (a lazy import done now). So it
        # is LiteLLM's function in all but one thing: it notes the calls of this thread.
        @functools.wraps(calculator)
        def recording(*args: Any, **kwargs: Any) -> Any:
            result = calculator(*args, **kwargs)
            if not args and threading.get_ident() == owner:
                seen.append((kwargs, result))
            return result

        recording.__fast_litellm_original__ = calculator  # type: ignore[attr-defined]
        _recording_swap.append((cost_calculator, current))
        cost_calculator.cost_per_token = recording  # type: ignore[assignment]
        try:
            total = _litellm_completion_cost(litellm, request)
        finally:
            cost_calculator.cost_per_token = current
            _recording_swap.clear()
    index = -1
    kwargs: Mapping[str, Any] = {}
    if len(seen) == 1:
        kwargs, parts = seen[0]
        if _plain_cost_per_token_call(kwargs):
            candidate = _index(
                table, litellm, kwargs.get("model"), kwargs.get("custom_llm_provider")
            )
            if candidate >= 0:
                try:
                    mine = _price(table, native, candidate, counts)
                except _Unsupported:
                    mine = None
                if mine == tuple(parts) and mine[0] + mine[1] == total:
                    index = candidate
    table.plans[plan] = (index, kwargs.get("model"), kwargs.get("custom_llm_provider"))
    return total


# Held while LiteLLM prices a first response (Python code: another thread may fork meanwhile),
# so a forked child gets it back unlocked, and gets LiteLLM's own cost_per_token back too.
_recording_lock = _fork.Lock()
_recording_swap: List[
    Tuple[Any, Any]
] = []  # (cost_calculator, its own cost_per_token) while swapped


def _restore_after_fork() -> None:
    for module, calculator in _recording_swap:
        module.cost_per_token = calculator
    _recording_swap.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restore_after_fork)
_PLAIN_CALL = {
    "region_name": None,
    "custom_cost_per_second": None,
    "custom_cost_per_token": None,
    "requested_model_info_override": None,
    "prompt_characters": None,
    "completion_characters": None,
    "audio_transcription_file_duration": 0.0,
    "rerank_billed_units": None,
    "service_tier": None,
    "data_residency": None,
    "vertex_location": None,
    "custom_model_info": None,
    "bedrock_model_info": None,
}


def _plain_cost_per_token_call(kwargs: Mapping[str, Any]) -> bool:
    if kwargs.get("call_type", "completion") not in ("completion", "acompletion"):
        return False
    return all(kwargs.get(name, value) == value for name, value in _PLAIN_CALL.items())


def _store_breakdown(
    table: _Table,
    index: int,
    logging_obj: Any,
    model: Any,
    provider: Any,
    usage: Any,
    prompt_part: float,
    completion_part: float,
    total: float,
) -> None:
    """What LiteLLM's completion_cost stores on the logging object (its cost breakdown, part of
    the logged payload): LiteLLM's ``get_token_type_cost_breakdown``, step by step, with its
    rates (``BilledTokenRates``) kept per model and threshold band. For the entries on the table
    those rates depend on the usage only through which price thresholds the prompt passes (no
    tiered table, off-peak window, explicit cache-read price, service tier, geo or speed: those
    are LiteLLM's to price), and resolving them is most of the breakdown's time."""
    from litellm import cost_calculator
    from litellm.litellm_core_utils.llm_cost_calc import utils

    prompt = usage.prompt_tokens
    band = sum(1 for threshold in table.thresholds.get(index, ()) if prompt > threshold)
    key = (model, provider, band)
    rates = table.rates.get(key)
    if rates is None:
        rates = utils.get_billed_token_rates(model=model, custom_llm_provider=provider, usage=usage)
        if rates is not None:
            table.rates[key] = rates
    if rates is None:
        breakdown = utils.get_token_type_cost_breakdown(
            model=model, custom_llm_provider=provider, usage=usage
        )
    else:
        read, cached_audio, written, written_details = utils._cache_token_counts(usage)
        cached_image = utils.parse_prompt_tokens_details(usage)["cached_image_tokens"]
        image_read_rate = (
            rates.cache_read_input_image_token_cost
            if rates.cache_read_input_image_token_cost is not None
            else rates.cache_read_input_token_cost
        )
        breakdown = utils.TokenTypeCostBreakdown(
            reasoning_cost=float(utils._reasoning_token_count(usage))
            * rates.output_cost_per_reasoning_token,
            cache_read_cost=(
                float(read - cached_audio - cached_image) * rates.cache_read_input_token_cost
                + float(cached_audio) * rates.cache_read_input_audio_token_cost
                + float(cached_image) * image_read_rate
            ),
            cache_creation_cost=utils.calculate_cache_writing_cost(
                cache_creation_tokens=written,
                cache_creation_token_details=written_details,
                cache_creation_cost=rates.cache_creation_input_token_cost,
                cache_creation_cost_by_ttl=rates.cache_creation_input_token_cost_by_ttl,
            ),
            rates=rates,
        )
    cost_calculator._store_cost_breakdown_in_logging_obj(
        litellm_logging_obj=logging_obj,
        prompt_tokens_cost_usd_dollar=prompt_part,
        completion_tokens_cost_usd_dollar=completion_part,
        cost_for_built_in_tools_cost_usd_dollar=0.0,
        total_cost_usd_dollar=total,
        original_cost=total,
        additional_costs=None,
        discount_percent=0.0,
        discount_amount=0.0,
        margin_percent=0.0,
        margin_fixed_amount=0.0,
        margin_total_amount=0.0,
        cache_read_cost=breakdown.cache_read_cost,
        cache_creation_cost=breakdown.cache_creation_cost,
        reasoning_cost=breakdown.reasoning_cost,
        service_tier=None,
        data_residency=None,
        vertex_location=None,
        billed_token_rates=breakdown.rates,
    )


# ---- status -------------------------------------------------------------------------------------


def stats() -> Dict[str, int]:
    """Calls priced on the native table, on the fallback table, and handed to LiteLLM."""
    return dict(_counts)


def reset_cost_stats() -> None:
    for key in _counts:
        _counts[key] = 0


def health_probe() -> Optional[str]:
    """Prices a usage on a fresh native table: None when the answer is the known one."""
    if _native is None:
        return "native module unavailable"
    table = _native.CostTable()
    index = table.add(2.5e-06, 1e-05, 1.25e-06, None, None, None, None, None, [])
    got = table.cost(index, 1000, 200, True, 400, 0, 0, 0, False, 0, 0, 0)
    want = _fallback_cost.CostTable()
    want.add(2.5e-06, 1e-05, 1.25e-06, None, None, None, None, None, [])
    expected = want.cost(0, 1000, 200, True, 400, 0, 0, 0, False, 0, 0, 0)
    if tuple(got) != expected:
        return f"native cost {got!r} != {expected!r}"
    return None


# ---- patch(features=["cost"]) ---------------------------------------------------------------------

# LiteLLM prices every request in litellm.cost_calculator.response_cost_calculator, which calls
# completion_cost by its module-level name; litellm.completion_cost is the same function for
# direct callers. Both names are replaced by one wrapper that keeps LiteLLM's signature.
_PATCH_MODULE = "litellm.cost_calculator"
_patched: Dict[str, Any] = {}  # "module.attribute" -> the original function
_patch_calls = {"native": 0, "litellm": 0}


def _make_wrapper(original: Callable[..., float]) -> Callable[..., float]:
    import functools

    @functools.wraps(original)
    def completion_cost(completion_response: Any = None, *args: Any, **kwargs: Any) -> float:
        if args or completion_response is None:
            return original(completion_response, *args, **kwargs)
        model = kwargs.pop("model", None)
        provider = kwargs.pop("custom_llm_provider", None)
        call_type = kwargs.pop("call_type", None)
        optional_params = kwargs.pop("optional_params", None)
        logging_obj = kwargs.pop("litellm_logging_obj", None)
        return _response_cost(
            _Request(
                completion_response,
                model,
                provider,
                call_type,
                optional_params,
                logging_obj,
                kwargs,
                original,
            )
        )

    completion_cost.__fast_litellm_original__ = original  # type: ignore[attr-defined]
    return completion_cost


def install_litellm_patch(litellm: Any) -> List[str]:
    """Replaces LiteLLM's ``completion_cost`` (see above); returns the places changed."""
    import sys

    module = sys.modules.get(_PATCH_MODULE)
    if module is None:
        import importlib

        module = importlib.import_module(_PATCH_MODULE)
    current = getattr(module, "completion_cost", None)
    if current is None or f"{_PATCH_MODULE}.completion_cost" in _patched:
        return []
    original = getattr(current, "__fast_litellm_original__", current)
    wrapper = _make_wrapper(original)
    # Every place is read before any is changed: ``litellm.completion_cost`` is a lazy attribute
    # that litellm resolves from litellm.cost_calculator on first access and then keeps, so read
    # after the module was patched it would keep the wrapper for good, out of unpatch()'s reach.
    places: List[Tuple[Any, str, Any]] = [
        (owner, name, getattr(owner, "completion_cost", None))
        for owner, name in ((module, _PATCH_MODULE), (litellm, "litellm"))
    ]
    changed = []
    for owner, name, value in places:
        if value is original:
            _patched[f"{name}.completion_cost"] = (owner, original)
            owner.completion_cost = wrapper
            changed.append(f"{name}.completion_cost")
    return changed


def remove_litellm_patch() -> bool:
    restored = False
    for owner, original in list(_patched.values()):
        owner.completion_cost = original
        restored = True
    _patched.clear()
    return restored


def litellm_patch_status() -> Dict[str, Any]:
    return {
        "patched": bool(_patched),
        "entry_points": {place: {"status": "patched"} for place in sorted(_patched)},
        "calls": stats(),
    }
