"""Token counting: exact OpenAI BPE counts, on the native path or the fallback.

Every function gives the number Python ``tiktoken`` gives for
``len(enc.encode(text, disallowed_special=()))`` (special-token text counts as ordinary text, as
LiteLLM counts it); ``count_message_tokens`` gives the number ``litellm.token_counter`` gives.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from . import _flags, _fork, _models
from ._models import (
    encoding_for_model,
    tokenizer_for_model,
    uses_legacy_message_accounting,
)
from ._vocab import ENCODING_NAMES, unknown_encoding
from .errors import FallbackNeeded, NativeError, UnsupportedContentError, UnsupportedModelError

__all__ = [
    "DEFAULT_ENCODING",
    "ENCODING_NAMES",
    "SimpleTokenCounter",
    "acount_request_tokens",
    "count_message_tokens",
    "count_request_tokens",
    "count_tokens",
    "count_tokens_batch",
    "encoding_for_model",
    "health_probe",
]

# What tiktoken-based callers (and LiteLLM for an unrecognised model) fall back to.
DEFAULT_ENCODING = "cl100k_base"

if _flags.native is not None:
    # The message counter's knobs as LiteLLM reads them, with Python's int() ("2_048" is 2048),
    # for both paths alike.
    _flags.native._set_count_config(_models.CHUNK_CHARS, _models.MAX_EXACT_CHARS)

_state = _flags.feature("TOKEN_COUNTING")
# The operation each dispatched method is recorded under (`FeatureState.run`).
_state.operations.update(
    count="count_tokens",
    count_batch="count_tokens_batch",
    count_messages="count_message_tokens",
    count_request="count_request_tokens",
)


class _Tokenizer:
    """One encoding on both paths; each side is loaded on first use, once."""

    __slots__ = ("name", "native", "fallback", "model", "_lock")

    def __init__(self, name: str, model: Optional[str]) -> None:
        self.name = name
        self.model = model
        self.native: Any = None
        self.fallback: Any = None
        self._lock = _fork.Lock()

    def side(self, native: bool) -> Any:
        """The native or the fallback encoding (``FeatureState.run`` asks for one)."""
        if native:
            return self.native or self.load_native()
        return self.fallback or self.load_fallback()

    def load_native(self) -> Any:
        with self._lock:
            if self.native is None:
                self.native = _native_encoding(self.name)
        return self.native

    def load_fallback(self) -> Any:
        with self._lock:
            if self.fallback is None:
                self.fallback = _fallback_tokens().Encoding(self.name)
        return self.fallback


_native_encodings: Dict[str, Any] = {}
_native_lock = _fork.Lock()


def _native_encoding(name: str) -> Any:
    # One native Encoding per vocabulary, shared by every model that maps to it.
    with _native_lock:
        encoding = _native_encodings.get(name)
        if encoding is None:
            # `name` is one of ENCODING_NAMES (checked by every caller). The tables built with the
            # native module load in microseconds; no file is read.
            encoding = _flags.native.Encoding.load(name)  # type: ignore[arg-type]
            _native_encodings[name] = encoding
        return encoding


class _HfTokenizer:
    """A Hugging Face ``tokenizer.json`` (Claude, DeepSeek, a cached Hub tokenizer) on both
    paths: ``_native.HfTokenizer`` or Python ``tokenizers``, each loaded on first use, once per
    file."""

    __slots__ = ("path", "native", "fallback", "_lock")
    name = None  # no OpenAI encoding

    def __init__(self, path: str) -> None:
        self.path = path
        self.native: Any = None
        self.fallback: Any = None
        self._lock = _fork.Lock()

    def side(self, native: bool) -> Any:
        if native:
            return self.native or self.load_native()
        return self.fallback or self.load_fallback()

    def load_native(self) -> Any:
        with self._lock:
            if self.native is None:
                self.native = _flags.native.HfTokenizer.load(self.path)  # type: ignore[union-attr]
        return self.native

    def load_fallback(self) -> Any:
        with self._lock:
            if self.fallback is None:
                self.fallback = _fallback_tokens().HfTokenizer(self.path)
        return self.fallback


_by_file: Dict[str, _HfTokenizer] = {}


def _file_tokenizer(path: str) -> _HfTokenizer:
    # One tokenizer per file, shared by every model that uses it.
    tokenizer = _by_file.get(path)
    if tokenizer is None:
        with _resolve_lock:
            tokenizer = _by_file.setdefault(path, _HfTokenizer(path))
    return tokenizer


class _LiteLLMDelegate:
    """Counts for models LiteLLM tokenizes with something other than OpenAI BPE (Hugging Face
    tokenizers for Llama, Cohere, ...): the answer is LiteLLM's own, on both paths."""

    __slots__ = ("model",)
    native = None  # never a native side: the dispatch fast path checks this

    def __init__(self, model: str) -> None:
        self.model = model

    def side(self, native: bool) -> "_LiteLLMDelegate":
        # litellm's own answer on both paths: there is nothing to dispatch.
        return self

    def count(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(
                f"count_tokens() argument 'text' must be str, not {type(text).__name__}"
            )
        return int(_litellm().token_counter(model=self.model, text=text))

    def count_batch(self, texts: Iterable[str]) -> List[int]:
        return [self.count(text) for text in _fallback_tokens().batch_texts(texts)]


def _fallback_tokens() -> Any:
    # Imported when a fallback is first built, not with the package: a process on the native path
    # never needs it.
    from ._fallback import tokens

    return tokens


def _litellm() -> Any:
    import litellm  # imported only for models we cannot count ourselves

    return litellm


_by_encoding: Dict[str, _Tokenizer] = {}
_by_model: Dict[str, Any] = {}
_resolve_lock = _fork.Lock()


def _encoding_tokenizer(name: str) -> _Tokenizer:
    tokenizer = _by_encoding.get(name)
    if tokenizer is None:
        if name not in ENCODING_NAMES:
            raise unknown_encoding(name)
        with _resolve_lock:
            tokenizer = _by_encoding.setdefault(name, _Tokenizer(name, None))
    return tokenizer


def _model_tokenizer(model: str) -> Any:
    tokenizer = _by_model.get(model)
    if tokenizer is not None:
        return tokenizer
    kind, detail = tokenizer_for_model(model)
    hf_kind = _models.huggingface_kind(model) if kind != "tiktoken" else None
    hf_file = _models.huggingface_tokenizer_file(hf_kind) if hf_kind is not None else None
    if kind == "tiktoken":
        tokenizer = _encoding_tokenizer(detail)
    elif hf_file is not None:
        tokenizer = _file_tokenizer(hf_file)
    else:
        try:
            _litellm()
        except ImportError:
            raise UnsupportedModelError(
                f"model {model!r} is not counted with an OpenAI encoding ({detail}); install "
                "litellm to count it with its own tokenizer, or pass encoding=... explicitly"
            ) from None
        tokenizer = _LiteLLMDelegate(model)
    # Until litellm is loaded (when it is installed), the answer may change once it is: keep it
    # out of the fast cache.
    if _models.settled():
        with _resolve_lock:
            # Model names come from callers; bound the cache so a stream of unique names cannot
            # grow it.
            if len(_by_model) > 4096:
                _by_model.clear()
            _by_model[model] = tokenizer
    return tokenizer


_models._on_refresh.append(_by_model.clear)
_DEFAULT = _encoding_tokenizer(DEFAULT_ENCODING)


def _tokenizer(model: Optional[str], encoding: Optional[str]) -> Any:
    if encoding is not None:
        if not isinstance(encoding, str):
            raise TypeError(f"encoding must be a str, not {type(encoding).__name__}")
        return _encoding_tokenizer(encoding)
    if model is None:
        return _DEFAULT
    if not isinstance(model, str):
        raise TypeError(f"model must be a str, not {type(model).__name__}")
    return _model_tokenizer(model)


def count_tokens(text: str, *, model: Optional[str] = None, encoding: Optional[str] = None) -> int:
    """The number of tokens in ``text``.

    ``encoding`` names an OpenAI encoding (``cl100k_base``, ``o200k_base``, ``p50k_base``,
    ``r50k_base``); otherwise ``model`` picks it with LiteLLM's rules; with neither,
    ``cl100k_base``.
    """
    # The hot path: two dictionary reads find the tokenizer, one attribute read decides the path.
    # Anything unusual (first use, unhashable or unknown names) goes through _tokenizer, which
    # raises the helpful errors.
    try:
        if encoding is not None:
            tokenizer = _by_encoding[encoding]
        elif model is not None:
            tokenizer = _by_model[model]
        else:
            tokenizer = _DEFAULT
    except (KeyError, TypeError):
        tokenizer = _tokenizer(model, encoding)
    native = tokenizer.native
    if native is not None and _state.fast:
        try:
            return native.count(text)
        except NativeError as exc:
            return _after_native_fault(tokenizer, exc).count(text)
    return _state.run(tokenizer.side, "count", text)


def _after_native_fault(tokenizer: "_Tokenizer", exc: NativeError) -> Any:
    """What ``FeatureState.run`` does after a native fault, for the inline fast paths of the two
    hottest calls (``count_tokens``, ``count_message_tokens``; a call through ``run`` costs
    about 0.3 µs, a fifth of a short chat): count it, and give the fallback that answers."""
    _state.native_failed(exc)
    _state.fallback_calls += 1
    return tokenizer.side(False)


def count_tokens_batch(
    texts: Sequence[str], *, model: Optional[str] = None, encoding: Optional[str] = None
) -> List[int]:
    """Counts of many texts, in order. The native path counts them in parallel on all cores with
    the GIL released."""
    return _state.run(_tokenizer(model, encoding).side, "count_batch", _materialize(texts))


def _materialize(texts: Any) -> Any:
    """The texts as a list or tuple: the input is read once, here, so a generator that raises
    raises to the caller (not inside the native call), and a re-run on the fallback sees the
    same items."""
    if isinstance(texts, (list, tuple, str, bytes)) or not hasattr(texts, "__iter__"):
        return texts  # the path's own check explains what is wrong
    return list(texts)


def count_message_tokens(
    messages: Sequence[Mapping[str, Any]],
    *,
    model: str,
    tools: Optional[Sequence[Mapping[str, Any]]] = None,
    tool_choice: Any = None,
) -> int:
    """The number ``litellm.token_counter(model=model, messages=messages, tools=tools,
    tool_choice=tool_choice)`` returns: message and name overheads, reply priming, tool
    definitions and tool calls included. One native call counts the whole conversation.

    Content LiteLLM prices only with the network or an optional package (a high-detail image by
    URL, a PDF) is handed to ``litellm.token_counter`` when litellm is installed; without litellm
    it raises ``UnsupportedContentError``.
    """
    if not isinstance(model, str):
        raise TypeError(f"model must be a str, not {type(model).__name__}")
    tokenizer = _model_tokenizer(model)
    try:
        if type(tokenizer) is _LiteLLMDelegate or (
            (tools or tool_choice is not None) and _prices_tools_by_chat_template(model)
        ):
            return _litellm_messages(model, messages, tools, tool_choice)
        legacy = uses_legacy_message_accounting(model)
        native = tokenizer.native
        if native is not None and _state.fast:
            try:
                return native.count_messages(messages, tools, tool_choice, legacy_accounting=legacy)
            except NativeError as exc:
                fallback = _after_native_fault(tokenizer, exc)
                return fallback.count_messages(
                    messages, tools, tool_choice, legacy_accounting=legacy
                )
            except FallbackNeeded:
                return tokenizer.side(False).count_messages(
                    messages, tools, tool_choice, legacy_accounting=legacy
                )
        return _state.run(
            tokenizer.side,
            "count_messages",
            messages,
            tools,
            tool_choice,
            legacy_accounting=legacy,
        )
    except UnsupportedContentError:
        try:
            _litellm()
        except ImportError:
            raise
        return _litellm_messages(model, messages, tools, tool_choice)


_NO_MESSAGES = "the request body has no 'messages' list"
_NOT_AN_OBJECT = "the request body must be a JSON object (an OpenAI chat-completions request)"
_NO_MODEL = "the request body has no 'model' string; pass model=..."


def _request_model(model: Optional[str], body_model: Any) -> str:
    if model is not None:
        return model
    if not isinstance(body_model, str):
        raise ValueError(_NO_MODEL)
    return body_model


def _check_request_args(body: Any, model: Any) -> None:
    if not isinstance(body, (bytes, str)):
        raise TypeError(
            f"count_request_tokens() argument 'body' must be bytes or str, not {type(body).__name__}"
        )
    if model is not None and not isinstance(model, str):
        raise TypeError(f"model must be a str, not {type(model).__name__}")


def _count_request_objects(body: Any, model: Optional[str]) -> int:
    """``json.loads`` + ``count_message_tokens``: the fallback, and the native path's answer for
    requests it hands over (content or models litellm counts itself)."""
    json = _fork.import_module("json")
    request = json.loads(body)
    if not isinstance(request, dict):
        raise ValueError(_NOT_AN_OBJECT)
    messages = request.get("messages")
    if messages is None:
        raise ValueError(_NO_MESSAGES)
    if not isinstance(messages, list):
        kind = {bool: "a boolean", str: "a string", dict: "an object"}.get(
            type(messages), "a number"
        )
        raise ValueError(f"the request body's 'messages' must be a list, not {kind}")
    return count_message_tokens(
        messages,
        model=_request_model(model, request.get("model")),
        tools=request.get("tools"),
        tool_choice=request.get("tool_choice"),
    )


class _RequestCounter:
    """``count_request_tokens`` on one path (``FeatureState.run`` picks the side)."""

    __slots__ = ("native",)

    def __init__(self, native: bool) -> None:
        self.native = native

    def side(self, native: bool) -> "_RequestCounter":
        return _NATIVE_REQUESTS if native else _FALLBACK_REQUESTS

    def plan(self, body: Any, model: Optional[str]) -> Any:
        """``(counter, parsed, legacy)`` for a native count, or ``None`` for one by
        ``_count_request_objects`` (``json.loads`` + ``count_message_tokens``: the fallback, and
        what the native path hands over: content or models litellm counts itself)."""
        if not self.native:
            return None
        try:
            parsed = _flags.native.parse_chat_request(body)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            # Refused by the native reader (which checks messages and tools before the model):
            # what json.loads + count_message_tokens makes of it, the same error first, or a
            # count where the model's request is LiteLLM's to judge.
            return None
        model = _request_model(model, parsed.model)
        tokenizer = _model_tokenizer(model)
        if (
            parsed.needs_litellm
            or type(tokenizer) is _LiteLLMDelegate
            or (parsed.has_tools and _prices_tools_by_chat_template(model))
        ):
            return None
        return (tokenizer.side(True), parsed, uses_legacy_message_accounting(model))

    def count_request(self, body: Any, model: Optional[str]) -> int:
        plan = self.plan(body, model)
        if plan is None:
            return _count_request_objects(body, model)
        counter, parsed, legacy = plan
        return int(counter.count_parsed(parsed, legacy_accounting=legacy))


_NATIVE_REQUESTS = _RequestCounter(True)
_FALLBACK_REQUESTS = _RequestCounter(False)


def count_request_tokens(body: "bytes | str", *, model: Optional[str] = None) -> int:
    """The number ``count_message_tokens`` gives for a chat-completions request body (JSON, as
    bytes or str): its ``messages``, ``tools`` and ``tool_choice``, counted for ``model`` or,
    when not given, the body's own ``model``.

    The native path parses the JSON in Rust and counts without the GIL, a large request on all
    cores. Invalid JSON, a body that is not an object, one without a ``messages`` list, or
    without a model: ``ValueError``.
    """
    _check_request_args(body, model)
    return _state.run(_NATIVE_REQUESTS.side, "count_request", body, model)


async def acount_request_tokens(body: "bytes | str", *, model: Optional[str] = None) -> int:
    """``count_request_tokens`` as a coroutine: on the native path the body is read on the
    caller's thread (the JSON parsed without the GIL) and counted on a worker thread, so the
    event loop is not held up by a large request."""
    import asyncio  # loaded already: this runs on an event loop

    _check_request_args(body, model)
    if _state.fast or _state.choose():
        try:
            plan = _NATIVE_REQUESTS.plan(body, model)
            if plan is None:  # handed over: json.loads and counting in Python, off the loop
                return await asyncio.to_thread(_count_request_objects, body, model)
            counter, parsed, legacy = plan
            return int(await counter.acount_parsed(parsed, legacy_accounting=legacy))
        except NativeError as exc:
            _state.native_failed(exc)
            _state.fallback_calls += 1
        except FallbackNeeded:
            pass
    return await asyncio.to_thread(
        _flags.timed_call,
        "count_request_tokens",
        "fallback",
        _FALLBACK_REQUESTS.count_request,
        body,
        model,
    )


def _prices_tools_by_chat_template(model: str) -> bool:
    """Whether LiteLLM counts ``model``'s tools with its chat template, so that its count is
    LiteLLM's to give. Without litellm there is nothing to hand over to: the count is ours."""
    return _models.prices_tools_by_chat_template(model) and _models.litellm_installed()


def _litellm_messages(model: str, messages: Any, tools: Any, tool_choice: Any) -> int:
    return int(
        _litellm().token_counter(
            model=model, messages=messages, tools=tools, tool_choice=tool_choice
        )
    )


class SimpleTokenCounter:
    """A token counter bound to one model (or encoding)."""

    __slots__ = ("model", "encoding", "_tokenizer")

    def __init__(self, model: Optional[str] = None, *, encoding: Optional[str] = None) -> None:
        self._tokenizer = _tokenizer(model, encoding)
        self.model = model
        self.encoding = self._tokenizer.name if isinstance(self._tokenizer, _Tokenizer) else None

    def count_tokens(self, text: str) -> int:
        return _state.run(self._tokenizer.side, "count", text)

    def count_tokens_batch(self, texts: Sequence[str]) -> List[int]:
        return _state.run(self._tokenizer.side, "count_batch", _materialize(texts))

    def __repr__(self) -> str:
        return f"SimpleTokenCounter(model={self.model!r}, encoding={self.encoding!r})"


# A fixed text with a known count (cl100k_base, as Python tiktoken counts it), so the probe proves
# the native path gives the right answer, not merely an answer.
HEALTH_PROBE_TEXT = "fast_litellm health probe: <|endoftext|> héllo 世界 12345"
HEALTH_PROBE_ENCODING = "cl100k_base"
HEALTH_PROBE_EXPECTED = 23  # tests/test_health.py checks this against tiktoken


def health_probe() -> Optional[str]:
    """Counts the probe text on the native path: None when right, else what was wrong."""
    count = _encoding_tokenizer(HEALTH_PROBE_ENCODING).side(True).count(HEALTH_PROBE_TEXT)
    if count == HEALTH_PROBE_EXPECTED:
        return None
    return f"native count {count} != expected {HEALTH_PROBE_EXPECTED}"
