"""Which tokenizer LiteLLM's ``token_counter`` uses for a model name.

Pure Python, no ``litellm`` import: the model tables LiteLLM consults are snapshotted below from
litellm 1.110.2 (bundled model cost map, ``LITELLM_LOCAL_MODEL_COST_MAP=True``) and tiktoken 0.14.
The rules applied to them when litellm is not loaded are those below (litellm up to 1.106).
``tables_from_litellm`` recomputes the tables from an installed litellm; the reference tests compare
the two so a litellm upgrade that changes the tables is noticed.

LiteLLM's rules (``litellm.utils._select_tokenizer_helper`` and
``litellm.litellm_core_utils.token_counter.openai_tokenizer_encoding_name``):

1. HuggingFace tokenizers come first (unless ``litellm.disable_hf_tokenizer_download`` is set):
   - ``model in litellm.cohere_models and "command-r" in model``  -> Cohere command-r tokenizer
   - ``model in litellm.anthropic_models and "claude-3" not in model`` -> LiteLLM's packaged
     Anthropic tokenizer (exact name match, so ``anthropic/claude-opus-4-5`` is *not* matched)
   - ``"llama-2" in model.lower() or "replicate" in model.lower()`` -> Llama 2 tokenizer
   - ``"llama-3" in model.lower()`` -> Llama 3 tokenizer
   If the HuggingFace tokenizer cannot be loaded (no network, no ``tokenizers``), LiteLLM logs a
   warning and falls back to tiktoken as below, so its answer for these models depends on the
   environment. We report them as ``("other", reason)``.
2. Otherwise tiktoken. The model name is first normalised (``_fix_model_name``):
   - a key of ``litellm.azure_llms`` -> ``model.replace("-35", "-3.5")``
   - a member of ``litellm.open_ai_chat_completion_models`` -> unchanged
   - anything else -> ``"gpt-3.5-turbo"``  (so every unknown name, and every provider-prefixed
     name such as ``openai/gpt-4o`` or ``azure/gpt-4o``, and even ``chatgpt-4o-latest``, which is not
     in the table, is counted with cl100k_base)
   then ``"gpt-4o" in name`` -> o200k_base, else ``tiktoken.encoding_name_for_model(name)``, and
   cl100k_base when tiktoken does not know the name.
3. Message accounting: ``tokens_per_message=4, tokens_per_name=-1`` when the normalised name is
   ``gpt-3.5-turbo-0301`` (not in the current table, so never), otherwise ``3`` and ``1``.

LiteLLM keeps refining these rules (1.110 strips provider prefixes, gives unlisted gpt-5/o-series
names o200k_base and adds a DeepSeek tokenizer), so the snapshot is only the answer when litellm is
not loaded. Once ``litellm`` has been imported in the process, every name is resolved by litellm's
own functions (``openai_tokenizer_encoding_name``, ``huggingface_tokenizer_kind``,
``uses_legacy_message_accounting`` where that version has them, else the rules above over its live
tables), once per name: whichever litellm version is installed, we count with the tokenizer it
would use. ``refresh()`` forgets the cached answers (after ``litellm.register_model``, say).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any, Callable, Final, Optional

__all__ = [
    "SUPPORTED_ENCODINGS",
    "encoding_for_model",
    "message_token_params",
    "refresh",
    "settled",
    "snapshot_tables",
    "tables_from_litellm",
    "tokenizer_for_model",
    "uses_legacy_message_accounting",
]

#: Encodings whose vocabularies ship in ``fast_litellm/_vocab``.
SUPPORTED_ENCODINGS: Final = frozenset({"r50k_base", "p50k_base", "cl100k_base", "o200k_base"})

#: Encodings that count exactly like one we ship when special tokens are encoded as plain text
#: (``disallowed_special=()``, which is what LiteLLM does): same ranks and split pattern, extra
#: special tokens only.
_SAME_COUNTS_AS: Final = {"o200k_harmony": "o200k_base", "p50k_edit": "p50k_base"}

_DEFAULT_ENCODING: Final = "cl100k_base"
_LEGACY_MODEL: Final = "gpt-3.5-turbo-0301"

# ---- snapshot: litellm 1.110.2 / tiktoken 0.14 ------------------------------------------------

#: Members of ``open_ai_chat_completion_models`` / keys of ``azure_llms`` whose encoding is not
#: cl100k_base (every other member, and every name outside the tables, gets cl100k_base).
_LISTED_MODEL_ENCODINGS: Final[dict[str, str]] = dict.fromkeys(
    (
        "gpt-4.1",
        "gpt-4.1-2025-04-14",
        "gpt-4.1-mini",
        "gpt-4.1-mini-2025-04-14",
        "gpt-4.1-nano",
        "gpt-4.1-nano-2025-04-14",
        "gpt-4o",
        "gpt-4o-2024-05-13",
        "gpt-4o-2024-08-06",
        "gpt-4o-2024-11-20",
        "gpt-4o-audio-preview-2024-12-17",
        "gpt-4o-audio-preview-2025-06-03",
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
        "gpt-4o-mini-audio-preview-2024-12-17",
        "gpt-4o-mini-realtime-preview-2024-12-17",
        "gpt-4o-mini-search-preview",
        "gpt-4o-mini-search-preview-2025-03-11",
        "gpt-4o-mini-transcribe",
        "gpt-4o-mini-transcribe-2025-03-20",
        "gpt-4o-mini-transcribe-2025-12-15",
        "gpt-4o-mini-tts",
        "gpt-4o-mini-tts-2025-03-20",
        "gpt-4o-mini-tts-2025-12-15",
        "gpt-4o-search-preview",
        "gpt-4o-search-preview-2025-03-11",
        "gpt-4o-transcribe",
        "gpt-4o-transcribe-diarize",
        "gpt-5",
        "gpt-5-2025-08-07",
        "gpt-5-chat",
        "gpt-5-chat-latest",
        "gpt-5-codex",
        "gpt-5-mini",
        "gpt-5-mini-2025-08-07",
        "gpt-5-nano",
        "gpt-5-nano-2025-08-07",
        "gpt-5-pro",
        "gpt-5-pro-2025-10-06",
        "gpt-5-search-api",
        "gpt-5-search-api-2025-10-14",
        "gpt-5.1",
        "gpt-5.1-2025-11-13",
        "gpt-5.1-chat-latest",
        "gpt-5.1-codex",
        "gpt-5.1-codex-max",
        "gpt-5.1-codex-mini",
        "gpt-5.2",
        "gpt-5.2-2025-12-11",
        "gpt-5.2-chat-latest",
        "gpt-5.2-codex",
        "gpt-5.2-pro",
        "gpt-5.2-pro-2025-12-11",
        "gpt-5.3-chat-latest",
        "gpt-5.3-codex",
        "gpt-5.4",
        "gpt-5.4-2026-03-05",
        "gpt-5.4-mini",
        "gpt-5.4-mini-2026-03-17",
        "gpt-5.4-nano",
        "gpt-5.4-nano-2026-03-17",
        "gpt-5.4-pro",
        "gpt-5.4-pro-2026-03-05",
        "gpt-5.5",
        "gpt-5.5-2026-04-23",
        "gpt-5.5-cyber",
        "gpt-5.5-cyber-preview",
        "gpt-5.5-pro",
        "gpt-5.5-pro-2026-04-23",
        "gpt-5.6",
        "gpt-5.6-cyber",
        "gpt-5.6-luna",
        "gpt-5.6-sol",
        "gpt-5.6-terra",
        "o1",
        "o1-2024-12-17",
        "o1-pro",
        "o1-pro-2025-03-19",
        "o3",
        "o3-2025-04-16",
        "o3-deep-research",
        "o3-deep-research-2025-06-26",
        "o3-mini",
        "o3-mini-2025-01-31",
        "o3-pro",
        "o3-pro-2025-06-10",
        "o4-mini",
        "o4-mini-2025-04-16",
        "o4-mini-deep-research",
        "o4-mini-deep-research-2025-06-26",
    ),
    "o200k_base",
)

#: Names ``_fix_model_name`` turns into ``gpt-3.5-turbo-0301`` (none in this snapshot).
_LEGACY_ACCOUNTING_MODELS: Final[frozenset[str]] = frozenset()

#: ``anthropic_models`` members without "claude-3": LiteLLM counts them with its Anthropic tokenizer.
_ANTHROPIC_TOKENIZER_MODELS: Final[frozenset[str]] = frozenset(
    {
        "claude-fable-5",
        "claude-fable-5-1",
        "claude-haiku-4-5",
        "claude-haiku-4-5-20251001",
        "claude-haiku-5-5",
        "claude-mythos-5",
        "claude-mythos-5-1",
        "claude-mythos-preview",
        "claude-opus-4-5",
        "claude-opus-4-5-20251101",
        "claude-opus-4-6",
        "claude-opus-4-6-20260205",
        "claude-opus-4-7",
        "claude-opus-4-7-20260416",
        "claude-opus-4-8",
        "claude-opus-5",
        "claude-opus-5-5",
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-6",
        "claude-sonnet-5",
        "claude-sonnet-5-5",
        "claude-fable-latest",
        "claude-haiku-latest",
        "claude-opus-latest",
        "claude-sonnet-latest",
    }
)

#: ``cohere_models`` members containing "command-r" (none in this snapshot).
_COHERE_TOKENIZER_MODELS: Final[frozenset[str]] = frozenset()

_CACHE_SIZE: Final = 4096


def _check_model(model: object) -> str:
    if not isinstance(model, str):
        raise TypeError(f"model must be a str, not {type(model).__name__}")
    return model


def _huggingface_kind(
    model: str,
    cohere: frozenset[str] = _COHERE_TOKENIZER_MODELS,
    anthropic: frozenset[str] = _ANTHROPIC_TOKENIZER_MODELS,
) -> str | None:
    """The HuggingFace tokenizer LiteLLM picks for ``model`` (rule 1 above), given its tables."""
    if model in cohere:
        return "cohere"
    if model in anthropic:
        return "anthropic"
    lowered = model.lower()
    if "llama-2" in lowered or "replicate" in lowered:
        return "llama2"
    if "llama-3" in lowered:
        return "llama3"
    return None


class _Rules:
    """How one source (the snapshot, or an imported litellm) maps a model name to its tokenizer."""

    def __init__(
        self,
        hf_kind: Callable[[str], Optional[str]],
        encoding: Callable[[str], str],
        legacy: Callable[[str], bool],
        hf_disabled: Callable[[], bool],
    ) -> None:
        self.hf_kind = hf_kind
        self.encoding = encoding
        self.legacy = legacy
        self.hf_disabled = hf_disabled


_SNAPSHOT_RULES: Final = _Rules(
    _huggingface_kind,
    lambda model: _LISTED_MODEL_ENCODINGS.get(model, _DEFAULT_ENCODING),
    lambda model: model in _LEGACY_ACCOUNTING_MODELS,
    lambda: False,
)

_rules: _Rules = _SNAPSHOT_RULES
_live = False
#: Called when cached answers become stale (``tokens`` registers its per-model cache here).
_on_refresh: list[Callable[[], None]] = []


def _litellm_rules(litellm: Any) -> _Rules:
    """litellm's own resolvers where this version has them, else the documented rules over its
    live tables."""
    counter_mod = sys.modules.get("litellm.litellm_core_utils.token_counter")
    utils_mod = sys.modules.get("litellm.utils")
    tables: dict[str, Any] = {}

    def table(name: str) -> Any:
        if not tables:
            import tiktoken

            tables.update(tables_from_litellm(litellm, tiktoken))
        return tables[name]

    encoding = getattr(counter_mod, "openai_tokenizer_encoding_name", None)
    if encoding is None:

        def encoding(model: str) -> str:
            return table("listed_model_encodings").get(model, _DEFAULT_ENCODING)

    hf_kind = getattr(utils_mod, "huggingface_tokenizer_kind", None)
    if hf_kind is None:

        def hf_kind(model: str) -> Optional[str]:
            return _huggingface_kind(
                model, table("cohere_tokenizer_models"), table("anthropic_tokenizer_models")
            )

    legacy = getattr(counter_mod, "uses_legacy_message_accounting", None)
    if legacy is None:

        def legacy(model: str) -> bool:
            return model in table("legacy_accounting_models")

    return _Rules(
        hf_kind,
        encoding,
        legacy,
        lambda: getattr(litellm, "disable_hf_tokenizer_download", False) is True,
    )


def _current_rules() -> _Rules:
    """The snapshot until litellm is (fully) imported, then litellm's rules for good."""
    global _rules, _live
    if not _live:
        litellm = sys.modules.get("litellm")
        if (
            litellm is not None
            and getattr(litellm, "token_counter", None) is not None
            and "litellm.litellm_core_utils.token_counter" in sys.modules
        ):
            _rules = _litellm_rules(litellm)
            _live = True
            refresh()
    return _rules


_installed: Optional[bool] = None


def settled() -> bool:
    """Whether answers given now stay right: litellm is loaded, or not installed at all. Until
    then a caller may not keep answers beyond these functions' own caches (which ``refresh``
    clears when litellm shows up)."""
    global _installed
    _current_rules()
    if _live:
        return True
    if _installed is None:
        import importlib.util

        _installed = importlib.util.find_spec("litellm") is not None
    return not _installed


def refresh() -> None:
    """Forget every cached model answer; the next call resolves names again."""
    _encoding_for_model.cache_clear()
    _tokenizer_for_model.cache_clear()
    _legacy.cache_clear()
    for callback in _on_refresh:
        callback()


@lru_cache(maxsize=_CACHE_SIZE)
def _encoding_for_model(model: str) -> str:
    return _rules.encoding(model)


def encoding_for_model(model: str) -> str:
    """The tiktoken encoding LiteLLM's ``token_counter`` uses for ``model`` on its tiktoken path.

    Without litellm, unknown names give ``"cl100k_base"`` (litellm 1.106 counts them as
    ``gpt-3.5-turbo``); with litellm imported, whatever that version answers. For models LiteLLM
    counts with a HuggingFace tokenizer (see ``tokenizer_for_model``) this is the encoding LiteLLM
    falls back to when that tokenizer cannot be loaded.
    """
    _check_model(model)
    _current_rules()
    return _encoding_for_model(model)


@lru_cache(maxsize=_CACHE_SIZE)
def _tokenizer_for_model(model: str, hf_disabled: bool) -> tuple[str, str]:
    kind = None if hf_disabled else _rules.hf_kind(model)
    if kind is not None:
        return ("other", f"litellm counts {model!r} with its {kind} HuggingFace tokenizer")
    encoding = _encoding_for_model(model)
    encoding = _SAME_COUNTS_AS.get(encoding, encoding)
    if encoding not in SUPPORTED_ENCODINGS:
        return (
            "other",
            f"litellm counts {model!r} with the {encoding} encoding, which is not bundled",
        )
    return ("tiktoken", encoding)


def tokenizer_for_model(model: str) -> tuple[str, str]:
    """``("tiktoken", encoding_name)`` when ``token_counter`` counts ``model`` with one of the bundled
    encodings, else ``("other", reason)`` (a HuggingFace tokenizer or an encoding we do not ship)."""
    _check_model(model)
    rules = _current_rules()
    return _tokenizer_for_model(model, rules.hf_disabled())


@lru_cache(maxsize=_CACHE_SIZE)
def _legacy(model: str) -> bool:
    return bool(_rules.legacy(model))


def uses_legacy_message_accounting(model: str) -> bool:
    """Whether LiteLLM prices ``model``'s messages with the ``gpt-3.5-turbo-0301`` constants."""
    _check_model(model)
    _current_rules()
    return _legacy(model)


def message_token_params(model: str) -> tuple[int, int]:
    """``(tokens_per_message, tokens_per_name)`` LiteLLM uses for ``model``."""
    return (4, -1) if uses_legacy_message_accounting(model) else (3, 1)


def tables_from_litellm(litellm: Any, tiktoken: Any) -> dict[str, Any]:
    """Recompute the snapshot tables above from imported ``litellm`` and ``tiktoken`` modules.

    Used by the reference tests and to refresh the snapshot after a litellm upgrade.
    """

    def fix(name: str) -> str:
        if name in litellm.azure_llms:
            return name.replace("-35", "-3.5")
        if name in litellm.open_ai_chat_completion_models:
            return name
        return "gpt-3.5-turbo"

    def encoding_name(name: str) -> str:
        fixed = fix(name)
        if "gpt-4o" in fixed:
            return "o200k_base"
        try:
            return tiktoken.encoding_name_for_model(fixed)
        except KeyError:
            return _DEFAULT_ENCODING

    listed = set(litellm.open_ai_chat_completion_models) | set(litellm.azure_llms)
    return {
        "listed_model_encodings": {
            name: encoding_name(name) for name in listed if encoding_name(name) != _DEFAULT_ENCODING
        },
        "legacy_accounting_models": frozenset(
            name for name in listed if fix(name) == _LEGACY_MODEL
        ),
        "anthropic_tokenizer_models": frozenset(
            name for name in litellm.anthropic_models if "claude-3" not in name
        ),
        "cohere_tokenizer_models": frozenset(
            name for name in litellm.cohere_models if "command-r" in name
        ),
    }


def snapshot_tables() -> dict[str, Any]:
    """The snapshot tables, in the shape ``tables_from_litellm`` returns."""
    return {
        "listed_model_encodings": dict(_LISTED_MODEL_ENCODINGS),
        "legacy_accounting_models": _LEGACY_ACCOUNTING_MODELS,
        "anthropic_tokenizer_models": _ANTHROPIC_TOKENIZER_MODELS,
        "cohere_tokenizer_models": _COHERE_TOKENIZER_MODELS,
    }
