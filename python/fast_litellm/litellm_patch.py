"""``patch()`` / ``unpatch()`` / ``patch_status()``: an installed LiteLLM, accelerated in place.

Token counting (the ``token_counting`` feature): every name ``token_counter`` is reachable by in
the loaded ``litellm`` modules (``litellm.token_counter``, ``litellm.utils.token_counter``,
``litellm.litellm_core_utils.token_counter.token_counter`` and every module that imported one of
them by name) is replaced by a function with the same signature. It answers the calls we count
exactly (chat messages of an OpenAI-tokenized model, with tools and tool choice) with
``count_message_tokens`` and hands every other call, with its arguments unchanged, to the
function it replaced: ``text=``, ``custom_tokenizer``, ``default_token_count``,
``count_response_tokens``, ``use_default_image_token_count``, ``litellm.disable_token_counter``,
models counted with a Hugging Face tokenizer, models whose chat template prices tools its own way,
content parts litellm prices differently (see ``_parts_litellm_prices_itself``), messages that
are not a plain list of dicts, and any call our path cannot answer (the original then gives its
own answer or raises its own exception).

Why the rules look the way they do:

- LiteLLM has two ``token_counter`` functions (``litellm.utils`` wraps the one in
  ``litellm.litellm_core_utils.token_counter``), each imported by name into other modules, so the
  places are found by identity in ``sys.modules``, not from a list that a new release would
  outdate. A module imported after ``patch()`` takes the replaced name from the module it imports
  it from, so it is covered too; ``unpatch()`` and ``patch_status()`` scan again for that reason.
- A function is replaced only when its signature is the one this wrapper was written for:
  a release that adds a parameter is left alone, and ``patch_status()`` says why.
- ``count_message_tokens`` itself asks ``litellm.token_counter`` for content it cannot price
  (an image by URL, a PDF, a Hugging Face model). A per-thread flag sends that nested call
  straight to the original, and an exception raised there is the original's own: it is raised
  as it is, never answered a second time (the original may have fetched an image).
- HTTP (the ``http`` feature, opt-in: ``patch(features=["token_counting", "http"])`` or
  ``FAST_LITELLM_PATCH_HTTP=1``): ``AsyncHTTPHandler.create_async_transport``, the one factory
  behind LiteLLM's async httpx clients (its own handlers and the OpenAI SDK clients it builds),
  returns our ``fast_litellm.httpx.AsyncTransport`` (one per process, shared: the native pool
  serves every event loop and thread). httpx stays above it, so requests, headers, timeouts,
  errors and streaming are LiteLLM's own. The original factory still answers what our transport
  does not do: client certificates, ``ssl_verify=False`` or a CA bundle path in
  ``litellm.ssl_verify``, a shared aiohttp session, ``litellm.force_ipv4``, HTTP/2.
  With it, the OpenAI SDK's send (``openai._base_client.AsyncAPIClient._send_request``) hands a
  plain request on a client of ours straight to the transport, making the calls
  ``httpx.AsyncClient.send`` would make that matter for it, and the SDK's request URL
  (``BaseClient._prepare_url``) is kept per base URL and path (see "The OpenAI SDK's send"
  below).
- Router strategies (the ``routing`` feature): the selection steps of latency- and cost-based
  routing in ``litellm.router_strategy``, class attributes swapped and put back; the reasons and
  the strategies left alone are written at the "Router strategies" section below.
- ``FAST_LITELLM_AUTO_PATCH=1`` installs an import hook when ``fast_litellm`` is imported: the
  process must import ``fast_litellm`` (before or after ``litellm``); nothing is loaded by a
  ``.pth`` file behind the application's back.
"""

from __future__ import annotations

import sys
import threading
import time
from types import FunctionType
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from . import _flags
from .tokens import count_message_tokens

__all__ = [
    "AUTO_PATCH_VARIABLE",
    "FEATURES",
    "install_import_hook",
    "patch",
    "patch_status",
    "unpatch",
]

AUTO_PATCH_VARIABLE = "FAST_LITELLM_AUTO_PATCH"
HTTP_VARIABLE = "FAST_LITELLM_PATCH_HTTP"

# The features patch() knows; one joins this list when its integration is built.
FEATURES = ("token_counting", "http", "cost", "routing")


def default_features() -> Tuple[str, ...]:
    """What ``patch()`` patches when not told: token counting, the request cost and the Router's
    latency-based selection (each gives LiteLLM's own answers, proven by
    tests/test_litellm_patch.py, tests/test_cost.py, tests/test_litellm_router_patch.py and
    tests/test_litellm_e2e.py; the routing one picks what LiteLLM picks from the same state and
    the same ``random`` draws, is as fast within noise for a handful of deployments and faster
    from about ten, so there is nothing to weigh before turning it on), and
    HTTP when ``FAST_LITELLM_PATCH_HTTP`` is true (sending LiteLLM's traffic through another
    client is a bigger step than computing, so it is asked for)."""
    import os

    raw = os.environ.get(HTTP_VARIABLE)
    if raw is not None and _flags._parse_bool(HTTP_VARIABLE, raw):
        return ("token_counting", "cost", "routing", "http")
    return ("token_counting", "cost", "routing")


_CORE_MODULE = "litellm.litellm_core_utils.token_counter"
_UTILS_MODULE = "litellm.utils"
_TOOL_SECTIONS_MODULE = "litellm.litellm_core_utils.prompt_templates.chat_template_tools"
# Where the two LiteLLM functions are defined: (module, name). A function defined there under
# that name is an original, also one left behind in an importing module by a reload.
_DEFINITIONS = ((_CORE_MODULE, "token_counter"), (_UTILS_MODULE, "token_counter"))
_ATTRIBUTE = "token_counter"

# The signature the replacement is written for: (name, kind, default), as in litellm 1.110.2.
_POSITIONAL_OR_KEYWORD = "POSITIONAL_OR_KEYWORD"
_EXPECTED_PARAMETERS = (
    ("model", _POSITIONAL_OR_KEYWORD, ""),
    ("custom_tokenizer", _POSITIONAL_OR_KEYWORD, None),
    ("text", _POSITIONAL_OR_KEYWORD, None),
    ("messages", _POSITIONAL_OR_KEYWORD, None),
    ("count_response_tokens", _POSITIONAL_OR_KEYWORD, False),
    ("tools", _POSITIONAL_OR_KEYWORD, None),
    ("tool_choice", _POSITIONAL_OR_KEYWORD, None),
    ("use_default_image_token_count", _POSITIONAL_OR_KEYWORD, False),
    ("default_token_count", _POSITIONAL_OR_KEYWORD, None),
)

_lock = threading.RLock()
# original -> its replacement, and back; a replacement is built once per original, so patching
# again after unpatch() installs the very same object.
_replacement_of: Dict[Callable[..., Any], Callable[..., Any]] = {}
_original_of: Dict[Callable[..., Any], Callable[..., Any]] = {}
_signature_ok: Dict[Callable[..., Any], Optional[str]] = {}
# entry point -> why it was not patched, as found by the last patch()
_skipped: Dict[str, str] = {}
_upstream_native: Dict[str, str] = {}
_hook: Optional["_LiteLLMImportHook"] = None
_last_patch_ms: Optional[float] = None


class _Nesting(threading.local):
    # ``inside``: this thread is in our counting path; ``delegated``: from there it called the
    # original (count_message_tokens asking litellm), whose exception is therefore final.
    inside = False
    delegated = False


_nesting = _Nesting()


def _make_replacement(original: Callable[..., Any], litellm: Any) -> Callable[..., Any]:
    tool_sections = sys.modules.get(_TOOL_SECTIONS_MODULE)
    # Without litellm's tool-section table we cannot tell which models price tools their own
    # way: then every call with tools goes to the original.
    tool_section: Optional[Callable[[str], Any]] = getattr(
        tool_sections, "chat_template_tool_section", None
    )
    nesting = _nesting

    def token_counter(
        model: Any = "",
        custom_tokenizer: Any = None,
        text: Any = None,
        messages: Any = None,
        count_response_tokens: Any = False,
        tools: Any = None,
        tool_choice: Any = None,
        use_default_image_token_count: Any = False,
        default_token_count: Any = None,
    ) -> Any:
        if (
            type(messages) is list
            and text is None
            and custom_tokenizer is None
            and count_response_tokens is False
            and default_token_count is None
            and (use_default_image_token_count is False or use_default_image_token_count is None)
            and type(model) is str
            and litellm.disable_token_counter is not True
            and (
                (tools is None and tool_choice is None)
                or (tool_section is not None and tool_section(model) is None)
            )
            and not nesting.inside
            and not _parts_litellm_prices_itself(messages)
        ):
            nesting.inside = True
            nesting.delegated = False
            try:
                return count_message_tokens(
                    messages, model=model, tools=tools, tool_choice=tool_choice
                )
            except Exception:
                if nesting.delegated:
                    raise
                # Anything our path refuses, the original answers in its own way.
            finally:
                nesting.inside = False
        elif nesting.inside:
            nesting.delegated = True
        return original(
            model,
            custom_tokenizer,
            text,
            messages,
            count_response_tokens,
            tools,
            tool_choice,
            use_default_image_token_count,
            default_token_count,
        )

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(token_counter, attribute, getattr(original, attribute, None))
    token_counter.__wrapped__ = original  # type: ignore[attr-defined]
    return token_counter


def _parts_litellm_prices_itself(messages: List[Any]) -> bool:
    """Whether a message holds a content part that ``count_message_tokens`` prices differently
    from litellm 1.110.2, so that litellm must count the conversation:

    - an inline (``data:``) image with detail ``auto`` or none: litellm reads its size and
      charges high-detail tiles, ``count_message_tokens`` the flat low-detail price;
    - a text part whose ``text`` is not a string (``None``): litellm counts it one token lower;
    - a block (a server tool's result, a tool result) whose ``content`` is or holds a
      ``document``: litellm checks it against its pydantic type first, and raises for one that
      does not fit, where ``count_message_tokens`` counts what is there.

    Only content lists are looked into, so a text-only conversation costs one type check per
    message.
    """
    for message in messages:
        content = message.get("content") if type(message) is dict else None
        if type(content) is not list:
            continue
        for part in content:
            if type(part) is not dict:
                continue
            kind = part.get("type")
            if kind == "text" and not isinstance(part.get("text"), str):
                return True
            inner = part.get("content")
            if type(inner) is dict and inner.get("type") == "document":
                return True
            if type(inner) is list and any(
                type(item) is dict and item.get("type") == "document" for item in inner
            ):
                return True
            if kind != "image_url":
                continue
            image = part.get("image_url")
            if type(image) is dict:
                url = image.get("url")
                if image.get("detail", "auto") != "auto":
                    continue
            else:
                url = image
            if isinstance(url, str) and url.startswith("data:"):
                return True
    return False


def _signature_problem(function: Callable[..., Any]) -> Optional[str]:
    """None when ``function`` takes exactly the parameters the replacement passes on."""
    known = _signature_ok.get(function, False)
    if known is not False:
        return known  # type: ignore[return-value]
    import inspect

    try:
        parameters = tuple(
            (p.name, p.kind.name, p.default)
            for p in inspect.signature(function).parameters.values()
        )
    except (TypeError, ValueError) as exc:
        problem: Optional[str] = f"its signature cannot be read ({exc})"
    else:
        if parameters == _EXPECTED_PARAMETERS:
            problem = None
        else:
            shown = ", ".join(f"{name}={default!r}" for name, _, default in parameters)
            problem = f"its signature ({shown}) is not the one this version of fast_litellm wraps"
    _signature_ok[function] = problem
    return problem


def _is_original(value: Any) -> bool:
    return (
        isinstance(value, FunctionType)
        and value not in _original_of
        and (getattr(value, "__module__", None), getattr(value, "__qualname__", None))
        in _DEFINITIONS
    )


def _litellm_modules() -> List[Tuple[str, Any]]:
    return [
        (name, module)
        for name, module in list(sys.modules.items())
        if (name == "litellm" or name.startswith("litellm.")) and module is not None
    ]


def _places() -> List[Tuple[str, Any, Any]]:
    """Every ``(module name, module, value)`` whose ``token_counter`` is an original or ours."""
    found = []
    for name, module in _litellm_modules():
        namespace = getattr(module, "__dict__", None)
        value = namespace.get(_ATTRIBUTE) if namespace is not None else None
        # Only plain functions: other objects under this name (a submodule) are not ours to judge.
        if isinstance(value, FunctionType) and (value in _original_of or _is_original(value)):
            found.append((name, module, value))
    return found


def _upstream_routes() -> Dict[str, str]:
    """How LiteLLM's own native bridge routes token counting now: route -> decision name.

    litellm 1.110.2 keeps both routes on Python whatever ``LITELLM_RUST`` or ``litellm.rust()``
    say; a release that sends one to its native code is left alone (see ``patch``).
    """
    catalog = sys.modules.get("litellm.rust_bridge.catalog")
    if catalog is None:
        return {}
    routes: Dict[str, str] = {}
    try:
        for route, provider in (("TOKEN_COUNTER", None), ("TOKENIZER", "tiktoken")):
            context = catalog.RouteContext(catalog.Route[route], provider=provider)
            routes[route.lower()] = catalog.decision(context).name.lower()
    except Exception as exc:  # a catalog of another shape: say so, decide nothing from it
        routes["unknown"] = f"{type(exc).__name__}: {exc}"
    return routes


def _feature_names(features: Union[None, str, Iterable[str]]) -> List[str]:
    if features is None:
        return list(default_features())
    if isinstance(features, str):
        features = [features]
    names = []
    for name in features:
        if not isinstance(name, str):
            raise TypeError(f"features must be names (str), not {type(name).__name__}")
        key = name.strip().lower().replace("-", "_")
        if key not in FEATURES:
            raise ValueError(
                f"unknown feature {name!r}; features patch() knows: {', '.join(FEATURES)}"
            )
        names.append(key)
    return names


def patch(features: Union[None, str, Iterable[str]] = None) -> Dict[str, Any]:
    """Accelerates the loaded ``litellm`` in place and returns ``patch_status()``.

    ``features``: the names to patch (default: ``"token_counting"``, plus ``"http"`` when
    ``FAST_LITELLM_PATCH_HTTP`` is true; see ``default_features()``). Safe to call
    again (from any thread, also after ``importlib.reload`` of litellm modules): what is already
    patched stays, what is new is patched. Raises ``ImportError`` if litellm is not installed.
    """
    names = _feature_names(features)
    litellm = sys.modules.get("litellm")
    if litellm is None:
        import litellm  # the caller asked for litellm to be patched
    _patch(names, litellm)
    return patch_status()


def _patch(names: List[str], litellm: Any) -> None:
    global _last_patch_ms
    started = time.perf_counter()
    with _lock:
        skipped_before = dict(_skipped)
        changed: List[str] = []
        if "token_counting" in names:
            changed = _patch_token_counting(litellm)
        if "cost" in names:
            from .cost import install_litellm_patch

            changed += install_litellm_patch(litellm)
        if "routing" in names:
            changed += _patch_routing()
        if "http" in names:
            http_changed = _patch_http()
            if http_changed:
                _flush_llm_clients(litellm)
            changed += http_changed
        _last_patch_ms = (time.perf_counter() - started) * 1000
        # Said once: a repeated patch() that changes nothing stays quiet.
        if changed or _skipped != skipped_before:
            _log_patch(changed)


def _patch_token_counting(litellm: Any) -> List[str]:
    _skipped.clear()
    _upstream_native.clear()
    _upstream_native.update(_upstream_routes())
    native_routes = {route: how for route, how in _upstream_native.items() if how != "python"}
    if native_routes:
        shown = ", ".join(f"{route}={how}" for route, how in native_routes.items())
        for module_name, attribute in _DEFINITIONS:
            _skipped[f"{module_name}.{attribute}"] = (
                f"litellm's own native bridge may count here ({shown}); left to it"
            )
        return []
    wrappable = set()
    for module_name, attribute in _DEFINITIONS:
        entry = f"{module_name}.{attribute}"
        module = sys.modules.get(module_name)
        value: Any = getattr(module, attribute, None) if module is not None else None
        if isinstance(value, FunctionType):
            value = _original_of.get(value, value)
        if not _is_original(value):
            _skipped[entry] = f"not in this litellm ({module_name} has no function {attribute})"
            continue
        problem = _signature_problem(value)
        if problem is not None:
            _skipped[entry] = problem
            continue
        wrappable.add((value.__module__, value.__qualname__))
    changed = []
    for name, module, value in _places():
        if value in _original_of:
            continue  # already ours
        if (value.__module__, value.__qualname__) not in wrappable:
            continue
        problem = _signature_problem(value)  # a function left behind by a reload may differ
        if problem is not None:
            _skipped[f"{name}.{_ATTRIBUTE}"] = problem
            continue
        replacement = _replacement_of.get(value)
        if replacement is None:
            replacement = _make_replacement(value, litellm)
            _replacement_of[value] = replacement
            _original_of[replacement] = value
        setattr(module, _ATTRIBUTE, replacement)
        changed.append(f"{name}.{_ATTRIBUTE}")
    return changed


def unpatch() -> Dict[str, Any]:
    """Puts every original object back where a replacement is (identity restored) and returns
    ``patch_status()``. Safe to call when nothing is patched."""
    with _lock:
        restored = []
        for name, module, value in _places():
            original = _original_of.get(value)
            if original is not None:
                setattr(module, _ATTRIBUTE, original)
                restored.append(name)
        _skipped.clear()
        if restored:
            _logger().info("restored litellm's token_counter in %d modules", len(restored))
        cost = sys.modules.get(f"{__package__}.cost")
        if cost is not None and cost.remove_litellm_patch():
            _logger().info("restored litellm's completion_cost")
        if _unpatch_routing():
            _logger().info("restored litellm's latency-based routing selection")
        if _unpatch_http():
            _flush_llm_clients(sys.modules.get("litellm"))
            _logger().info("restored litellm's async HTTP transport factory")
    return patch_status()


def patch_status() -> Dict[str, Any]:
    """What is patched now: ``{"patched": bool, "litellm_version": ..., "auto_patch": ...,
    "features": {"token_counting": {"patched": bool, "entry_points": {place: {"status":
    "patched" | "not patched" | "skipped", "reason": ...}}, "upstream_native": {...}}}}``.

    Entry points are found again on every call, so modules imported after ``patch()`` show too.
    """
    with _lock:
        entry_points: Dict[str, Dict[str, str]] = {}
        if "litellm" in sys.modules:
            for name, _module, value in _places():
                place = f"{name}.{_ATTRIBUTE}"
                if value in _original_of:
                    entry_points[place] = {"status": "patched"}
                else:
                    entry_points[place] = {"status": "not patched"}
            for place, reason in _skipped.items():
                entry_points[place] = {"status": "skipped", "reason": reason}
        patched_places = sum(1 for e in entry_points.values() if e["status"] == "patched")
        token_counting: Dict[str, Any] = {
            "patched": patched_places > 0,
            "entry_points": dict(sorted(entry_points.items())),
            "upstream_native": dict(_upstream_native),
        }
        http = _http_status()
        cost_module = sys.modules.get(f"{__package__}.cost")
        cost: Dict[str, Any] = (
            cost_module.litellm_patch_status() if cost_module is not None else {"patched": False}
        )
        routing = _routing_status()
        return {
            "patched": (
                patched_places > 0 or http["patched"] or cost["patched"] or routing["patched"]
            ),
            "litellm_version": _litellm_version(),
            "auto_patch": _auto_patch_status(),
            "patch_ms": None if _last_patch_ms is None else round(_last_patch_ms, 3),
            "features": {
                "token_counting": token_counting,
                "http": http,
                "cost": cost,
                "routing": routing,
            },
        }


_version_cache: Dict[str, Optional[str]] = {}


def _litellm_version() -> Optional[str]:
    if "litellm" not in sys.modules:
        return None
    if "litellm" not in _version_cache:
        try:
            from importlib.metadata import version

            _version_cache["litellm"] = version("litellm")
        except Exception:  # an unusual install (a vendored copy): the version is unknown
            _version_cache["litellm"] = None
    return _version_cache["litellm"]


def _auto_patch_status() -> str:
    if _hook is None:
        return "off"
    return "waiting for litellm to be imported" if _hook.waiting else "litellm patched on import"


def _logger() -> Any:
    import logging  # loaded only once there is something to say (litellm has loaded it by then)

    return logging.getLogger("fast_litellm")


def _log_patch(changed: List[str]) -> None:
    logger = _logger()
    if changed:
        logger.info(
            "litellm token counting patched in %d places: %s",
            len(changed),
            ", ".join(changed),
        )
    for place, reason in _skipped.items():
        logger.info("%s not patched: %s", place, reason)


# ---- HTTP --------------------------------------------------------------------------------------

_HTTP_MODULE = "litellm.llms.custom_httpx.http_handler"
_HTTP_CLASS = "AsyncHTTPHandler"
# The factory and the alias LiteLLM keeps for it; both are looked up on the class at call time.
_HTTP_ATTRIBUTES = ("create_async_transport", "_create_async_transport")
_HTTP_PARAMETERS = ("ssl_context", "ssl_verify", "shared_session", "http2", "cert", "limits")
# attribute -> the original staticmethod object, while patched
_http_originals: Dict[str, Any] = {}
_http_skipped: Dict[str, str] = {}
_http_transport: Any = None
_http_calls = {"ours": 0, "original": 0}


def _shared_transport() -> Any:
    """The one transport of the process. Closing an httpx client closes its transport; LiteLLM
    closes and rebuilds its clients, so the shared one ignores ``aclose`` (the pool lives as long
    as the process, like LiteLLM's own cached clients)."""
    global _http_transport
    if _http_transport is None:
        from .http import ConnectionPoolConfig
        from .httpx import AsyncTransport

        class _SharedTransport(AsyncTransport):
            async def aclose(self) -> None:
                return None

        _http_transport = _SharedTransport(
            pool=ConnectionPoolConfig(max_connections=1000, max_keepalive_connections=100)
        )
    return _http_transport


def _make_http_factory(original: Callable[..., Any], litellm: Any) -> Callable[..., Any]:
    def create_async_transport(
        ssl_context: Any = None,
        ssl_verify: Any = None,
        shared_session: Any = None,
        http2: bool = False,
        cert: Any = None,
        limits: Any = None,
    ) -> Any:
        ours = not (
            cert is not None
            or ssl_verify is False
            or shared_session is not None
            or http2
            or getattr(litellm, "force_ipv4", False)
            or isinstance(getattr(litellm, "ssl_verify", True), str)
            or getattr(litellm, "ssl_verify", True) is False
        )
        # With the native path off, LiteLLM's own transport is what it would use anyway.
        transport = _shared_transport() if ours else None
        if transport is not None and transport.native:
            _http_calls["ours"] += 1
            return transport
        _http_calls["original"] += 1
        kwargs: Dict[str, Any] = {} if limits is None else {"limits": limits}
        return original(
            ssl_context=ssl_context,
            ssl_verify=ssl_verify,
            shared_session=shared_session,
            http2=http2,
            cert=cert,
            **kwargs,
        )

    create_async_transport.__doc__ = original.__doc__
    create_async_transport.__wrapped__ = original  # type: ignore[attr-defined]
    return create_async_transport


def _flush_llm_clients(litellm: Any) -> None:
    """LiteLLM keeps the SDK clients it built (with their transports) for an hour per event
    loop; they are dropped so that the next request builds one with the transport now in place.
    (The handlers litellm builds while it is imported keep the transport they were built with.)"""
    cache = getattr(litellm, "in_memory_llm_clients_cache", None)
    flush = getattr(cache, "flush_cache", None)
    if callable(flush):
        flush()


def _http_handler_class() -> Any:
    module = sys.modules.get(_HTTP_MODULE)
    if module is None:
        try:
            import importlib

            module = importlib.import_module(_HTTP_MODULE)
        except ImportError:
            return None
    return getattr(module, _HTTP_CLASS, None)


def _patch_http() -> List[str]:
    import inspect

    _http_skipped.clear()
    cls = _http_handler_class()
    litellm = sys.modules.get("litellm")
    if cls is None:
        _http_skipped[f"{_HTTP_MODULE}.{_HTTP_CLASS}"] = "not in this litellm"
        return []
    try:
        import httpx  # noqa: F401  (our transport is an httpx transport)
    except ImportError:
        _http_skipped[f"{_HTTP_MODULE}.{_HTTP_CLASS}"] = "httpx is not installed"
        return []
    changed = []
    for attribute in _HTTP_ATTRIBUTES:
        place = f"{_HTTP_MODULE}.{_HTTP_CLASS}.{attribute}"
        if attribute in _http_originals:
            continue
        raw = cls.__dict__.get(attribute)
        if not isinstance(raw, staticmethod):
            _http_skipped[place] = "not a staticmethod in this litellm"
            continue
        parameters = tuple(inspect.signature(raw.__func__).parameters)
        if parameters != _HTTP_PARAMETERS:
            _http_skipped[place] = (
                f"signature {parameters} differs from the one this patch is written for "
                f"{_HTTP_PARAMETERS}"
            )
            continue
        _http_originals[attribute] = raw
        setattr(cls, attribute, staticmethod(_make_http_factory(raw.__func__, litellm)))
        changed.append(place)
    if _http_originals:
        changed += _patch_sdk()
    return changed


def _unpatch_http() -> bool:
    cls = _http_handler_class() if _http_originals else None
    restored = False
    for attribute, original in list(_http_originals.items()):
        if cls is not None:
            setattr(cls, attribute, original)
            restored = True
        del _http_originals[attribute]
    restored = _unpatch_sdk() or restored
    _http_skipped.clear()
    return restored


# The OpenAI SDK's send (``AsyncAPIClient._send_request``, one line: ``await
# self._client.send(request, stream=stream, **kwargs)``), below its retries, its key refresh and
# its provider hooks, which still run as they are. For a request the SDK does not stream, whose
# ``httpx.AsyncClient`` (that very class) sends this URL through our shared transport and has
# nothing configured that the layers of ``AsyncClient.send`` act on (no auth, no event hooks,
# no user info in the URL, no per-call auth or redirect choice), those layers do nothing for the
# answer and cost about a tenth of the SDK's request: the auth flow (a generator per request),
# the redirect loop, and the cookie jar, which builds a urllib request from the URL for every
# response, Set-Cookie or not. The replacement makes the calls httpx makes, in its order: the
# client's state and timeout, the transport inside httpx's ``request_context``, the response's
# request, its stream bound to the client, the cookie jar (only when the response sets a cookie:
# without one the jar adds nothing), the default encoding, httpx's log line, the redirect (a
# response that redirects is handed to the client's own redirect loop), the body read. Any
# other request goes to the SDK's own method. Measured with the URL step below, 64 SDK requests in
# flight on our transport (``chat.completions.with_raw_response.create`` and ``parse()``, as
# LiteLLM makes them, states alternated in one process): 779 -> 649 µs of CPU per request;
# about 130 µs of the 3.6 ms a ``Router.acompletion`` costs end to end.

_SDK_SEND_MODULE = "openai._base_client"
_SDK_SEND_CLASS = "AsyncAPIClient"
_SDK_SEND_ATTRIBUTE = "_send_request"
_SDK_SEND_PLACE = f"{_SDK_SEND_MODULE}.{_SDK_SEND_CLASS}.{_SDK_SEND_ATTRIBUTE}"
_SDK_SEND_PARAMETERS = (
    ("self", "POSITIONAL_OR_KEYWORD"),
    ("request", "POSITIONAL_OR_KEYWORD"),
    ("stream", "KEYWORD_ONLY"),
    ("kwargs", "VAR_KEYWORD"),
)
# What the replacement uses of httpx's client, and the httpx releases whose
# ``AsyncClient.send`` it was checked against (its steps are those of that method: another
# release may add one, so it is left alone there, and said so in patch_status()).
_HTTPX_SEND_RELEASES = ((0, 29),)
_HTTPX_CLIENT_NAMES = (
    "_transport_for_url",
    "_set_timeout",
    "_build_redirect_request",
    "_send_handling_redirects",
)
# place -> (class, the original function in its __dict__), while patched
_sdk_originals: Dict[str, Tuple[Any, Any]] = {}
_sdk_replacements: Dict[Any, Any] = {}
_sdk_sends = {"direct": 0, "httpx": 0}


def _make_sdk_send(original: Callable[..., Any]) -> Callable[..., Any]:
    import http.cookiejar
    import time as time_module

    import httpx
    from httpx import _client as httpx_client
    from httpx._exceptions import request_context

    AsyncClient = httpx.AsyncClient
    AsyncByteStream = httpx.AsyncByteStream
    CLOSED = httpx_client.ClientState.CLOSED
    OPENED = httpx_client.ClientState.OPENED
    BoundAsyncStream = httpx_client.BoundAsyncStream
    httpx_logger = httpx_client.logger
    cookiejar = http.cookiejar
    perf_counter = time_module.perf_counter
    counts = _sdk_sends

    async def _send_request(self: Any, request: Any, *, stream: bool, **kwargs: Any) -> Any:
        client = self._client
        transport = _http_transport
        if (
            stream
            or kwargs
            or transport is None
            or type(client) is not AsyncClient
            or client._auth is not None
            or client._state == CLOSED
            or client.max_redirects < 0
            or client._event_hooks["request"]
            or client._event_hooks["response"]
            # the jar's debug log (off unless set) would log each response it looks at
            or getattr(cookiejar, "debug", False)
            or not isinstance(request.stream, AsyncByteStream)
        ):
            counts["httpx"] += 1
            return await original(self, request, stream=stream, **kwargs)
        url = request.url
        if url.username or url.password or client._transport_for_url(url) is not transport:
            counts["httpx"] += 1
            return await original(self, request, stream=stream, **kwargs)
        counts["direct"] += 1
        # AsyncClient.send
        client._state = OPENED
        client._set_timeout(request)
        # AsyncClient._send_single_request
        start = perf_counter()
        with request_context(request=request):
            response = await transport.handle_async_request(request)
        response.request = request
        # An AsyncByteStream: our async transport makes no other (httpx asserts it here).
        stream_of_response: Any = response.stream
        response.stream = BoundAsyncStream(stream_of_response, response=response, start=start)
        for name, _ in response.headers.raw:
            lowered = name.lower()
            if lowered == b"set-cookie" or lowered == b"set-cookie2":
                client.cookies.extract_cookies(response)
                break
        response.default_encoding = client._default_encoding
        httpx_logger.info(
            'HTTP Request: %s %s "%s %d %s"',
            request.method,
            request.url,
            response.http_version,
            response.status_code,
            response.reason_phrase,
        )
        # AsyncClient._send_handling_redirects, its first turn (no response hooks); a
        # redirect to follow is sent by the client's own loop, as its next turn.
        next_request = None
        try:
            response.history = []
            if response.has_redirect_location:
                next_request = client._build_redirect_request(request, response)
                if client.follow_redirects:
                    await response.aread()
                else:
                    response.next_request = next_request
                    next_request = None
        except BaseException:
            await response.aclose()
            raise
        if next_request is not None:
            response = await client._send_handling_redirects(
                next_request, follow_redirects=True, history=[response]
            )
        try:
            # AsyncClient.send
            await response.aread()
            return response
        except BaseException:
            await response.aclose()
            raise

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(_send_request, attribute, getattr(original, attribute, None))
    _send_request.__wrapped__ = original  # type: ignore[attr-defined]
    return _send_request


def _parameters_problem(function: Any, expected: Tuple[Tuple[str, str], ...]) -> Optional[str]:
    """None when ``function``'s parameters are ``expected``, as (name, kind) pairs."""
    import inspect

    found = tuple((p.name, p.kind.name) for p in inspect.signature(function).parameters.values())
    if found != expected:
        return f"signature {found} differs from the one this patch is written for"
    return None


def _sdk_send_problem(raw: Any) -> Optional[str]:
    """None when the SDK's send and httpx's client are the ones the replacement is written for."""
    import inspect

    if not (isinstance(raw, FunctionType) and inspect.iscoroutinefunction(raw)):
        return "not a coroutine function in this openai"
    problem = _parameters_problem(raw, _SDK_SEND_PARAMETERS)
    if problem is not None:
        return problem
    try:
        import httpx
        from httpx import _client as httpx_client
        from httpx._exceptions import request_context  # noqa: F401
    except ImportError as exc:
        return f"httpx lacks what the direct send uses ({exc})"
    release = tuple(int(part) for part in httpx.__version__.split(".")[:2] if part.isdigit())
    if release not in _HTTPX_SEND_RELEASES:
        checked = ", ".join(f"{major}.{minor}" for major, minor in _HTTPX_SEND_RELEASES)
        return f"written for httpx {checked}, not {httpx.__version__}"
    missing = [name for name in _HTTPX_CLIENT_NAMES if not hasattr(httpx.AsyncClient, name)]
    missing += [
        name
        for name in ("ClientState", "BoundAsyncStream", "logger")
        if not hasattr(httpx_client, name)
    ]
    if missing:
        return f"httpx's client has no {', '.join(missing)} (another httpx release)"
    return None


# The SDK's URL of a request (``BaseClient._prepare_url(url)``: the client's base URL joined
# with the path, parsed and rebuilt, a twelfth of the SDK's request) depends on the base URL
# object and the path only, and URLs are immutable: the URL made for a (base, path) pair is
# kept and given again while the client's base URL is that very object. A base URL that is
# set anew is another object: its first request makes its URL again.
_SDK_URL_CLASS = "BaseClient"
_SDK_URL_ATTRIBUTE = "_prepare_url"
_SDK_URL_PLACE = f"{_SDK_SEND_MODULE}.{_SDK_URL_CLASS}.{_SDK_URL_ATTRIBUTE}"
_SDK_URL_PARAMETERS = (("self", "POSITIONAL_OR_KEYWORD"), ("url", "POSITIONAL_OR_KEYWORD"))
# Paths an SDK asks for are a handful of endpoints; the table is emptied if it ever gets long.
_SDK_URL_CACHE_SIZE = 1024


def _make_sdk_url(original: Callable[..., Any]) -> Callable[..., Any]:
    # (id of the base URL, path) -> (the base URL, the URL made from it); the entry holds the
    # base URL, so its id cannot be reused while the entry exists.
    made: Dict[Tuple[int, str], Tuple[Any, Any]] = {}

    def _prepare_url(self: Any, url: Any) -> Any:
        if type(url) is not str:
            return original(self, url)
        base = self.base_url
        key = (id(base), url)
        entry = made.get(key)
        if entry is not None and entry[0] is base:
            return entry[1]
        prepared = original(self, url)
        if len(made) >= _SDK_URL_CACHE_SIZE:
            made.clear()
        made[key] = (base, prepared)
        return prepared

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(_prepare_url, attribute, getattr(original, attribute, None))
    _prepare_url.__wrapped__ = original  # type: ignore[attr-defined]
    return _prepare_url


def _sdk_url_problem(raw: Any) -> Optional[str]:
    """None when the SDK's URL step is the one the replacement is written for."""
    import inspect

    if not isinstance(raw, FunctionType) or inspect.iscoroutinefunction(raw):
        return "not a plain function in this openai"
    return _parameters_problem(raw, _SDK_URL_PARAMETERS)


def _swap_attribute(
    module: Any,
    class_name: str,
    attribute: str,
    problem_of: Callable[[Any, Any, Any], Optional[str]],
    make: Callable[[Any], Any],
    books: Tuple[Dict[str, Tuple[Any, Any]], Dict[Any, Any], Dict[str, str]],
    missing: str,
) -> bool:
    """Puts ``make(original)`` in the place of ``module.class_name.attribute`` (the function in
    the class's own ``__dict__``) unless it is missing or ``problem_of(module, cls, original)``
    names a reason; whether it did. ``books``: where the original is kept for ``unpatch()`` (by
    place), the replacement made for each original (patching again installs the very same
    object), and why a place was skipped (``missing`` when the class or attribute is not
    there)."""
    originals, replacements, skipped = books
    place = f"{module.__name__}.{class_name}.{attribute}"
    cls = getattr(module, class_name, None)
    raw = cls.__dict__.get(attribute) if isinstance(cls, type) else None
    if raw is None:
        skipped[place] = missing
        return False
    problem = problem_of(module, cls, raw)
    if problem is not None:
        skipped[place] = problem
        return False
    replacement = replacements.get(raw)
    if replacement is None:
        replacement = replacements[raw] = make(raw)
    originals[place] = (cls, raw)
    setattr(cls, attribute, replacement)
    return True


def _restore_attributes(originals: Dict[str, Tuple[Any, Any]]) -> bool:
    """Puts back every original that ``_swap_attribute`` kept in ``originals``; whether any."""
    restored = bool(originals)
    for place, (cls, original) in list(originals.items()):
        setattr(cls, place.rsplit(".", 1)[1], original)
        del originals[place]
    return restored


# (class, attribute, place, the check, the factory) of each SDK step replaced.
_SDK_TARGETS: Tuple[Tuple[str, str, str, Any, Any], ...] = (
    (_SDK_SEND_CLASS, _SDK_SEND_ATTRIBUTE, _SDK_SEND_PLACE, _sdk_send_problem, _make_sdk_send),
    (_SDK_URL_CLASS, _SDK_URL_ATTRIBUTE, _SDK_URL_PLACE, _sdk_url_problem, _make_sdk_url),
)


def _patch_sdk() -> List[str]:
    try:
        import importlib

        module = importlib.import_module(_SDK_SEND_MODULE)
    except ImportError as exc:
        for _, _, place, _, _ in _SDK_TARGETS:
            _http_skipped[place] = f"the openai SDK is not installed ({exc})"
        return []

    def of_function(check: Callable[[Any], Optional[str]]) -> Callable[..., Optional[str]]:
        return lambda _module, _cls, raw: check(raw)  # the SDK's checks read the function only

    changed = []
    for class_name, attribute, place, problem_of, make in _SDK_TARGETS:
        if place not in _sdk_originals and _swap_attribute(
            module,
            class_name,
            attribute,
            of_function(problem_of),
            make,
            (_sdk_originals, _sdk_replacements, _http_skipped),
            "not in this openai",
        ):
            changed.append(place)
    return changed


def _unpatch_sdk() -> bool:
    return _restore_attributes(_sdk_originals)


def _http_status() -> Dict[str, Any]:
    entry_points: Dict[str, Dict[str, str]] = {}
    for attribute in _HTTP_ATTRIBUTES:
        place = f"{_HTTP_MODULE}.{_HTTP_CLASS}.{attribute}"
        if attribute in _http_originals:
            entry_points[place] = {"status": "patched"}
        elif place in _http_skipped:
            entry_points[place] = {"status": "skipped", "reason": _http_skipped[place]}
        else:
            entry_points[place] = {"status": "not patched"}
    for _, _, place, _, _ in _SDK_TARGETS:
        if place in _sdk_originals:
            entry_points[place] = {"status": "patched"}
        elif place not in _http_skipped:
            entry_points[place] = {"status": "not patched"}
    for place, reason in _http_skipped.items():
        entry_points.setdefault(place, {"status": "skipped", "reason": reason})
    status: Dict[str, Any] = {
        "patched": bool(_http_originals),
        "entry_points": entry_points,
        "transports": dict(_http_calls),
        "sdk_sends": dict(_sdk_sends),
    }
    if _http_transport is not None:
        status["pool"] = _http_transport.client.pool_stats()
    return status


# ---- FAST_LITELLM_AUTO_PATCH ------------------------------------------------------------------


class _LiteLLMImportHook:
    """A ``sys.meta_path`` finder that only answers for ``litellm``: it lets the other finders
    find it and wraps the loader so the package is patched right after it has executed.

    It costs one string comparison per import until litellm is loaded, then removes itself.
    """

    waiting = True

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "litellm" or not self.waiting:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find_spec = getattr(finder, "find_spec", None)
            spec = find_spec(name, path, target) if find_spec is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _PatchingLoader(spec.loader, self)
        return spec

    def litellm_loaded(self) -> None:
        self.waiting = False
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        try:
            _patch(list(default_features()), sys.modules["litellm"])
        except Exception as exc:  # litellm's own import must never fail because of us
            _logger().warning(
                "%s=1 could not patch litellm: %s: %s",
                AUTO_PATCH_VARIABLE,
                type(exc).__name__,
                exc,
            )


class _PatchingLoader:
    """litellm's own loader, which patches once the package has executed, then steps aside
    (the module's ``__loader__`` and ``__spec__.loader`` are litellm's loader again)."""

    def __init__(self, loader: Any, hook: _LiteLLMImportHook) -> None:
        self._loader = loader
        self._hook = hook

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        try:
            self._loader.exec_module(module)
        finally:
            if getattr(module, "__loader__", None) is self:
                module.__loader__ = self._loader
            spec = getattr(module, "__spec__", None)
            if spec is not None and spec.loader is self:
                spec.loader = self._loader
        self._hook.litellm_loaded()


def install_import_hook() -> None:
    """Patches litellm as soon as it is imported (at once if it already is)."""
    global _hook
    with _lock:
        if _hook is None:
            _hook = _LiteLLMImportHook()
            if "litellm" not in sys.modules:
                sys.meta_path.insert(0, _hook)
                return
            _hook.waiting = False
        elif _hook.waiting:
            return  # already waiting for litellm
    patch()


def install_from_environment(environ: Any) -> None:
    """``FAST_LITELLM_AUTO_PATCH`` (read when ``fast_litellm`` is imported): true installs
    the import hook."""
    raw = environ.get(AUTO_PATCH_VARIABLE)
    if raw is not None and _flags._parse_bool(AUTO_PATCH_VARIABLE, raw):
        install_import_hook()


# ---- Router strategies (the ``routing`` feature) ----------------------------------------------
#
# litellm 1.110.2's Router runs its selection in a native core, which hands every stateful
# strategy back to the Python handler classes in ``litellm.router_strategy`` (through
# ``litellm.router_rust.steps.selection.pick_async`` / ``pick_sync``). The handlers keep their
# state in the router's cache (``DualCache``, shared through Redis when the router has one):
# other code reads it, the handlers' success/failure callbacks write it, so that state and its
# keeping stay LiteLLM's. What is replaced is a selection step that reads it.
#
# latency-based-routing: ``LowestLatencyLoggingHandler._get_available_deployments`` (the step the
# sync and the async pick share) finds each cached deployment in the healthy list with a scan of
# the whole list: n^2 dict reads per pick (10,000 at 100 deployments, a million at 1,000). The
# replacement indexes the list once and otherwise does what the original does, in its order:
# the same cache entries added for deployments not seen yet, the same calls to ``random``
# (``sample`` over every cached entry, then ``choice``), so that a seeded ``random`` picks the
# same deployment, the same token count, the same latency helpers of LiteLLM's module (Python's
# own float ``sum``, which changed its rounding in 3.12), the same ``_latency_per_deployment``
# written into the request's metadata, and the same exceptions on a malformed deployment or
# cache entry. It reads LiteLLM's module globals (``datetime``, ``random``, the helpers) at call
# time, as the original does, so a test that replaces one sees both behave alike.
#
# Why not native: each pick reads Python dicts of the router's cache and the model list; the
# numbers it compares are averages of Python ints and floats whose rounding depends on the
# interpreter's ``sum``, and a junk value there must raise the original's exception. Converting
# that state for a Rust call costs more than the comparisons it would do; the saving is the
# quadratic scan, which an index removes.
#
# cost-based-routing: ``LowestCostLoggingHandler.async_get_available_deployments`` has the same
# scan; it is one method (cache read and selection), replaced whole by one that reads the same
# cache key, prices each deployment with LiteLLM's own helper and logs the same debug line.
# It draws nothing from ``random``: the cheapest deployment with room, the first of equals in
# the cache's order.
#
# The other stateful strategies are left as they are (``patch_status()`` says why per entry
# point): their selections are already one linear pass over state that other code also reads
# and writes (counters, reservations), so there is no step to replace without moving that state.

_LATENCY_MODULE = "litellm.router_strategy.lowest_latency"
_LATENCY_CLASS = "LowestLatencyLoggingHandler"
_LATENCY_ATTRIBUTE = "_get_available_deployments"
_LATENCY_PARAMETERS = (
    "self",
    "model_group",
    "healthy_deployments",
    "messages",
    "input",
    "request_kwargs",
    "request_count_dict",
)
_LATENCY_PLACE = f"{_LATENCY_MODULE}.{_LATENCY_CLASS}.{_LATENCY_ATTRIBUTE}"
# The globals of LiteLLM's module the replacement reads, as the original does.
_LATENCY_GLOBALS = (
    "datetime",
    "random",
    "partial",
    "embedding_aware_token_count",
    "deployment_backend_models",
    "_usable_latency_samples",
    "_average_latency",
    "_percentile_latency",
)
_ROUTING_LEFT_ALONE = {
    "litellm.router_strategy.least_busy.LeastBusyLoggingHandler": (
        "least-busy: its pick is one pass over the in-flight counters in the router cache and "
        "the pick reservations, state that its callbacks and the router release; nothing "
        "quadratic to remove"
    ),
    "litellm.router_strategy.lowest_tpm_rpm.LowestTPMLoggingHandler": (
        "usage-based-routing: its pick is already one pass (a dict lookup per deployment); its "
        "cost is the cache read and the token count, which the token_counting feature speeds up"
    ),
    "litellm.router_strategy.lowest_tpm_rpm_v2.LowestTPMLoggingHandler_v2": (
        "usage-based-routing-v2: its pick is already one pass over the per-minute counters it "
        "reads through the router's DualCache (batched, shared through Redis); its cost is that "
        "read and the token count, which the token_counting feature speeds up"
    ),
}
# place -> (class, the original object in the class __dict__), while patched
_routing_originals: Dict[str, Tuple[Any, Any]] = {}
_routing_replacements: Dict[Any, Any] = {}
_routing_skipped: Dict[str, str] = {}


def _deployment_limit(deployment: Dict[str, Any], name: str) -> Any:
    """A deployment's ``tpm`` or ``rpm`` where LiteLLM's strategies read it (the entry, its
    ``litellm_params``, its ``model_info``), else infinity; the same lookups in the same order,
    so a malformed entry raises what LiteLLM's own code raises."""
    return (
        deployment.get(name, None)
        or deployment.get("litellm_params", {}).get(name, None)
        or deployment.get("model_info", {}).get(name, None)
        or float("inf")
    )


def _make_latency_selection(original: Any) -> Callable[..., Any]:
    module_globals = original.__globals__

    def _get_available_deployments(
        self: Any,
        model_group: str,
        healthy_deployments: Any,
        messages: Any = None,
        input: Any = None,
        request_kwargs: Any = None,
        request_count_dict: Any = None,
    ) -> Any:
        g = module_globals
        now = g["datetime"].now
        # Three clock reads, as the original makes them.
        current_date = now().strftime("%Y-%m-%d")
        current_hour = now().strftime("%H")
        current_minute = now().strftime("%M")
        precise_minute = f"{current_date}-{current_hour}-{current_minute}"
        if request_count_dict is None:
            return None
        all_deployments = request_count_dict
        # The last deployment of an id wins, as the original's scan (which does not stop) finds.
        by_id: Dict[Any, Any] = {}
        for d in healthy_deployments:
            deployment_id = d["model_info"]["id"]
            if deployment_id not in all_deployments:
                all_deployments[deployment_id] = {
                    "latency_normalized": [0],
                    precise_minute: {"tpm": 0, "rpm": 0},
                }
            by_id[deployment_id] = d
        try:
            input_tokens = g["embedding_aware_token_count"](
                messages, input, g["partial"](g["deployment_backend_models"], healthy_deployments)
            )
        except Exception:
            input_tokens = 0
        items = all_deployments.items()
        # The original makes a dict of these pairs (unique keys) and walks it: the same order.
        shuffled = g["random"].sample(list(items), len(items))
        usable = g["_usable_latency_samples"]
        average = g["_average_latency"]
        percentile_of = g["_percentile_latency"]
        streaming = (
            request_kwargs is not None
            and request_kwargs.get("stream", None) is not None
            and request_kwargs["stream"] is True
        )
        percentile = self.routing_args.ttft_percentile
        latency_per_deployment: Dict[Any, Any] = {}
        potential_deployments = []
        for item, item_map in shuffled:
            deployment = by_id.get(item)
            if deployment is None:
                continue
            deployment_tpm = _deployment_limit(deployment, "tpm")
            deployment_rpm = _deployment_limit(deployment, "rpm")
            item_latency = item_map.get("latency_normalized", [])
            item_ttft_latency = item_map.get("time_to_first_token_seconds", [])
            item_rpm = item_map.get(precise_minute, {}).get("rpm", 0)
            item_tpm = item_map.get(precise_minute, {}).get("tpm", 0)
            ttft_samples = usable(item_ttft_latency)
            use_ttft = streaming and len(ttft_samples) > 0
            selected_latency = (
                percentile_of(ttft_samples, percentile)
                if use_ttft and percentile is not None
                else average(ttft_samples if use_ttft else usable(item_latency))
            )
            api_base = deployment.get("litellm_params", {}).get("api_base", "")
            if api_base is not None:
                latency_per_deployment[api_base] = selected_latency
            if item_tpm + input_tokens > deployment_tpm or item_rpm + 1 > deployment_rpm:
                continue
            potential_deployments.append((deployment, selected_latency))
        if len(potential_deployments) == 0:
            return None
        sorted_deployments = sorted(potential_deployments, key=_second)
        lowest_latency = sorted_deployments[0][1]
        buffer = self.routing_args.lowest_latency_buffer * lowest_latency
        valid_deployments = tuple(x for x in sorted_deployments if x[1] <= lowest_latency + buffer)
        picked = g["random"].choice(valid_deployments or sorted_deployments)[0]
        metadata_field = self._select_metadata_field(request_kwargs)
        if request_kwargs is not None and metadata_field in request_kwargs:
            request_kwargs[metadata_field]["_latency_per_deployment"] = latency_per_deployment
        return picked

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(_get_available_deployments, attribute, getattr(original, attribute, None))
    _get_available_deployments.__wrapped__ = original  # type: ignore[attr-defined]
    return _get_available_deployments


_COST_MODULE = "litellm.router_strategy.lowest_cost"
_COST_CLASS = "LowestCostLoggingHandler"
_COST_ATTRIBUTE = "async_get_available_deployments"
_COST_PARAMETERS = (
    "self",
    "model_group",
    "healthy_deployments",
    "messages",
    "input",
    "request_kwargs",
)
_COST_GLOBALS = (
    "datetime",
    "partial",
    "embedding_aware_token_count",
    "deployment_backend_models",
    "_deployment_cost_map_rates",
    "verbose_router_logger",
    "with_service_target",
    "ROUTER_USAGE_TARGET",
)


def _make_cost_selection(raw: Any) -> Callable[..., Any]:
    """cost-based-routing's pick (``LowestCostLoggingHandler.async_get_available_deployments``,
    one method: cache read and selection), with the same index instead of the scan. The
    original builds a per-api_base cost dict it never reads; that is left out, but for its one
    effect, the ``TypeError`` of an ``api_base`` that cannot be a dict key (a list). Wrapped in
    LiteLLM's own ``with_service_target``, as the original is."""
    original = raw.__wrapped__
    module_globals = original.__globals__

    async def async_get_available_deployments(
        self: Any,
        model_group: str,
        healthy_deployments: Any,
        messages: Any = None,
        input: Any = None,
        request_kwargs: Any = None,
    ) -> Any:
        g = module_globals
        cost_key = f"cost_map:{model_group}"
        request_count_dict = await self.router_cache.async_get_cache(key=cost_key) or {}
        now = g["datetime"].now
        current_date = now().strftime("%Y-%m-%d")
        current_hour = now().strftime("%H")
        current_minute = now().strftime("%M")
        precise_minute = f"{current_date}-{current_hour}-{current_minute}"
        all_deployments = request_count_dict
        by_id: Dict[Any, Any] = {}
        for d in healthy_deployments:
            deployment_id = d["model_info"]["id"]
            if deployment_id not in all_deployments:
                all_deployments[deployment_id] = {precise_minute: {"tpm": 0, "rpm": 0}}
            by_id[deployment_id] = d
        try:
            input_tokens = g["embedding_aware_token_count"](
                messages, input, g["partial"](g["deployment_backend_models"], healthy_deployments)
            )
        except Exception:
            input_tokens = 0
        cost_map_rates = g["_deployment_cost_map_rates"]
        logger = g["verbose_router_logger"]
        potential_deployments = []
        for item, item_map in all_deployments.items():
            deployment = by_id.get(item)
            if deployment is None:
                continue
            deployment_tpm = _deployment_limit(deployment, "tpm")
            deployment_rpm = _deployment_limit(deployment, "rpm")
            map_input_cost, map_output_cost = cost_map_rates(deployment)
            item_input_cost = None
            item_output_cost = None
            if deployment.get("litellm_params", {}).get("input_cost_per_token", None):
                item_input_cost = deployment.get("litellm_params", {}).get("input_cost_per_token")
            if deployment.get("litellm_params", {}).get("output_cost_per_token", None):
                item_output_cost = deployment.get("litellm_params", {}).get("output_cost_per_token")
            if item_input_cost is None:
                item_input_cost = map_input_cost if map_input_cost is not None else 5.0
            if item_output_cost is None:
                item_output_cost = map_output_cost if map_output_cost is not None else 5.0
            item_cost = item_input_cost + item_output_cost
            item_rpm = item_map.get(precise_minute, {}).get("rpm", 0)
            item_tpm = item_map.get(precise_minute, {}).get("tpm", 0)
            logger.debug(
                "item_cost: %s, item_tpm: %s, item_rpm: %s, model_id: %s",
                item_cost,
                item_tpm,
                item_rpm,
                deployment.get("model_info", {}).get("id"),
            )
            api_base = deployment.get("litellm_params", {}).get("api_base", "")
            if api_base is not None:
                hash(api_base)  # the original's debug dict takes it as a key
            if item_tpm + input_tokens > deployment_tpm or item_rpm + 1 > deployment_rpm:
                continue
            potential_deployments.append((deployment, item_cost))
        if len(potential_deployments) == 0:
            return None
        return sorted(potential_deployments, key=_second)[0][0]

    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        setattr(async_get_available_deployments, attribute, getattr(original, attribute, None))
    in_service_target = module_globals["with_service_target"](module_globals["ROUTER_USAGE_TARGET"])
    replacement: Callable[..., Any] = in_service_target(async_get_available_deployments)
    return replacement


def _second(pair: Tuple[Any, Any]) -> Any:
    return pair[1]


def _shape_problem(function: Any, parameters: Tuple[str, ...], names: Any) -> Optional[str]:
    """None when ``function`` has exactly ``parameters`` and its module defines every global in
    ``names`` (what a replacement written for it reads from there)."""
    import inspect

    found = tuple(inspect.signature(function).parameters)
    if found != parameters:
        return f"signature {found} differs from the one this patch is written for {parameters}"
    missing = [name for name in names if name not in function.__globals__]
    if missing:
        return f"its module has no {', '.join(missing)} (another litellm release)"
    return None


def _latency_problem(module: Any, cls: Any, raw: Any) -> Optional[str]:
    """None when the original is the function the replacement is written for."""

    if not isinstance(raw, FunctionType):
        return "not a plain function in this litellm"
    problem = _shape_problem(raw, _LATENCY_PARAMETERS, _LATENCY_GLOBALS)
    if problem is not None:
        return problem
    if not hasattr(getattr(module, "RoutingArgs", None), "model_fields") or not {
        "lowest_latency_buffer",
        "ttft_percentile",
    } <= set(module.RoutingArgs.model_fields):
        return "its RoutingArgs lack lowest_latency_buffer or ttft_percentile"
    return None


def _cost_problem(module: Any, cls: Any, raw: Any) -> Optional[str]:
    """None when the original is the (service-target wrapped) coroutine function the
    replacement is written for."""
    import inspect

    inner = getattr(raw, "__wrapped__", None)
    if not (isinstance(inner, FunctionType) and inspect.iscoroutinefunction(raw)):
        return "not a wrapped coroutine function in this litellm"
    return _shape_problem(inner, _COST_PARAMETERS, _COST_GLOBALS)


# (module, class, attribute, the check, the factory) of each selection step replaced.
_ROUTING_TARGETS: Tuple[Tuple[str, str, str, Any, Any], ...] = (
    (
        _LATENCY_MODULE,
        _LATENCY_CLASS,
        _LATENCY_ATTRIBUTE,
        _latency_problem,
        _make_latency_selection,
    ),
    (_COST_MODULE, _COST_CLASS, _COST_ATTRIBUTE, _cost_problem, _make_cost_selection),
)


def _routing_places() -> List[str]:
    return [f"{module}.{cls}.{attribute}" for module, cls, attribute, _, _ in _ROUTING_TARGETS]


def _patch_routing() -> List[str]:
    import importlib

    _routing_skipped.clear()
    for place, reason in _ROUTING_LEFT_ALONE.items():
        _routing_skipped[place] = reason
    changed = []
    for module_name, class_name, attribute, problem_of, make in _ROUTING_TARGETS:
        place = f"{module_name}.{class_name}.{attribute}"
        if place in _routing_originals:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            _routing_skipped[place] = f"not in this litellm ({exc})"
            continue
        if _swap_attribute(
            module,
            class_name,
            attribute,
            problem_of,
            make,
            (_routing_originals, _routing_replacements, _routing_skipped),
            "not in this litellm",
        ):
            changed.append(place)
    return changed


def _unpatch_routing() -> bool:
    restored = _restore_attributes(_routing_originals)
    _routing_skipped.clear()
    return restored


def _routing_status() -> Dict[str, Any]:
    entry_points: Dict[str, Dict[str, str]] = {}
    for place in _routing_places():
        status = "patched" if place in _routing_originals else "not patched"
        entry_points[place] = {"status": status}
    for place, reason in _routing_skipped.items():
        entry_points[place] = {"status": "skipped", "reason": reason}
    return {"patched": bool(_routing_originals), "entry_points": dict(sorted(entry_points.items()))}
