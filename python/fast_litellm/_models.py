"""Which tokenizer LiteLLM's ``token_counter`` uses for a model name.

Pure Python, no ``litellm`` import: the tables LiteLLM's rules consult are snapshotted below from
litellm 1.110.2 (bundled model cost map, ``LITELLM_LOCAL_MODEL_COST_MAP=True``) and tiktoken 0.14,
and the rules below are litellm 1.110.2's, so a name resolves the same before and after litellm is
imported. ``tables_from_litellm`` recomputes the tables from an installed litellm; the tests compare
the two, and compare every name of the model cost map (with provider prefixes, ``ft:`` forms and
random strings) resolved here, in a process without litellm, with litellm's own answer.

LiteLLM 1.110.2's rules (``litellm.utils.huggingface_tokenizer_kind`` and
``litellm.litellm_core_utils.token_counter.openai_tokenizer_encoding_name``):

1. HuggingFace tokenizers come first (unless ``litellm.disable_hf_tokenizer_download`` is set):
   - ``model in litellm.cohere_models and "command-r" in model``  -> Cohere command-r tokenizer
   - ``model in litellm.anthropic_models and "claude-3" not in model`` -> LiteLLM's packaged
     Anthropic tokenizer (exact name match, so ``anthropic/claude-opus-4-5`` is *not* matched)
   - DeepSeek V3/V4 names (``deepseek-v3``, ``deepseek_chat_v4``, a last path segment
     ``deepseek-chat``, ``deepseek-reasoner`` or ``deepseek-flash``, case-insensitive) -> LiteLLM's
     packaged DeepSeek tokenizer
   - ``"llama-2" in model.lower() or "replicate" in model.lower()`` -> Llama 2 tokenizer
   - ``"llama-3" in model.lower()`` -> Llama 3 tokenizer
   Whether LiteLLM can load a HuggingFace tokenizer depends on the environment (network,
   ``tokenizers``); when it cannot, it logs a warning and falls back to tiktoken as below. We report
   these models as ``("other", reason)`` and leave their counting to litellm.
2. Otherwise tiktoken, on the OpenAI model the name stands for. The first of:
   - a *listed* name: some ``/``-suffix ``s`` of the name (``eu/gpt-4o`` and ``gpt-4o`` for
     ``azure/eu/gpt-4o``) is, itself or as ``azure/{s}``, a member of ``open_ai_chat_completion_models``
     or ``azure_llms``, or a cost-map key of an Azure OpenAI text model -> the last path segment;
   - a last path segment tiktoken maps to o200k_base, or named like a gpt-5+ or o-series release
     (``gpt-6.2``, ``o5-mini``) -> that segment;
   - the deployment name (last segment, the base model of an ``ft:base:org::id`` name) when
     ``azure/{deployment}`` is an Azure OpenAI chat model of the cost map -> that deployment name;
   - else the name normalised as before 1.110: a key of ``azure_llms`` with ``-35`` read as ``-3.5``,
     a member of ``open_ai_chat_completion_models`` unchanged, anything else ``gpt-3.5-turbo``.
   That name gets o200k_base if it contains ``gpt-4o``, else tiktoken's encoding for it (exact name,
   then tiktoken's prefixes), else the encoding of the longest tiktoken model it extends with
   ``-suffix``, else cl100k_base if the cost map lists it with a mode other than chat/responses,
   else o200k_base (every OpenAI model since gpt-4o uses it).
3. Message accounting: ``tokens_per_message=4, tokens_per_name=-1`` when the normalised name is
   ``gpt-3.5-turbo-0301`` (not in the current tables, so never), otherwise ``3`` and ``1``.

Once ``litellm`` has been imported in the process, every name is resolved by litellm's own
functions (``openai_tokenizer_encoding_name``, ``huggingface_tokenizer_kind``,
``uses_legacy_message_accounting``), once per name: a litellm other than 1.110.2, or tables changed
at run time (``litellm.register_model``), are then followed too. A litellm too old to have these
functions gets the rules it had (the normalised name of step 2's last bullet decides, no DeepSeek
tokenizer) over its live tables. ``refresh()`` forgets the cached answers.
"""

from __future__ import annotations

import functools

# Imported now, not at first use: a child forked while another thread imported it on first use
# would wait for ever for that import's lock (a count of a Hugging Face model's first use).
import importlib.util
import os
import re
import sys
import types
from functools import lru_cache
from typing import Any, Callable, Final, Mapping, NamedTuple, Optional

from ._vocab import ENCODING_NAMES


def _env_int_in_range(name: str, default: int, minimum: int, maximum: int) -> int:
    """An integer knob as litellm reads one (``get_env_int_in_range``): Python's ``int()`` of the
    stripped value ("2_048" and full-width digits included), the default when unset, blank,
    unparsable or out of range."""
    raw = os.getenv(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except (ValueError, TypeError):
        return default
    return value if minimum <= value <= maximum else default


#: litellm.constants.TIKTOKEN_ENCODE_CHUNK_SIZE_CHARS (read once, as litellm does at import).
CHUNK_CHARS: Final = _env_int_in_range("TIKTOKEN_ENCODE_CHUNK_SIZE_CHARS", 1024, 1, 4096)
#: litellm.constants.TOKEN_COUNTER_MAX_EXACT_CHARS
MAX_EXACT_CHARS: Final = _env_int_in_range(
    "TOKEN_COUNTER_MAX_EXACT_CHARS", 4_000_000, 1, 1_000_000_000
)

__all__ = [
    "SUPPORTED_ENCODINGS",
    "encoding_for_model",
    "huggingface_kind",
    "huggingface_tokenizer_file",
    "litellm_installed",
    "message_token_params",
    "prices_tools_by_chat_template",
    "refresh",
    "settled",
    "snapshot_tables",
    "tables_from_litellm",
    "tokenizer_for_model",
    "uses_legacy_message_accounting",
]

#: Encodings whose vocabularies ship in ``fast_litellm/_vocab``.
SUPPORTED_ENCODINGS: Final = frozenset(ENCODING_NAMES)

#: Encodings that count exactly like one we ship when special tokens are encoded as plain text
#: (``disallowed_special=()``, which is what LiteLLM does): same ranks and split pattern, extra
#: special tokens only.
_SAME_COUNTS_AS: Final = {"o200k_harmony": "o200k_base", "p50k_edit": "p50k_base"}

_DEFAULT_ENCODING: Final = "cl100k_base"
_LEGACY_MODEL: Final = "gpt-3.5-turbo-0301"
_UNLISTED_MODEL: Final = "gpt-3.5-turbo"
_AZURE_PREFIX: Final = "azure/"

#: Cost-map modes of the models LiteLLM treats as OpenAI chat models, and of its Azure text models.
_CHAT_MODES: Final = frozenset({"chat", "responses"})
_AZURE_TEXT_MODES: Final = frozenset({"chat", "completion", "responses", "realtime"})

#: Releases newer than any table: gpt-5 and later, o1 and later, alone or followed by ``.``/``-``.
#: ``\d`` and ``$`` keep Python's meaning (any Unicode digit; end or before a final newline), as
#: in LiteLLM's own pattern, so odd names resolve as LiteLLM resolves them.
_VERSIONED_OPENAI_MODEL: Final = re.compile(r"(?:gpt-(?:[5-9]|[1-9]\d+)|o[1-9]\d*)(?:[.-]|$)")

#: Names LiteLLM counts with its packaged DeepSeek tokenizer (searched anywhere in the name).
_DEEPSEEK_TOKENIZER_MODEL: Final = re.compile(
    r"deepseek[-_.](?:chat[-_.])?v[34]|(?:^|/)deepseek-(?:chat|reasoner|flash)(?::free)?$",
    re.IGNORECASE,
)


class _Tables(NamedTuple):
    """The parts of LiteLLM's (and tiktoken's) tables its model rules read."""

    #: ``litellm.open_ai_chat_completion_models``.
    openai_chat_models: frozenset[str]
    #: Keys of ``litellm.azure_llms``.
    azure_models: frozenset[str]
    #: Cost-map keys of Azure OpenAI text models (provider azure, a text mode, an OpenAI name).
    azure_text_models: frozenset[str]
    #: Names ``d`` whose cost-map entry ``azure/{d}`` is an Azure OpenAI chat model.
    azure_chat_deployments: frozenset[str]
    #: Names the cost map lists (as such or under ``azure/``) with a mode other than chat, among
    #: those the last step of the encoding rule can be asked about: OpenAI model names tiktoken
    #: cannot place.
    non_chat_models: frozenset[str]
    #: ``tiktoken.model.MODEL_TO_ENCODING``.
    tiktoken_models: Mapping[str, str]
    #: ``tiktoken.model.MODEL_PREFIX_TO_ENCODING``, in its order (the first prefix that matches wins).
    tiktoken_prefixes: tuple[tuple[str, str], ...]
    #: ``anthropic_models`` members without "claude-3": counted with LiteLLM's Anthropic tokenizer.
    anthropic_tokenizer_models: frozenset[str]
    #: ``cohere_models`` members containing "command-r": counted with the Cohere tokenizer.
    cohere_tokenizer_models: frozenset[str]


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _by_encoding(**models: frozenset[str]) -> dict[str, str]:
    return {model: encoding for encoding, group in models.items() for model in group}


# ---- snapshot: litellm 1.110.2 (bundled model cost map) / tiktoken 0.14 -----------------------

_SNAPSHOT: Final = _Tables(
    openai_chat_models=_names(
        """
        1024-x-1024/gpt-image-1.5 1024-x-1024/gpt-image-1.5-2025-12-16 1024-x-1536/gpt-image-1.5
        1024-x-1536/gpt-image-1.5-2025-12-16 1536-x-1024/gpt-image-1.5
        1536-x-1024/gpt-image-1.5-2025-12-16 chat-latest chatgpt-image-latest computer-use-preview
        computer-use-preview-2025-03-11 daybreak-blue-latest daybreak-red-latest gpt-3.5-turbo
        gpt-3.5-turbo-0125 gpt-3.5-turbo-1106 gpt-3.5-turbo-16k gpt-4 gpt-4-0613 gpt-4-1106-preview
        gpt-4-turbo gpt-4-turbo-2024-04-09 gpt-4.1 gpt-4.1-2025-04-14 gpt-4.1-mini
        gpt-4.1-mini-2025-04-14 gpt-4.1-nano gpt-4.1-nano-2025-04-14 gpt-4o gpt-4o-2024-05-13
        gpt-4o-2024-08-06 gpt-4o-2024-11-20 gpt-4o-audio-preview-2024-12-17
        gpt-4o-audio-preview-2025-06-03 gpt-4o-mini gpt-4o-mini-2024-07-18
        gpt-4o-mini-audio-preview-2024-12-17 gpt-4o-mini-realtime-preview-2024-12-17
        gpt-4o-mini-search-preview gpt-4o-mini-search-preview-2025-03-11 gpt-4o-mini-transcribe
        gpt-4o-mini-transcribe-2025-03-20 gpt-4o-mini-transcribe-2025-12-15 gpt-4o-mini-tts
        gpt-4o-mini-tts-2025-03-20 gpt-4o-mini-tts-2025-12-15 gpt-4o-search-preview
        gpt-4o-search-preview-2025-03-11 gpt-4o-transcribe gpt-4o-transcribe-diarize gpt-5
        gpt-5-2025-08-07 gpt-5-chat gpt-5-chat-latest gpt-5-codex gpt-5-mini gpt-5-mini-2025-08-07
        gpt-5-nano gpt-5-nano-2025-08-07 gpt-5-pro gpt-5-pro-2025-10-06 gpt-5-search-api
        gpt-5-search-api-2025-10-14 gpt-5.1 gpt-5.1-2025-11-13 gpt-5.1-chat-latest gpt-5.1-codex
        gpt-5.1-codex-max gpt-5.1-codex-mini gpt-5.2 gpt-5.2-2025-12-11 gpt-5.2-chat-latest
        gpt-5.2-codex gpt-5.2-pro gpt-5.2-pro-2025-12-11 gpt-5.3-chat-latest gpt-5.3-codex gpt-5.4
        gpt-5.4-2026-03-05 gpt-5.4-mini gpt-5.4-mini-2026-03-17 gpt-5.4-nano gpt-5.4-nano-2026-03-17
        gpt-5.4-pro gpt-5.4-pro-2026-03-05 gpt-5.5 gpt-5.5-2026-04-23 gpt-5.5-cyber
        gpt-5.5-cyber-preview gpt-5.5-pro gpt-5.5-pro-2026-04-23 gpt-5.6 gpt-5.6-cyber gpt-5.6-luna
        gpt-5.6-sol gpt-5.6-terra gpt-6-astra gpt-6-astra-law gpt-6-cyber gpt-6-luna gpt-6-rosalind
        gpt-6-sol gpt-6.1-sol gpt-6.1-terra gpt-astra-latest gpt-audio gpt-audio-1.5
        gpt-audio-2025-08-28 gpt-audio-mini gpt-audio-mini-2025-10-06 gpt-audio-mini-2025-12-15
        gpt-daybreak-blue-latest gpt-daybreak-red-latest gpt-image-1 gpt-image-1-mini gpt-image-1.5
        gpt-image-1.5-2025-12-16 gpt-image-2 gpt-image-2-2026-04-21 gpt-image-2.5-flare
        gpt-image-2.5-flare-2026-09-08 gpt-image-2.5-sunburst gpt-image-2.5-sunburst-2026-09-08
        gpt-image-2.6-flare gpt-image-2.6-sunburst gpt-live-1 gpt-live-transcribe gpt-luna-latest
        gpt-mini-latest gpt-realtime gpt-realtime-1.5 gpt-realtime-2 gpt-realtime-2.1
        gpt-realtime-2.1-mini gpt-realtime-2025-08-28 gpt-realtime-mini gpt-realtime-mini-2025-12-15
        gpt-realtime-translate gpt-realtime-whisper gpt-rosalind-discovery gpt-rosalind-research
        gpt-sol-latest gpt-terra-latest gpt-transcribe high/1024-x-1024/gpt-image-1
        high/1024-x-1024/gpt-image-1.5 high/1024-x-1024/gpt-image-1.5-2025-12-16
        high/1024-x-1536/gpt-image-1 high/1024-x-1536/gpt-image-1.5
        high/1024-x-1536/gpt-image-1.5-2025-12-16 high/1536-x-1024/gpt-image-1
        high/1536-x-1024/gpt-image-1.5 high/1536-x-1024/gpt-image-1.5-2025-12-16
        low/1024-x-1024/gpt-image-1 low/1024-x-1024/gpt-image-1-mini low/1024-x-1024/gpt-image-1.5
        low/1024-x-1024/gpt-image-1.5-2025-12-16 low/1024-x-1536/gpt-image-1
        low/1024-x-1536/gpt-image-1-mini low/1024-x-1536/gpt-image-1.5
        low/1024-x-1536/gpt-image-1.5-2025-12-16 low/1536-x-1024/gpt-image-1
        low/1536-x-1024/gpt-image-1-mini low/1536-x-1024/gpt-image-1.5
        low/1536-x-1024/gpt-image-1.5-2025-12-16 medium/1024-x-1024/gpt-image-1
        medium/1024-x-1024/gpt-image-1-mini medium/1024-x-1024/gpt-image-1.5
        medium/1024-x-1024/gpt-image-1.5-2025-12-16 medium/1024-x-1536/gpt-image-1
        medium/1024-x-1536/gpt-image-1-mini medium/1024-x-1536/gpt-image-1.5
        medium/1024-x-1536/gpt-image-1.5-2025-12-16 medium/1536-x-1024/gpt-image-1
        medium/1536-x-1024/gpt-image-1-mini medium/1536-x-1024/gpt-image-1.5
        medium/1536-x-1024/gpt-image-1.5-2025-12-16 o1 o1-2024-12-17 o1-pro o1-pro-2025-03-19 o3
        o3-2025-04-16 o3-deep-research o3-deep-research-2025-06-26 o3-mini o3-mini-2025-01-31 o3-pro
        o3-pro-2025-06-10 o4-mini o4-mini-2025-04-16 o4-mini-deep-research
        o4-mini-deep-research-2025-06-26 omni-moderation-2024-09-26 omni-moderation-latest
        openai/container openai/sora-2 openai/sora-2-pro openai/sora-2-pro-high-res sora-2
        sora-2-pro sora-2-pro-high-res standard/1024-x-1024/gpt-image-1.5
        standard/1024-x-1024/gpt-image-1.5-2025-12-16 standard/1024-x-1536/gpt-image-1.5
        standard/1024-x-1536/gpt-image-1.5-2025-12-16 standard/1536-x-1024/gpt-image-1.5
        standard/1536-x-1024/gpt-image-1.5-2025-12-16 text-embedding-3-large text-embedding-3-small
        text-embedding-ada-002 text-embedding-ada-002-v2 tts-1 tts-1-1106 tts-1-hd tts-1-hd-1106
        whisper-1
        """
    ),
    azure_models=_names(
        """
        azure/gpt-41 azure/gpt-41-mini azure/gpt-41-nano gpt-35-turbo gpt-35-turbo-instruct
        """
    ),
    azure_text_models=_names(
        """
        azure/apac/gpt-6.1-sol azure/apac/gpt-6.1-terra azure/chat-latest azure/computer-use-preview
        azure/eu/computer-use-preview azure/eu/gpt-4.1 azure/eu/gpt-4.1-mini azure/eu/gpt-4.1-nano
        azure/eu/gpt-4o azure/eu/gpt-4o-2024-05-13 azure/eu/gpt-4o-2024-08-06
        azure/eu/gpt-4o-2024-11-20 azure/eu/gpt-4o-mini azure/eu/gpt-4o-mini-2024-07-18
        azure/eu/gpt-4o-mini-realtime-preview-2024-12-17 azure/eu/gpt-4o-realtime-preview-2024-12-17
        azure/eu/gpt-5 azure/eu/gpt-5-2025-08-07 azure/eu/gpt-5-codex azure/eu/gpt-5-mini
        azure/eu/gpt-5-mini-2025-08-07 azure/eu/gpt-5-nano azure/eu/gpt-5-nano-2025-08-07
        azure/eu/gpt-5-pro azure/eu/gpt-5.1 azure/eu/gpt-5.1-chat azure/eu/gpt-5.1-codex
        azure/eu/gpt-5.1-codex-max azure/eu/gpt-5.1-codex-mini azure/eu/gpt-5.2
        azure/eu/gpt-5.2-chat azure/eu/gpt-5.2-codex azure/eu/gpt-5.2-pro azure/eu/gpt-5.3-chat
        azure/eu/gpt-5.3-codex azure/eu/gpt-5.4 azure/eu/gpt-5.4-2026-03-05 azure/eu/gpt-5.4-mini
        azure/eu/gpt-5.4-nano azure/eu/gpt-5.4-pro azure/eu/gpt-5.5 azure/eu/gpt-5.5-2026-04-23
        azure/eu/gpt-5.5-2026-04-24 azure/eu/gpt-5.6 azure/eu/gpt-5.6-luna azure/eu/gpt-5.6-sol
        azure/eu/gpt-5.6-terra azure/eu/gpt-6-astra azure/eu/gpt-6-luna azure/eu/gpt-6-sol
        azure/eu/gpt-6.1-sol azure/eu/gpt-6.1-terra azure/eu/o1 azure/eu/o1-2024-12-17
        azure/eu/o1-mini azure/eu/o1-mini-2024-09-12 azure/eu/o3 azure/eu/o3-2025-04-16
        azure/eu/o3-deep-research azure/eu/o3-mini azure/eu/o3-mini-2025-01-31 azure/eu/o4-mini
        azure/eu/o4-mini-2025-04-16 azure/global-standard/gpt-4o-2024-08-06
        azure/global-standard/gpt-4o-2024-11-20 azure/global-standard/gpt-4o-mini
        azure/global/gpt-4o-2024-08-06 azure/global/gpt-4o-2024-11-20 azure/global/gpt-5.1
        azure/global/gpt-5.1-codex azure/global/gpt-5.1-codex-mini azure/gpt-3.5-turbo
        azure/gpt-35-turbo azure/gpt-4-0125-preview azure/gpt-4-1106-preview azure/gpt-4-turbo
        azure/gpt-4-turbo-2024-04-09 azure/gpt-4-turbo-vision-preview azure/gpt-4.1
        azure/gpt-4.1-2025-04-14 azure/gpt-4.1-mini azure/gpt-4.1-mini-2025-04-14 azure/gpt-4.1-nano
        azure/gpt-4.1-nano-2025-04-14 azure/gpt-4o azure/gpt-4o-2024-05-13 azure/gpt-4o-2024-08-06
        azure/gpt-4o-2024-11-20 azure/gpt-4o-audio-preview-2024-12-17 azure/gpt-4o-mini
        azure/gpt-4o-mini-2024-07-18 azure/gpt-4o-mini-audio-preview-2024-12-17
        azure/gpt-4o-mini-realtime-preview-2024-12-17 azure/gpt-4o-realtime-preview-2024-12-17
        azure/gpt-5 azure/gpt-5-2025-08-07 azure/gpt-5-chat azure/gpt-5-codex azure/gpt-5-mini
        azure/gpt-5-mini-2025-08-07 azure/gpt-5-nano azure/gpt-5-nano-2025-08-07 azure/gpt-5-pro
        azure/gpt-5.1 azure/gpt-5.1-2025-11-13 azure/gpt-5.1-chat azure/gpt-5.1-codex
        azure/gpt-5.1-codex-2025-11-13 azure/gpt-5.1-codex-max azure/gpt-5.1-codex-mini
        azure/gpt-5.1-codex-mini-2025-11-13 azure/gpt-5.2 azure/gpt-5.2-2025-12-11
        azure/gpt-5.2-chat azure/gpt-5.2-codex azure/gpt-5.2-pro azure/gpt-5.2-pro-2025-12-11
        azure/gpt-5.3-chat azure/gpt-5.3-codex azure/gpt-5.4 azure/gpt-5.4-2026-03-05
        azure/gpt-5.4-mini azure/gpt-5.4-mini-2026-03-17 azure/gpt-5.4-nano
        azure/gpt-5.4-nano-2026-03-17 azure/gpt-5.4-pro azure/gpt-5.4-pro-2026-03-05 azure/gpt-5.5
        azure/gpt-5.5-2026-04-23 azure/gpt-5.5-2026-04-24 azure/gpt-5.5-pro
        azure/gpt-5.5-pro-2026-04-23 azure/gpt-5.6 azure/gpt-5.6-luna azure/gpt-5.6-luna-2026-07-09
        azure/gpt-5.6-sol azure/gpt-5.6-sol-2026-07-09 azure/gpt-5.6-terra
        azure/gpt-5.6-terra-2026-07-09 azure/gpt-6-astra azure/gpt-6-astra-2026-09-03
        azure/gpt-6-luna azure/gpt-6-luna-2026-09-22 azure/gpt-6-sol azure/gpt-6-sol-2026-09-22
        azure/gpt-6.1-sol azure/gpt-6.1-sol-2026-09-29 azure/gpt-6.1-terra azure/gpt-astra-latest
        azure/gpt-audio azure/gpt-audio-1.5 azure/gpt-audio-1.5-2026-02-23
        azure/gpt-audio-2025-08-28 azure/gpt-audio-mini azure/gpt-audio-mini-2025-10-06
        azure/gpt-live-1 azure/gpt-luna-latest azure/gpt-mini-latest azure/gpt-realtime
        azure/gpt-realtime-1.5 azure/gpt-realtime-1.5-2026-02-23 azure/gpt-realtime-2
        azure/gpt-realtime-2.1 azure/gpt-realtime-2.1-2026-07-07 azure/gpt-realtime-2.1-mini
        azure/gpt-realtime-2.1-mini-2026-07-07 azure/gpt-realtime-2025-08-28 azure/gpt-realtime-mini
        azure/gpt-realtime-mini-2025-10-06 azure/gpt-realtime-translate
        azure/gpt-realtime-translate-2026-05-06 azure/gpt-realtime-translate-2026-05-07
        azure/gpt-sol-latest azure/gpt-terra-latest azure/o1 azure/o1-2024-12-17 azure/o1-mini
        azure/o1-mini-2024-09-12 azure/o3 azure/o3-2025-04-16 azure/o3-deep-research azure/o3-mini
        azure/o3-mini-2025-01-31 azure/o3-pro azure/o3-pro-2025-06-10 azure/o4-mini
        azure/o4-mini-2025-04-16 azure/us-gov/gpt-5.1 azure/us-gov/o3-mini
        azure/us/computer-use-preview azure/us/gpt-4.1 azure/us/gpt-4.1-2025-04-14
        azure/us/gpt-4.1-mini azure/us/gpt-4.1-mini-2025-04-14 azure/us/gpt-4.1-nano
        azure/us/gpt-4.1-nano-2025-04-14 azure/us/gpt-4o azure/us/gpt-4o-2024-05-13
        azure/us/gpt-4o-2024-08-06 azure/us/gpt-4o-2024-11-20 azure/us/gpt-4o-mini
        azure/us/gpt-4o-mini-2024-07-18 azure/us/gpt-4o-mini-realtime-preview-2024-12-17
        azure/us/gpt-4o-realtime-preview-2024-12-17 azure/us/gpt-5 azure/us/gpt-5-2025-08-07
        azure/us/gpt-5-codex azure/us/gpt-5-mini azure/us/gpt-5-mini-2025-08-07 azure/us/gpt-5-nano
        azure/us/gpt-5-nano-2025-08-07 azure/us/gpt-5-pro azure/us/gpt-5.1 azure/us/gpt-5.1-chat
        azure/us/gpt-5.1-codex azure/us/gpt-5.1-codex-max azure/us/gpt-5.1-codex-mini
        azure/us/gpt-5.2 azure/us/gpt-5.2-chat azure/us/gpt-5.2-codex azure/us/gpt-5.2-pro
        azure/us/gpt-5.3-chat azure/us/gpt-5.3-codex azure/us/gpt-5.4 azure/us/gpt-5.4-2026-03-05
        azure/us/gpt-5.4-mini azure/us/gpt-5.4-nano azure/us/gpt-5.4-pro azure/us/gpt-5.5
        azure/us/gpt-5.5-2026-04-23 azure/us/gpt-5.5-2026-04-24 azure/us/gpt-5.6
        azure/us/gpt-5.6-luna azure/us/gpt-5.6-sol azure/us/gpt-5.6-terra azure/us/gpt-6-astra
        azure/us/gpt-6-luna azure/us/gpt-6-sol azure/us/gpt-6.1-sol azure/us/gpt-6.1-terra
        azure/us/gpt-realtime-1.5 azure/us/gpt-realtime-2.1 azure/us/gpt-realtime-2.1-mini
        azure/us/o1 azure/us/o1-2024-12-17 azure/us/o1-mini azure/us/o1-mini-2024-09-12 azure/us/o3
        azure/us/o3-2025-04-16 azure/us/o3-deep-research azure/us/o3-mini
        azure/us/o3-mini-2025-01-31 azure/us/o4-mini azure/us/o4-mini-2025-04-16
        """
    ),
    azure_chat_deployments=_names(
        """
        chat-latest codex-mini gpt-3.5-turbo gpt-35-turbo gpt-4-0125-preview gpt-4-1106-preview
        gpt-4-turbo gpt-4-turbo-2024-04-09 gpt-4-turbo-vision-preview gpt-4.1 gpt-4.1-2025-04-14
        gpt-4.1-mini gpt-4.1-mini-2025-04-14 gpt-4.1-nano gpt-4.1-nano-2025-04-14 gpt-4o
        gpt-4o-2024-05-13 gpt-4o-2024-08-06 gpt-4o-2024-11-20 gpt-4o-audio-preview-2024-12-17
        gpt-4o-mini gpt-4o-mini-2024-07-18 gpt-4o-mini-audio-preview-2024-12-17 gpt-5
        gpt-5-2025-08-07 gpt-5-chat gpt-5-codex gpt-5-mini gpt-5-mini-2025-08-07 gpt-5-nano
        gpt-5-nano-2025-08-07 gpt-5-pro gpt-5.1 gpt-5.1-2025-11-13 gpt-5.1-chat gpt-5.1-codex
        gpt-5.1-codex-2025-11-13 gpt-5.1-codex-max gpt-5.1-codex-mini gpt-5.1-codex-mini-2025-11-13
        gpt-5.2 gpt-5.2-2025-12-11 gpt-5.2-chat gpt-5.2-codex gpt-5.2-pro gpt-5.2-pro-2025-12-11
        gpt-5.3-chat gpt-5.3-codex gpt-5.4 gpt-5.4-2026-03-05 gpt-5.4-mini gpt-5.4-mini-2026-03-17
        gpt-5.4-nano gpt-5.4-nano-2026-03-17 gpt-5.4-pro gpt-5.4-pro-2026-03-05 gpt-5.5
        gpt-5.5-2026-04-23 gpt-5.5-2026-04-24 gpt-5.5-pro gpt-5.5-pro-2026-04-23 gpt-5.6
        gpt-5.6-luna gpt-5.6-luna-2026-07-09 gpt-5.6-sol gpt-5.6-sol-2026-07-09 gpt-5.6-terra
        gpt-5.6-terra-2026-07-09 gpt-6-astra gpt-6-astra-2026-09-03 gpt-6-luna gpt-6-luna-2026-09-22
        gpt-6-sol gpt-6-sol-2026-09-22 gpt-6.1-sol gpt-6.1-sol-2026-09-29 gpt-6.1-terra
        gpt-astra-latest gpt-audio gpt-audio-1.5 gpt-audio-1.5-2026-02-23 gpt-audio-2025-08-28
        gpt-audio-mini gpt-audio-mini-2025-10-06 gpt-chat-latest gpt-luna-latest gpt-mini-latest
        gpt-sol-latest gpt-terra-latest o3-deep-research
        """
    ),
    non_chat_models=_names(
        """
        chatgpt-image-latest gpt-image-1 gpt-image-1-mini gpt-image-1.5 gpt-image-1.5-2025-12-16
        gpt-image-2 gpt-image-2-2026-04-21 gpt-image-2.5-flare gpt-image-2.5-flare-2026-09-08
        gpt-image-2.5-sunburst gpt-image-2.5-sunburst-2026-09-08 gpt-image-2.6-flare
        gpt-image-2.6-sunburst gpt-live-1 gpt-live-transcribe gpt-realtime gpt-realtime-1.5
        gpt-realtime-1.5-2026-02-23 gpt-realtime-2 gpt-realtime-2.1 gpt-realtime-2.1-2026-07-07
        gpt-realtime-2.1-mini gpt-realtime-2.1-mini-2026-07-07 gpt-realtime-2025-08-28
        gpt-realtime-mini gpt-realtime-mini-2025-10-06 gpt-realtime-mini-2025-12-15
        gpt-realtime-translate gpt-realtime-translate-2026-05-06 gpt-realtime-translate-2026-05-07
        gpt-realtime-whisper gpt-transcribe omni-moderation-2024-09-26 omni-moderation-latest sora-2
        sora-2-pro sora-2-pro-high-res tts-1 tts-1-1106 tts-1-hd tts-1-hd-1106 whisper-1
        """
    ),
    tiktoken_models=_by_encoding(
        o200k_base=_names(
            """
            gpt-4.1 gpt-4o gpt-5 o1 o3 o4-mini
            """
        ),
        cl100k_base=_names(
            """
            babbage-002 davinci-002 gpt-3.5 gpt-3.5-turbo gpt-35-turbo gpt-4 text-embedding-3-large
            text-embedding-3-small text-embedding-ada-002
            """
        ),
        p50k_base=_names(
            """
            code-cushman-001 code-cushman-002 code-davinci-001 code-davinci-002 cushman-codex
            davinci-codex text-davinci-002 text-davinci-003
            """
        ),
        r50k_base=_names(
            """
            ada babbage code-search-ada-code-001 code-search-babbage-code-001 curie davinci
            text-ada-001 text-babbage-001 text-curie-001 text-davinci-001 text-search-ada-doc-001
            text-search-babbage-doc-001 text-search-curie-doc-001 text-search-davinci-doc-001
            text-similarity-ada-001 text-similarity-babbage-001 text-similarity-curie-001
            text-similarity-davinci-001
            """
        ),
        p50k_edit=_names(
            """
            code-davinci-edit-001 text-davinci-edit-001
            """
        ),
        gpt2=_names(
            """
            gpt-2 gpt2
            """
        ),
    ),
    tiktoken_prefixes=(
        ("o1-", "o200k_base"),
        ("o3-", "o200k_base"),
        ("o4-mini-", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-4.5-", "o200k_base"),
        ("gpt-4.1-", "o200k_base"),
        ("chatgpt-4o-", "o200k_base"),
        ("gpt-4o-", "o200k_base"),
        ("gpt-4-", "cl100k_base"),
        ("gpt-3.5-turbo-", "cl100k_base"),
        ("gpt-35-turbo-", "cl100k_base"),
        ("gpt-oss-", "o200k_harmony"),
        ("ft:gpt-4o", "o200k_base"),
        ("ft:gpt-4", "cl100k_base"),
        ("ft:gpt-3.5-turbo", "cl100k_base"),
        ("ft:davinci-002", "cl100k_base"),
        ("ft:babbage-002", "cl100k_base"),
    ),
    anthropic_tokenizer_models=_names(
        """
        claude-fable-5 claude-fable-5-1 claude-fable-latest claude-haiku-4-5
        claude-haiku-4-5-20251001 claude-haiku-5-5 claude-haiku-latest claude-mythos-5
        claude-mythos-5-1 claude-mythos-preview claude-opus-4-5 claude-opus-4-5-20251101
        claude-opus-4-6 claude-opus-4-6-20260205 claude-opus-4-7 claude-opus-4-7-20260416
        claude-opus-4-8 claude-opus-5 claude-opus-5-5 claude-opus-latest claude-sonnet-4-5
        claude-sonnet-4-5-20250929 claude-sonnet-4-6 claude-sonnet-5 claude-sonnet-5-5
        claude-sonnet-latest
        """
    ),
    cohere_tokenizer_models=frozenset(),
)

_CACHE_SIZE: Final = 4096


def _check_model(model: object) -> str:
    if not isinstance(model, str):
        raise TypeError(f"model must be a str, not {type(model).__name__}")
    return model


# ---- the rules, over a set of tables ------------------------------------------------------------


def _huggingface_kind(model: str, tables: _Tables, deepseek: bool = True) -> Optional[str]:
    """The HuggingFace tokenizer LiteLLM picks for ``model`` (rule 1 above), given its tables;
    ``deepseek=False`` for a litellm older than its DeepSeek tokenizer."""
    if model in tables.cohere_tokenizer_models:
        return "cohere"
    if model in tables.anthropic_tokenizer_models:
        return "anthropic"
    if deepseek and _DEEPSEEK_TOKENIZER_MODEL.search(model):
        return "deepseek"
    lowered = model.lower()
    if "llama-2" in lowered or "replicate" in lowered:
        return "llama2"
    if "llama-3" in lowered:
        return "llama3"
    return None


def _tiktoken_encoding(name: str, tables: _Tables) -> Optional[str]:
    """``tiktoken.encoding_name_for_model(name)``, None where tiktoken raises ``KeyError``."""
    encoding = tables.tiktoken_models.get(name)
    if encoding is not None:
        return encoding
    return next(
        (encoding for prefix, encoding in tables.tiktoken_prefixes if name.startswith(prefix)),
        None,
    )


def _extended_tiktoken_encoding(name: str, tables: _Tables) -> Optional[str]:
    """The encoding of the longest tiktoken model ``name`` extends with a ``-suffix``."""
    base = max(
        (known for known in tables.tiktoken_models if name.startswith(known + "-")),
        key=len,
        default=None,
    )
    return None if base is None else tables.tiktoken_models[base]


def _normalised_name(model: str, tables: _Tables) -> str:
    """The name LiteLLM's tiktoken path used before 1.110 (and still uses when nothing else fits)."""
    if model in tables.azure_models:
        return model.replace("-35", "-3.5")
    if model in tables.openai_chat_models:
        return model
    return _UNLISTED_MODEL


def _is_listed(name: str, tables: _Tables) -> bool:
    return (
        name in tables.azure_models
        or name in tables.openai_chat_models
        or name in tables.azure_text_models
    )


def _openai_model_name(model: str, tables: _Tables) -> str:
    """The OpenAI model ``model`` stands for (rule 2 above), or "" when it names none."""
    segments = model.split("/")
    last = segments[-1]
    suffixes = ("/".join(segments[start:]) for start in range(len(segments)))
    if any(_is_listed(s, tables) or _is_listed(_AZURE_PREFIX + s, tables) for s in suffixes):
        return last
    if _tiktoken_encoding(last, tables) == "o200k_base" or _VERSIONED_OPENAI_MODEL.match(last):
        return last
    deployment = last.split(":")[1] if last.startswith("ft:") else last
    return deployment if deployment in tables.azure_chat_deployments else ""


def _encoding_name(model: str, tables: _Tables) -> str:
    """litellm 1.110's ``openai_tokenizer_encoding_name`` over ``tables``."""
    name = _openai_model_name(model, tables) or _normalised_name(model, tables)
    if "gpt-4o" in name:
        return "o200k_base"
    encoding = _tiktoken_encoding(name, tables) or _extended_tiktoken_encoding(name, tables)
    if encoding is not None:
        return encoding
    # An OpenAI model tiktoken cannot place is a release newer than its table; only the cost map's
    # models that do not chat (image, speech, realtime, moderation) keep cl100k_base.
    return _DEFAULT_ENCODING if name in tables.non_chat_models else "o200k_base"


def _encoding_name_before_1_110(model: str, tables: _Tables) -> str:
    """The rule of litellm releases without ``openai_tokenizer_encoding_name``: every name outside
    the OpenAI tables counts as ``gpt-3.5-turbo``."""
    name = _normalised_name(model, tables)
    if "gpt-4o" in name:
        return "o200k_base"
    return _tiktoken_encoding(name, tables) or _DEFAULT_ENCODING


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
    lambda model: _huggingface_kind(model, _SNAPSHOT),
    lambda model: _encoding_name(model, _SNAPSHOT),
    lambda model: _normalised_name(model, _SNAPSHOT) == _LEGACY_MODEL,
    lambda: False,
)

_rules: _Rules = _SNAPSHOT_RULES
_live = False
#: Called when cached answers become stale (``tokens`` registers its per-model cache here).
_on_refresh: list[Callable[[], None]] = []


def _litellm_rules(litellm: Any) -> _Rules:
    """litellm's own resolvers where this version has them, else its older rules over its live
    tables."""
    counter_mod = sys.modules.get("litellm.litellm_core_utils.token_counter")
    utils_mod = sys.modules.get("litellm.utils")
    tables: list[_Tables] = []

    def live_tables() -> _Tables:
        if not tables:
            import tiktoken

            tables.append(_tables_from(litellm, tiktoken))
        return tables[0]

    encoding = getattr(counter_mod, "openai_tokenizer_encoding_name", None)
    if encoding is None:

        def encoding(model: str) -> str:
            return _encoding_name_before_1_110(model, live_tables())

    hf_kind = getattr(utils_mod, "huggingface_tokenizer_kind", None)
    if hf_kind is None:

        def hf_kind(model: str) -> Optional[str]:
            return _huggingface_kind(model, live_tables(), deepseek=False)

    legacy = getattr(counter_mod, "uses_legacy_message_accounting", None)
    if legacy is None:

        def legacy(model: str) -> bool:
            return _normalised_name(model, live_tables()) == _LEGACY_MODEL

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
            _watch(litellm)
            refresh()
    return _rules


# litellm's settings and tables that decide a model's tokenizer, as a program changes them.
_WATCHED = frozenset(
    {
        "disable_hf_tokenizer_download",
        "model_cost",
        "anthropic_models",
        "cohere_models",
        "open_ai_chat_completion_models",
        "azure_llms",
    }
)


class _WatchedModule(types.ModuleType):
    """litellm's module, whose assignments to the names that decide a model's tokenizer
    (``litellm.disable_hf_tokenizer_download = True``) forget the cached answers."""

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in _WATCHED:
            refresh()


def _watch(litellm: Any) -> None:
    """Cached answers are forgotten when a program changes what LiteLLM's choice of tokenizer
    reads: a watched setting assigned on the module, or a model added with
    ``litellm.register_model`` (before, the first answer for a name stayed, and a model
    registered as an Anthropic one kept the tokenizer chosen before). Watching costs the
    counting path nothing: the module's assignments and ``register_model`` do the work."""
    if type(litellm) is types.ModuleType:
        try:
            litellm.__class__ = _WatchedModule
        except TypeError:
            pass
    register = getattr(litellm, "register_model", None)
    if callable(register) and not getattr(register, "_forgets_cached_models", False):

        @functools.wraps(register)
        def register_model(*args: Any, **kwargs: Any) -> Any:
            try:
                return register(*args, **kwargs)
            finally:
                refresh()

        register_model._forgets_cached_models = True  # type: ignore[attr-defined]
        litellm.register_model = register_model


_installed: Optional[bool] = None


def litellm_installed() -> bool:
    """Whether litellm is loaded or can be imported."""
    global _installed
    if _live:
        return True
    if _installed is None:
        _installed = importlib.util.find_spec("litellm") is not None
    return _installed


def settled() -> bool:
    """Whether answers given now stay right: litellm is loaded, or not installed at all. Until
    then a caller may not keep answers beyond these functions' own caches (which ``refresh``
    clears when litellm shows up)."""
    _current_rules()
    return _live or not litellm_installed()


def refresh() -> None:
    """Forget every cached model answer; the next call resolves names again."""
    _encoding_for_model.cache_clear()
    _tokenizer_for_model.cache_clear()
    _legacy.cache_clear()
    _hf_kind.cache_clear()
    _tokenizer_file.cache_clear()
    _hub_cache_of.cache_clear()
    for callback in _on_refresh:
        callback()


@lru_cache(maxsize=_CACHE_SIZE)
def _encoding_for_model(model: str) -> str:
    return _rules.encoding(model)


def encoding_for_model(model: str) -> str:
    """The tiktoken encoding LiteLLM's ``token_counter`` uses for ``model`` on its tiktoken path.

    Without litellm, by litellm 1.110.2's rules over the snapshot (unknown names give
    ``"cl100k_base"``, unknown gpt-5+ and o-series names ``"o200k_base"``); with litellm imported,
    whatever that version answers. For models LiteLLM
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


def _tables_from(litellm: Any, tiktoken: Any) -> _Tables:
    openai_chat_models = frozenset(litellm.open_ai_chat_completion_models)
    azure_models = frozenset(litellm.azure_llms)
    tiktoken_only = _Tables(
        openai_chat_models=openai_chat_models,
        azure_models=azure_models,
        azure_text_models=frozenset(),
        azure_chat_deployments=frozenset(),
        non_chat_models=frozenset(),
        tiktoken_models=dict(tiktoken.model.MODEL_TO_ENCODING),
        tiktoken_prefixes=tuple(tiktoken.model.MODEL_PREFIX_TO_ENCODING.items()),
        anthropic_tokenizer_models=frozenset(
            name for name in litellm.anthropic_models if "claude-3" not in name
        ),
        cohere_tokenizer_models=frozenset(
            name for name in litellm.cohere_models if "command-r" in name
        ),
    )
    cost_map = {
        name: entry for name, entry in litellm.model_cost.items() if isinstance(entry, Mapping)
    }

    def is_openai_name(name: str) -> bool:
        return (
            name in openai_chat_models
            or _tiktoken_encoding(name, tiktoken_only) is not None
            or any(
                name.startswith(listed + "-") or listed.startswith(name + "-")
                for listed in openai_chat_models
            )
        )

    azure_text_models = frozenset(
        name
        for name, entry in cost_map.items()
        if entry.get("litellm_provider") == "azure"
        and entry.get("mode") in _AZURE_TEXT_MODES
        and is_openai_name(name.rpartition("/")[2])
    )
    azure_chat_deployments = frozenset(
        deployment
        for deployment, entry in (
            (name[len(_AZURE_PREFIX) :], entry)
            for name, entry in cost_map.items()
            if name.startswith(_AZURE_PREFIX)
        )
        # A deployment name is a last path segment: names with "/" can never be asked about.
        if "/" not in deployment
        and entry.get("litellm_provider") == "azure"
        and entry.get("mode") in _CHAT_MODES
        and (entry.get("supports_pdf_input") is True or deployment.startswith("gpt-"))
    )
    non_chat_names = set()
    for name, entry in cost_map.items():
        mode = entry.get("mode")
        if mode is not None and mode not in _CHAT_MODES:
            non_chat_names.add(name)
            if name.startswith(_AZURE_PREFIX):
                non_chat_names.add(name[len(_AZURE_PREFIX) :])
    # The last step of the encoding rule sees the OpenAI model a name stands for (the last path
    # segment of a listed name, a gpt-5+/o-series name, an Azure chat deployment), or the
    # normalised name when that is empty (a listed name ending with "/").
    listed_segments = {
        name.rpartition("/")[2] for name in openai_chat_models | azure_models | azure_text_models
    }
    normalised_with_slash = {
        _normalised_name(name, tiktoken_only)
        for name in openai_chat_models | azure_models
        if name.endswith("/")
    }

    def reaches_last_step(name: str) -> bool:
        return (
            name in listed_segments
            or _VERSIONED_OPENAI_MODEL.match(name) is not None
            or name in azure_chat_deployments
            or name in normalised_with_slash
        ) and not (
            "gpt-4o" in name
            or _tiktoken_encoding(name, tiktoken_only) is not None
            or _extended_tiktoken_encoding(name, tiktoken_only) is not None
        )

    non_chat_models = frozenset(filter(reaches_last_step, non_chat_names))
    return tiktoken_only._replace(
        azure_text_models=azure_text_models,
        azure_chat_deployments=azure_chat_deployments,
        non_chat_models=non_chat_models,
    )


def tables_from_litellm(litellm: Any, tiktoken: Any) -> dict[str, Any]:
    """Recompute the snapshot tables above from imported ``litellm`` and ``tiktoken`` modules.

    Used by the reference tests and to refresh the snapshot after a litellm upgrade.
    """
    return _tables_from(litellm, tiktoken)._asdict()


def snapshot_tables() -> dict[str, Any]:
    """The snapshot tables, in the shape ``tables_from_litellm`` returns."""
    return _SNAPSHOT._asdict()


# ---- Hugging Face tokenizers --------------------------------------------------------------------
#
# LiteLLM 1.110.2 (``litellm.utils._load_huggingface_tokenizer``) loads the Anthropic and DeepSeek
# tokenizers from the JSON files it ships, and the others from the Hub with
# ``Tokenizer.from_pretrained`` (skipped when ``LITELLM_OFFLINE_MODE=true``: it then counts with
# tiktoken). We read the shipped files of the installed litellm, and a Hub tokenizer only from the
# local Hugging Face cache; whatever we cannot read, litellm counts.

#: The files litellm ships, under ``litellm/litellm_core_utils/tokenizers``.
_BUNDLED_TOKENIZERS: Final = {
    "anthropic": "anthropic_tokenizer.json",
    "deepseek": "deepseek_tokenizer.json",
}
#: The Hub repositories litellm loads the other tokenizers from (revision "main").
_HUB_TOKENIZERS: Final = {
    "cohere": "Xenova/c4ai-command-r-v01-tokenizer",
    "llama2": "hf-internal-testing/llama-tokenizer",
    "llama3": "Xenova/llama-3-tokenizer",
}

#: litellm 1.110.2's chat templates that price tools their own way
#: (``chat_template_tools._TOOL_SECTIONS``): DeepSeek V4, chat, reasoner and flash (a Hugging Face
#: tokenizer), Qwen 3.5 and Grok 4.1 and 4.3 (tiktoken encodings).
_CHAT_TEMPLATE_TOOLS_MODEL: Final = re.compile(
    r"deepseek-v4(?:[-._]|p)1(?!\d)|deepseek-v4(?![.\d]|p\d)"
    r"|^(?:deepseek/)?deepseek-(?:chat|reasoner|flash)(?::free)?$"
    r"|qwen3[._]?5(?!\d)|grok-4[-.][13](?![.\d])",
    re.IGNORECASE,
)


def huggingface_kind(model: str) -> Optional[str]:
    """The Hugging Face tokenizer LiteLLM counts ``model`` with (``"anthropic"``, ``"deepseek"``,
    ``"llama2"``, ``"llama3"``, ``"cohere"``), or None (a tiktoken encoding)."""
    _check_model(model)
    rules = _current_rules()
    return None if rules.hf_disabled() else _hf_kind(model)


@lru_cache(maxsize=_CACHE_SIZE)
def _hf_kind(model: str) -> Optional[str]:
    kind = _rules.hf_kind(model)
    return kind if isinstance(kind, str) else None


def prices_tools_by_chat_template(model: str) -> bool:
    """Whether LiteLLM prices ``model``'s tools with its chat template (DeepSeek V4, chat,
    reasoner, Qwen 3.5, Grok 4.1 and 4.3...), not with the rules ``count_message_tokens``
    follows."""
    section = getattr(
        sys.modules.get("litellm.litellm_core_utils.prompt_templates.chat_template_tools"),
        "chat_template_tool_section",
        None,
    )
    if section is not None:
        return section(model) is not None
    return _CHAT_TEMPLATE_TOOLS_MODEL.search(model) is not None


def _litellm_directory() -> Optional[str]:
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    return locations[0] if locations else None


def _hub_cache() -> str:
    """The Hugging Face Hub cache directory, as ``huggingface_hub`` finds it
    (``huggingface_hub.constants.HF_HUB_CACHE``)."""
    env = os.environ
    values = tuple(env.get(name) for name in _HUB_CACHE_VARIABLES)
    if any(value is not None and "$" in value for value in values):
        # ``$NAME`` is expanded by any variable it names: not remembered.
        return _hub_cache_of.__wrapped__(*values)
    return _hub_cache_of(*values)


_HUB_CACHE_VARIABLES: Final = (
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_HOME",
    "XDG_CACHE_HOME",
    "HOME",
    "USERPROFILE",
)


@lru_cache(maxsize=16)
def _hub_cache_of(
    hub_cache: Optional[str],
    old_hub_cache: Optional[str],
    hf_home: Optional[str],
    xdg_cache: Optional[str],
    home: Optional[str],
    user_profile: Optional[str],
) -> str:
    # Remembered by the variables it depends on (``~`` is HOME, USERPROFILE on Windows, or the
    # password database without them): ``expanduser`` took most of the ~5 us that every count
    # for a Claude model paid here. As ``huggingface_hub`` reads them (``os.getenv`` with a
    # default): a variable set to "" counts, as a relative path.
    def expand(path: str) -> str:
        return os.path.expandvars(os.path.expanduser(path))

    if hub_cache is None:
        hub_cache = old_hub_cache
    if hub_cache is None:
        if hf_home is None:
            if xdg_cache is None:
                xdg_cache = os.path.join(os.path.expanduser("~"), ".cache")
            hf_home = os.path.join(xdg_cache, "huggingface")
        hub_cache = os.path.join(expand(hf_home), "hub")
    return expand(hub_cache)


def _cached_hub_file(repository: str, hub_cache: str) -> Optional[str]:
    """``tokenizer.json`` of ``repository`` at revision "main" in the Hub cache ``hub_cache``."""
    import os

    folder = os.path.join(hub_cache, "models--" + repository.replace("/", "--"))
    try:
        with open(os.path.join(folder, "refs", "main"), encoding="utf-8") as handle:
            commit = handle.read().strip()
    except OSError:
        return None
    path = os.path.join(folder, "snapshots", commit, "tokenizer.json")
    return path if commit and os.path.isfile(path) else None


def huggingface_tokenizer_file(kind: str) -> Optional[str]:
    """The ``tokenizer.json`` LiteLLM would load for ``kind``, when it is on this machine: the
    file the installed litellm ships, or a Hub tokenizer in the local cache. None otherwise (and
    for a Hub tokenizer in LiteLLM's offline mode, where LiteLLM counts with tiktoken instead).
    Looked up once per kind and environment (``refresh()`` looks again)."""
    import os

    if kind in _BUNDLED_TOKENIZERS:  # neither the Hub cache nor offline mode matter
        return _tokenizer_file(kind, False, "")
    offline = os.environ.get("LITELLM_OFFLINE_MODE", "").strip().lower() == "true"
    return _tokenizer_file(kind, offline, _hub_cache())


@lru_cache(maxsize=64)
def _tokenizer_file(kind: str, offline: bool, hub_cache: str) -> Optional[str]:
    # LiteLLM's Python path needs the `tokenizers` package; without it LiteLLM falls back to
    # tiktoken, and so must we (by handing the call back).
    if importlib.util.find_spec("tokenizers") is None:
        return None
    bundled = _BUNDLED_TOKENIZERS.get(kind)
    if bundled is not None:
        directory = _litellm_directory()
        if directory is None:
            return None
        path = os.path.join(directory, "litellm_core_utils", "tokenizers", bundled)
        return path if os.path.isfile(path) else None
    repository = _HUB_TOKENIZERS.get(kind)
    if repository is None:
        return None
    if offline:
        return None
    return _cached_hub_file(repository, hub_cache)
