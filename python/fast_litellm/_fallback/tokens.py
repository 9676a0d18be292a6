"""The fallback tokenizer: Python ``tiktoken`` over the vocabularies shipped in this package.

``tiktoken`` is imported on first use, never at package import, and its downloader is never
involved: the encodings are built from local files.
"""

from __future__ import annotations

import base64
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from .. import _fork
from .._vocab import vocabulary_path
from ..errors import TokenizerUnavailableError

# The pre-tokenization patterns of OpenAI's encodings (as published in tiktoken_ext.openai_public).
_R50K_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

_SPECS: Dict[str, Dict[str, Any]] = {
    "r50k_base": {"pat_str": _R50K_PATTERN, "special_tokens": {"<|endoftext|>": 50256}},
    "p50k_base": {"pat_str": _R50K_PATTERN, "special_tokens": {"<|endoftext|>": 50256}},
    "cl100k_base": {
        "pat_str": _CL100K_PATTERN,
        "special_tokens": {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    },
    "o200k_base": {
        "pat_str": _O200K_PATTERN,
        "special_tokens": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    },
}
# gpt-oss: o200k_base's ranks and pattern; its special tokens as tiktoken defines them (the
# reserved range also names 200018, which <|endofprompt|> keeps too).
_SPECS["o200k_harmony"] = {
    "pat_str": _O200K_PATTERN,
    "special_tokens": {
        **_SPECS["o200k_base"]["special_tokens"],
        "<|startoftext|>": 199998,
        "<|endoftext|>": 199999,
        "<|reserved_200000|>": 200000,
        "<|reserved_200001|>": 200001,
        "<|return|>": 200002,
        "<|constrain|>": 200003,
        "<|reserved_200004|>": 200004,
        "<|channel|>": 200005,
        "<|start|>": 200006,
        "<|end|>": 200007,
        "<|message|>": 200008,
        "<|reserved_200009|>": 200009,
        "<|reserved_200010|>": 200010,
        "<|reserved_200011|>": 200011,
        "<|call|>": 200012,
        **{f"<|reserved_{i}|>": i for i in range(200013, 201088)},
    },
}

_cache: Dict[str, Any] = {}
_lock = _fork.Lock()


def _read_ranks(name: str) -> Dict[bytes, int]:
    ranks: Dict[bytes, int] = {}
    with open(vocabulary_path(name), "rb") as handle:
        for line in handle:
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    return ranks


def get_encoding(name: str) -> Any:
    """A ``tiktoken.Encoding`` for ``name``, built once from the shipped vocabulary."""
    encoding = _cache.get(name)
    if encoding is not None:
        return encoding
    vocabulary_path(name)  # validates the name before anything is imported
    try:
        import tiktoken
    except ImportError:
        raise TokenizerUnavailableError(
            "the fallback tokenizer needs the 'tiktoken' package: "
            "pip install tiktoken (or install the native extension)"
        ) from None
    with _lock:
        encoding = _cache.get(name)
        if encoding is None:
            encoding = tiktoken.Encoding(
                name=name, mergeable_ranks=_read_ranks(name), **_SPECS[name]
            )
            _cache[name] = encoding
    return encoding


def _check_text(text: object, function: str, argument: str) -> None:
    if not isinstance(text, str):
        raise TypeError(
            f"{function}() argument '{argument}' must be str, not {type(text).__name__}"
        )


def batch_texts(texts: Iterable[str]) -> List[str]:
    """The items of ``texts`` as a list, checked to be ``str`` (a single ``str`` is refused: it
    would otherwise be taken for a sequence of one-character texts)."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            "count_tokens_batch() argument 'texts' must be a list of str, not a single "
            f"{type(texts).__name__}"
        )
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(
            "count_tokens_batch() argument 'texts' must be an iterable of str, not "
            f"{type(texts).__name__}"
        ) from None
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(
                "count_tokens_batch() argument 'texts' must hold only str; "
                f"item {index} is {type(item).__name__}"
            )
    return items


class Encoding:
    """The fallback twin of ``fast_litellm._native.Encoding``."""

    __slots__ = ("name", "_tiktoken")

    def __init__(self, name: str) -> None:
        self.name = name
        self._tiktoken = get_encoding(name)

    def count(self, text: str) -> int:
        _check_text(text, "count_tokens", "text")
        # encode_ordinary == encode(text, disallowed_special=()): special-token text is ordinary.
        return len(self._tiktoken.encode_ordinary(text))

    def count_batch(self, texts: Iterable[str]) -> List[int]:
        encode = self._tiktoken.encode_ordinary
        return [len(encode(text)) for text in batch_texts(texts)]

    def encode(self, text: str) -> List[int]:
        _check_text(text, "encode", "text")
        return list(self._tiktoken.encode_ordinary(text))

    def count_messages(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Optional[Sequence[Mapping[str, Any]]] = None,
        tool_choice: Any = None,
        *,
        legacy_accounting: bool = False,
    ) -> int:
        """``litellm.token_counter`` semantics, with the native ``count_messages`` signature."""
        from . import messages as _messages  # loaded only when messages are counted here

        return _messages.count_message_tokens(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            count_text=self.count,
            legacy_accounting=legacy_accounting,
        )

    def __repr__(self) -> str:
        return f"<fallback Encoding {self.name}>"


_hf_cache: Dict[str, Any] = {}


def _hf_tokenizer(path: str) -> Any:
    tokenizer = _hf_cache.get(path)
    if tokenizer is not None:
        return tokenizer
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise TokenizerUnavailableError(
            "the fallback Hugging Face tokenizer needs the 'tokenizers' package: "
            "pip install tokenizers (or install the native extension)"
        ) from None
    with _lock:
        tokenizer = _hf_cache.get(path)
        if tokenizer is None:
            try:
                tokenizer = Tokenizer.from_file(path)
            except Exception as exc:  # tokenizers raises its own Exception for bad files
                raise TokenizerUnavailableError(f"cannot load the tokenizer {path}: {exc}") from exc
            _hf_cache[path] = tokenizer
    return tokenizer


class HfTokenizer:
    """The fallback twin of ``fast_litellm._native.HfTokenizer``: Python ``tokenizers``, counted
    as LiteLLM counts it (``len(tokenizer.encode_batch_fast([text])[0])``)."""

    __slots__ = ("source", "_tokenizer")

    def __init__(self, path: str) -> None:
        self.source = path
        self._tokenizer = _hf_tokenizer(path)

    def count(self, text: str) -> int:
        _check_text(text, "count_tokens", "text")
        return len(self._tokenizer.encode_batch_fast([text])[0])

    def count_batch(self, texts: Iterable[str]) -> List[int]:
        items = batch_texts(texts)
        return [len(e) for e in self._tokenizer.encode_batch_fast(items)] if items else []

    def encode(self, text: str) -> List[int]:
        _check_text(text, "encode", "text")
        return list(self._tokenizer.encode(text).ids)

    def count_messages(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Optional[Sequence[Mapping[str, Any]]] = None,
        tool_choice: Any = None,
        *,
        legacy_accounting: bool = False,
    ) -> int:
        """``litellm.token_counter`` semantics; LiteLLM does not cut the text into chunks for a
        Hugging Face tokenizer."""
        from . import messages as _messages

        return _messages.count_message_tokens(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            count_text=self.count,
            legacy_accounting=legacy_accounting,
            chunk_chars=None,
        )

    def __repr__(self) -> str:
        return f"<fallback HfTokenizer {self.source}>"
