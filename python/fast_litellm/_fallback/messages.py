"""Chat-message token counting, exactly as ``litellm.token_counter(model=..., messages=..., tools=...,
tool_choice=...)`` does it for tiktoken-counted models (litellm 1.110,
``litellm/litellm_core_utils/token_counter.py``), in pure Python over a caller-supplied text counter.

The algorithm
=============

Text counter. LiteLLM never counts a whole string in one go. Its per-string counter is

    count(text) = sum(exact(text[i:i + C]) for i in range(0, len(text), C))      if len(text) <= M

with ``C = TIKTOKEN_ENCODE_CHUNK_SIZE_CHARS`` (default 1024, env range [1, 4096]) and
``M = TOKEN_COUNTER_MAX_EXACT_CHARS`` (default 4_000_000, env range [1, 10**9]); lengths and slices
are in code points, and ``exact(s) = len(encoding.encode(s, disallowed_special=()))``. Because the
chunks are encoded separately the result can differ from ``exact(text)`` for texts longer than C
(a word cut at a chunk boundary becomes two pieces), so chunking is part of the contract. Texts
longer than M are extrapolated: 16 samples of ``M // 16`` code points, the i-th starting at
``(len(text) - M // 16) * i // 15``, each counted with the chunked counter, and
``round(sum(sample_counts) * len(text) / (16 * (M // 16)))`` (float division, round half to even).
Out-of-range or non-integer env values fall back to the defaults. ``litellm.token_counter(text=...)``
uses the same counter, so plain-text counting must chunk the same way.

Messages (``tokens_per_message = 3``, ``tokens_per_name = 1``; ``4`` and ``-1`` for models whose
normalised name is ``gpt-3.5-turbo-0301``, see ``fast_litellm._models``):

* each message must be a dict (or a pydantic model, taken as ``model_dump(exclude_none=True)``);
  an empty message list counts 0 here but the reply priming below is still added, so ``[]`` is 3.
* per message: ``tokens_per_message``, then for *every* key/value pair (order irrelevant):
  - ``None`` values are skipped;
  - ``tool_calls``: must be a list; for each call ``"function"`` must be a key, and
    ``count(str(call["function"].get("arguments", "")))`` is added. Only the arguments count (not the
    name, id or type); a non-string ``arguments`` counts as its Python ``str()`` (a dict counts as its
    repr, ``None`` as the text "None");
  - ``function_call``: must be a mapping; ``count(str(value.get("arguments", "")))``;
  - any other string value is counted, whatever the key: ``role`` and ``tool_call_id`` count as
    text, and so do unknown keys; for the key ``name`` ``tokens_per_name`` is added as well;
  - ``content`` given as a list: the content parts below;
  - ``provider_specific_fields`` given as a mapping: the non-empty string ``content`` of each
    ``{"type": "compaction"}`` mapping in its list ``compaction_blocks``;
  - ``search_results`` given as a list: the concatenation of each dict result's string ``source``,
    ``title``, its ``content`` blocks' string ``text``, and ``json.dumps(citations,
    separators=(",", ":"))`` when ``citations`` is not None, counted as one string;
  - every other value (numbers, dicts, tuples, lists under other keys) is ignored.
* content parts (a ``str`` item is counted as text; otherwise by ``item["type"]``):
  - ``text``, ``thinking``/``redacted_thinking``, ``compaction``: ``str(item.get(field) or "")``
    of the field ``text``, ``thinking``, ``content``, counted when not empty (``"text": None``
    counts nothing);
  - ``image_url``: a dict with ``url`` and ``detail`` (``low``/``high``/``auto``, default ``auto``;
    anything else is ``ValueError("... Invalid detail value: ...")``), or a URL string (auto).
    ``low`` is 85 tokens; ``auto`` prices an inline ``data:image/...;base64,`` PNG/GIF/JPEG/WebP
    by its tiles and anything else at 85; ``high`` prices every image by its tiles, and needs the
    network for http(s) URLs (``UnsupportedContentError`` here). Tiles: the size read from the
    header is scaled so the short side is 768 (long side capped at 2000) when either side exceeds
    768, then ``85 + 170 * tiles`` with 512x512 tiles (see the image section below);
  - ``image`` (Anthropic): its source (a base64 source as a ``data:`` URL) priced in auto mode;
  - ``document``: truthy ``title``/``context`` counted; ``source.type`` "text" counts
    ``source["data"]``, "content" counts a string or a nested part list; any other source is priced
    as an image in auto mode unless it is a ``data:application/pdf;base64,`` document, which
    LiteLLM parses with pypdf when installed (``UnsupportedContentError`` here);
  - ``file``: its string ``filename``, plus non-empty string ``file_data`` priced as an image in
    auto mode (PDF data URLs: ``UnsupportedContentError``);
  - ``tool_use``: the string/list/dict fields ``name``, ``input``, ``caller`` (a dict counts as its
    Python ``str()``); ``tool_result``: its ``content`` the same way; ``search_result``: its
    ``source``, ``title``, ``content``; Anthropic server-tool blocks (``server_tool_use``,
    ``web_search_tool_result``...): the fields litellm lists for each, a dict ``content`` being a
    block of its own;
  - ``tool_reference``: ``count(str(item.get("tool_name") or ""))``;
  - content lists nested more than 200 levels deep are a ValueError (LiteLLM's own recursion
    fails, as a ValueError, at about 490);
  - anything else is a ValueError.
* then the request overhead: ``3`` (reply priming), and when ``tools`` is truthy
  ``count(format_function_definitions(tools)) + 9``, minus ``4`` if any message has
  ``role == "system"``; ``tool_choice`` "none" or ``{"type": "none"}`` adds 1, a mapping naming a
  function by a str (``{"function": {"name": ...}}``, else ``{"name": ...}``) adds
  ``7 + count(name)`` (LiteLLM's comment says 4; the code adds 7), anything else adds nothing.
* ``format_function_definitions`` renders tools as a TypeScript-like namespace (see the function
  below; it is LiteLLM's renderer). Tools that are not mappings are skipped; a tool may be
  OpenAI-style (``{"function": {...}}``), Gemini-style (``function_declarations``) or
  Anthropic-style (``name``/``description``/``input_schema``). A schema nested deeper than LiteLLM
  can render raises ``RecursionError``, as in LiteLLM.

Where LiteLLM itself crashes on malformed input (AttributeError, KeyError, TypeError deep inside)
this module raises ``TypeError``/``ValueError`` naming the offending message index and field instead.
Where LiteLLM would need the network or an optional package (high-detail http(s) images, PDF
documents) it raises ``UnsupportedContentError`` rather than guess.

Not covered here: ``litellm.disable_token_counter`` (LiteLLM then returns 0), ``custom_tokenizer``,
``default_token_count`` and ``use_default_image_token_count`` (only their default behaviour).
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Optional

from fast_litellm import _models
from fast_litellm.errors import UnsupportedContentError

__all__ = [
    "BASE_IMAGE_TOKENS",
    "UnsupportedContentError",
    "count_message_tokens",
    "count_text_like_litellm",
    "format_function_definitions",
    "auto_detail_image_tokens",
    "high_detail_image_tokens",
    "litellm_text_counter",
    "search_results_text",
]


# ---- text counter -------------------------------------------------------------------------------


#: litellm.constants.TIKTOKEN_ENCODE_CHUNK_SIZE_CHARS and TOKEN_COUNTER_MAX_EXACT_CHARS (read
#: once, as litellm does at import; the native counter is given the same values).
CHUNK_CHARS: Final = _models.CHUNK_CHARS
MAX_EXACT_CHARS: Final = _models.MAX_EXACT_CHARS
EXTRAPOLATION_SAMPLES: Final = 16
BASE_IMAGE_TOKENS: Final = 85

TextCounter = Callable[[str], int]


def count_text_like_litellm(
    text: str,
    count_exact: TextCounter,
    *,
    chunk_chars: int = CHUNK_CHARS,
    max_exact_chars: int = MAX_EXACT_CHARS,
) -> int:
    """LiteLLM's per-string count: chunked exact counts, extrapolated beyond ``max_exact_chars``."""

    def chunked(s: str) -> int:
        if len(s) <= chunk_chars:
            return count_exact(s) if s else 0
        return sum(count_exact(s[i : i + chunk_chars]) for i in range(0, len(s), chunk_chars))

    if len(text) <= max_exact_chars:
        return chunked(text)
    sample_count = min(EXTRAPOLATION_SAMPLES, max_exact_chars)
    sample_chars = max_exact_chars // sample_count
    last_start = len(text) - sample_chars
    samples = [
        text[start : start + sample_chars]
        for start in (last_start * i // max(sample_count - 1, 1) for i in range(sample_count))
    ]
    sampled = sum(len(s) for s in samples)
    return round(sum(chunked(s) for s in samples) * len(text) / sampled)


def litellm_text_counter(
    count_exact: TextCounter, chunk_chars: Optional[int] = CHUNK_CHARS
) -> TextCounter:
    """Wrap an exact counter into LiteLLM's chunking/extrapolating counter (``chunk_chars=None``:
    no chunks, as LiteLLM counts with a Hugging Face tokenizer)."""
    if chunk_chars is None:
        return lambda text: count_text_like_litellm(text, count_exact, chunk_chars=sys.maxsize)
    return lambda text: count_text_like_litellm(text, count_exact, chunk_chars=chunk_chars)


# ---- images -------------------------------------------------------------------------------------
#
# LiteLLM prices an image at detail "low" as 85 tokens; at "auto" (the default, and every image
# without a detail: string URLs, Anthropic image blocks, non-PDF documents and files) by its tiles
# when it is an inline data:image/...;base64 PNG, GIF, JPEG or WebP whose header it can read, else
# 85; at "high" always by its tiles (it downloads http(s) URLs: UnsupportedContentError here; an
# image it cannot identify is 300x300). The header readers are LiteLLM's: they read a few fixed
# offsets, not the true size (a lossy WebP's scaling bits are masked off, a WebP with an unknown
# first chunk is 300x300, JPEG segments are walked skipping 0xFF fill bytes).

_MAX_SHORT_SIDE: Final = 768
_MAX_LONG_SIDE: Final = 2000
_TILE: Final = 512
_DEFAULT_IMAGE_SIDE: Final = 300
_PDF_PREFIX: Final = "data:application/pdf;base64,"
#: litellm's MAX_IMAGE_URL_DOWNLOAD_SIZE_MB (50): larger inline images are 85 tokens in auto mode.
_MAX_INLINE_IMAGE_BYTES: Final = 50 * 1024 * 1024
_MAX_INLINE_IMAGE_BASE64: Final = 4 * ((_MAX_INLINE_IMAGE_BYTES + 2) // 3)
_MAX_DATA_URL_HEADER_CHARS: Final = 128
_READ_FORMATS: Final = ("png", "gif", "jpeg", "webp")


class _TruncatedHeader(ValueError):
    pass


def _field(data: bytes, at: int, size: int, byteorder: str) -> int:
    if at + size > len(data):
        raise _TruncatedHeader("image header is truncated")
    return int.from_bytes(data[at : at + size], byteorder)  # type: ignore[arg-type]


def _be16(data: bytes, at: int) -> int:
    return _field(data, at, 2, "big")


def _le(data: bytes, at: int, size: int) -> int:
    return _field(data, at, size, "little")


def _image_format(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"GIF8") and data[5:6] == b"a":
        return "gif"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[4:8] == b"ftyp":
        return "heic"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp"
    return None


def _jpeg_dimensions(data: bytes) -> tuple[int, int]:
    """From offset 2: a marker (0xFF bytes skipped, none required) and its 16-bit length, then the
    segment is skipped, until a start-of-frame marker (C0-CF except C4, C8, CC), whose payload
    holds a precision byte, the height and the width. Every step moves forward."""
    at = 2
    while True:
        if at >= len(data):
            raise _TruncatedHeader("JPEG data ends before a frame header")
        marker = data[at]
        at += 1
        while marker == 0xFF:
            if at >= len(data):
                raise _TruncatedHeader("JPEG data ends before a frame header")
            marker = data[at]
            at += 1
        length = _be16(data, at)
        at += 2
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return _be16(data, at + 3), _be16(data, at + 1)
        at += length - 2


def _image_dimensions(data: bytes) -> tuple[int, int]:
    """Width and height as LiteLLM reads them; HEIC, unknown data and a WebP with an unknown
    first chunk are 300x300; a truncated header raises ``_TruncatedHeader``."""
    kind = _image_format(data)
    if kind == "png":
        return _field(data, 16, 4, "big"), _field(data, 20, 4, "big")
    if kind == "gif":
        return _le(data, 6, 2), _le(data, 8, 2)
    if kind == "jpeg":
        return _jpeg_dimensions(data)
    if kind == "webp":
        chunk = data[12:16]
        if chunk == b"VP8X":  # extended: 24-bit sizes minus one
            return _le(data, 24, 3) + 1, _le(data, 27, 3) + 1
        if chunk == b"VP8 ":  # lossy: 14-bit sizes (the top two bits scale)
            return _le(data, 26, 2) & 0x3FFF, _le(data, 28, 2) & 0x3FFF
        if chunk == b"VP8L":  # lossless: two 14-bit fields, minus one, after the signature byte
            bits = _le(data, 21, 4)
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return _DEFAULT_IMAGE_SIDE, _DEFAULT_IMAGE_SIDE


def _high_detail_tokens_for_size(width: int, height: int) -> int:
    if not (width <= _MAX_SHORT_SIDE and height <= _MAX_SHORT_SIDE):
        longer, shorter = max(width, height), min(width, height)
        if shorter == 0:
            raise ValueError(f"cannot price a {width}x{height} image: division by zero")
        aspect = longer / shorter
        if width <= height:
            w = _MAX_SHORT_SIDE
            h = int(w * aspect)
            if h > _MAX_LONG_SIDE:
                h = _MAX_LONG_SIDE
                w = int(h / aspect)
        else:
            h = _MAX_SHORT_SIDE
            w = int(h * aspect)
            if w > _MAX_LONG_SIDE:
                w = _MAX_LONG_SIDE
                h = int(w / aspect)
        width, height = w, h
    tiles = ((width + _TILE - 1) // _TILE) * ((height + _TILE - 1) // _TILE)
    return BASE_IMAGE_TOKENS + 2 * BASE_IMAGE_TOKENS * tiles


def _auto_detail_size(url: str) -> tuple[int, int] | None:
    if not url.startswith("data:image/"):
        return None
    if len(url) > _MAX_INLINE_IMAGE_BASE64 + _MAX_DATA_URL_HEADER_CHARS:
        return None
    header, separator, encoded = url.partition(",")
    if (
        not separator
        or len(header) > _MAX_DATA_URL_HEADER_CHARS
        or not header.endswith(";base64")
        or len(encoded) > _MAX_INLINE_IMAGE_BASE64
    ):
        return None
    try:
        data = base64.b64decode(encoded, validate=True)
        if len(data) > _MAX_INLINE_IMAGE_BYTES or _image_format(data) not in _READ_FORMATS:
            return None
        width, height = _image_dimensions(data)
    except ValueError:  # binascii.Error, non-ASCII text, a truncated header
        return None
    return (width, height) if width > 0 and height > 0 else None


def auto_detail_image_tokens(url: str) -> int:
    """Tokens LiteLLM charges for an image priced in auto mode (see the notes above)."""
    size = _auto_detail_size(url)
    return BASE_IMAGE_TOKENS if size is None else _high_detail_tokens_for_size(*size)


def high_detail_image_tokens(url: str) -> int:
    """Tokens LiteLLM charges for an image with ``detail="high"``.

    Raises ``UnsupportedContentError`` for http(s) URLs (LiteLLM downloads them) and ``ValueError``
    where LiteLLM fails (no comma, bad base64, truncated header).
    """
    if url.startswith(("http://", "https://")):
        raise UnsupportedContentError(
            "litellm downloads high-detail images given by http(s) URL to measure them; "
            "pass detail='low'/'auto', a data: URL, or count with litellm"
        )
    _header, separator, encoded = url.partition(",")
    try:
        if not separator:
            raise ValueError("the URL has no ',' before the base64 data")
        width, height = _image_dimensions(base64.b64decode(encoded))
        return _high_detail_tokens_for_size(width, height)
    except ValueError as e:  # binascii.Error, non-ASCII text, a truncated header
        raise ValueError(f"cannot read the image size from the data URL: {e}") from None


# ---- tool definitions ---------------------------------------------------------------------------
#
# LiteLLM prices tool definitions by rendering them as the TypeScript-like namespace OpenAI is
# understood to show the model, then counting that text. The exact text matters, so the layout
# below reproduces LiteLLM's output character for character (the reference tests compare the
# counts on generated schemas):
#
#     namespace functions {
#     <blank>
#     // <description>                      (only when the function has one)
#     type <name> = (_: {                    (or "type <name> = () => any;" without properties)
#     <member lines>
#     }) => any;
#     <blank>
#     } // namespace functions
#
# A member line is "<key>?: <type>," ("?" dropped for keys in a list "required"), preceded by
# "// <description>" when the property is a mapping with a truthy one; the lines of an object
# nested n levels deep start with 2n spaces (only the first row of a multi-line member). Types:
# string or number (integer too), a union of quoted values for a list "enum" on those, boolean,
# null, <type>[] for arrays ("any[]" without items), a braced block of member lines for objects,
# and "any" for everything else, a schema that is not a mapping included. Tools that are not
# mappings, and functions without a truthy name, contribute nothing. A tool is an OpenAI
# "function", a Gemini "function_declarations" list, or an Anthropic-style tool whose
# "input_schema" (else "parameters") is merged with the tool's keys litellm does not map.
#
# Nesting: LiteLLM's renderer makes two nested calls per object level and one per array level, and
# fails with RecursionError under Python's default limit at about 490 object levels; beyond
# _MAX_SCHEMA_NESTING calls both paths raise RecursionError (the native one must not exhaust its
# stack).

_MAX_SCHEMA_NESTING: Final = 900
_ANTHROPIC_MAPPED_TOOL_KEYS: Final = frozenset(
    (
        "name",
        "input_schema",
        "description",
        "cache_control",
        "strict",
        "type",
        "eager_input_streaming",
        "custom",
    )
)


def _too_deep(what: str, limit: int) -> RecursionError:
    return RecursionError(
        f"maximum recursion depth exceeded: {what} nested more than {limit} levels deep"
    )


def format_function_definitions(tools: Any) -> str:
    """The text LiteLLM counts for ``tools`` (see the layout above)."""
    out = ["namespace functions {", ""]
    for function in _function_definitions(tools):
        out += _signature_lines(function)
    out.append("} // namespace functions")
    return "\n".join(out)


def _function_definitions(tools: Any) -> Iterator[Mapping[str, Any]]:
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        function = tool.get("function")
        if isinstance(function, Mapping):
            yield function
            continue
        declarations = tool.get("function_declarations") or tool.get("functionDeclarations")
        if isinstance(declarations, list):
            yield from (entry for entry in declarations if isinstance(entry, Mapping))
            continue
        input_schema = tool.get("input_schema")
        parameters = input_schema or tool.get("parameters") or {}
        merged = dict(parameters) if isinstance(parameters, Mapping) else {}
        if input_schema is not None:
            merged.update(
                (key, value)
                for key, value in tool.items()
                if key not in _ANTHROPIC_MAPPED_TOOL_KEYS
            )
        yield {
            "name": tool.get("name"),
            "description": tool.get("description"),
            "parameters": merged,
        }


def _signature_lines(function: Mapping[str, Any]) -> list[str]:
    name = function.get("name")
    if not name:
        return []
    description = function.get("description")
    comment = [f"// {description}"] if description else []
    parameters = function.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        parameters = {}
    members = parameters.get("properties")
    if not (isinstance(members, Mapping) and members):
        return [*comment, f"type {name} = () => any;", ""]
    body = _member_lines(parameters, 0, 1)
    return [*comment, f"type {name} = (_: {{", body, "}) => any;", ""]


def _member_lines(schema: Mapping[str, Any], indent: int, calls: int) -> str:
    if calls > _MAX_SCHEMA_NESTING:
        raise _too_deep("a tool schema", _MAX_SCHEMA_NESTING)
    members = schema.get("properties")
    if not isinstance(members, Mapping) or not members:
        return ""
    required = schema.get("required")
    required_keys = tuple(required) if isinstance(required, list) else ()
    lines = []
    for key, member in members.items():
        description = member.get("description") if isinstance(member, Mapping) else None
        if description:
            lines.append(f"// {description}")
        marker = "" if required_keys and key in required_keys else "?"
        lines.append(f"{key}{marker}: {_type_text(member, indent, calls + 1)},")
    pad = " " * max(0, indent)
    return "\n".join(pad + line for line in lines)


def _type_text(schema: Any, indent: int, calls: int) -> str:
    if calls > _MAX_SCHEMA_NESTING:
        raise _too_deep("a tool schema", _MAX_SCHEMA_NESTING)
    if not isinstance(schema, Mapping):
        return "any"
    kind = schema.get("type")
    values = schema.get("enum")
    if kind in ("string", "integer", "number"):
        if isinstance(values, list):
            return " | ".join(f'"{value}"' for value in values)
        return "string" if kind == "string" else "number"
    if kind == "array":
        return _type_text(schema.get("items"), indent, calls + 1) + "[]"
    if kind == "object":
        return "{\n" + _member_lines(schema, indent + 2, calls + 1) + "\n}"
    if kind == "boolean":
        return "boolean"
    if kind == "null":
        return "null"
    return "any"


# ---- messages -----------------------------------------------------------------------------------


def search_results_text(search_results: list[Any]) -> str:
    """The text LiteLLM counts for a tool message's ``search_results`` list."""
    texts = ""
    for result in search_results:
        if not isinstance(result, dict):
            continue
        for key in ("source", "title"):
            value = result.get(key)
            if isinstance(value, str):
                texts += value
        content = result.get("content")
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict):
                    text = block.get("text")
                    if isinstance(text, str):
                        texts += text
        citations = result.get("citations")
        if citations is not None:
            texts += json.dumps(citations, separators=(",", ":"))
    return texts


def _as_message_dict(message: Any, index: int) -> Mapping[str, Any]:
    """A message as LiteLLM takes it: a dict, or a pydantic model as its ``model_dump``. Other
    mappings (``MappingProxyType``, ``UserDict``) and objects that merely have a ``model_dump``
    are refused, as LiteLLM refuses them (a ``TypeError``)."""
    if isinstance(message, dict):
        return message
    # A pydantic model's class imported pydantic: without it loaded, nothing is one.
    pydantic = sys.modules.get("pydantic")
    base_model = getattr(pydantic, "BaseModel", None)
    if isinstance(base_model, type) and isinstance(message, base_model):
        dumped = message.model_dump(exclude_none=True)  # type: ignore[attr-defined]
        if isinstance(dumped, dict):
            return dumped
    raise TypeError(
        f"messages[{index}] must be a dict or a pydantic model, not {type(message).__name__}"
    )


#: Deepest nesting of content lists read, on both paths. LiteLLM recurses two frames per level and
#: fails, as a ValueError, at about 490 levels; this counter spends three, so the bound sits well
#: below, where both paths fail alike.
_MAX_CONTENT_NESTING: Final = 200
#: The field counted as text for each text-like block type.
_TEXT_FIELD_BY_BLOCK_TYPE: Final = {
    "text": "text",
    "thinking": "thinking",
    "redacted_thinking": "thinking",
    "compaction": "content",
}


#: The fields litellm counts in Anthropic client-tool blocks. litellm up to 1.106 rejected a
#: tool_result without ``tool_use_id``; later versions count its content like any other.
_CLIENT_TOOL_FIELDS: Final = {
    "tool_use": ("name", "input", "caller"),
    "tool_result": ("content",),
    "search_result": ("source", "title", "content"),
}
#: Anthropic server-tool blocks and the fields litellm counts in each; their dict ``content`` is a
#: block of its own, nested at most _MAX_TOOL_CONTENT_DEPTH deep (litellm's DEFAULT_MAX_RECURSE_DEPTH).
_SERVER_TOOL_FIELDS: Final = {
    "server_tool_use": ("name", "input"),
    "mcp_tool_use": ("name", "input"),
    "web_search_tool_result": ("content",),
    "web_fetch_tool_result": ("content",),
    "code_execution_tool_result": ("content",),
    "bash_code_execution_tool_result": ("content",),
    "text_editor_code_execution_tool_result": ("content",),
    "mcp_tool_result": ("content",),
    "web_search_result": ("url", "title", "snippet"),
    "web_fetch_result": ("url", "content"),
    "code_execution_result": ("stdout", "stderr", "content"),
    "bash_code_execution_result": ("stdout", "stderr", "content"),
    "text_editor_code_execution_view_result": ("content",),
    "text_editor_code_execution_str_replace_result": ("lines",),
    "text_editor_code_execution_create_result": (),
    "encrypted_code_execution_result": ("stderr", "content"),
    "code_execution_output": (),
    "bash_code_execution_output": (),
    "web_search_tool_result_error": ("error_code",),
    "web_fetch_tool_result_error": ("error_code",),
    "code_execution_tool_result_error": ("error_code",),
    "bash_code_execution_tool_result_error": ("error_code",),
    "text_editor_code_execution_tool_result_error": ("error_code", "error_message"),
}
_MAX_TOOL_CONTENT_DEPTH: Final = 100


class _Counter:
    """One counting pass. ``count`` is the LiteLLM (chunked) text counter."""

    __slots__ = ("count",)

    def __init__(self, count: TextCounter) -> None:
        self.count = count

    # -- tool calls --

    def tool_calls(self, value: Any, path: str) -> int:
        if not isinstance(value, list):
            raise ValueError(f"{path} must be a list, not {type(value).__name__}")
        total = 0
        for j, call in enumerate(value):
            call_path = f"{path}[{j}]"
            if isinstance(call, (str, bytes)) or not (
                isinstance(call, Mapping)
                or (hasattr(call, "__contains__") and hasattr(call, "__getitem__"))
            ):
                raise TypeError(
                    f"{call_path} must be an object with a 'function' key, not {type(call).__name__}"
                )
            if "function" not in call:
                raise ValueError(f"{call_path} must contain a 'function' key")
            function = call["function"]
            if not callable(getattr(function, "get", None)):
                raise TypeError(
                    f"{call_path}.function must be an object, not {type(function).__name__}"
                )
            total += self.count(str(function.get("arguments", "")))
        return total

    # -- content parts --

    def content_list(self, items: Any, path: str, nesting: int = 0) -> int:
        if nesting > _MAX_CONTENT_NESTING:
            raise ValueError(
                f"{path}: content lists nested more than {_MAX_CONTENT_NESTING} levels deep"
            )
        total = 0
        for j, part in enumerate(items):
            total += self.part(part, f"{path}[{j}]", nesting)
        return total

    def block_text(self, part: Mapping[str, Any], field: str) -> int:
        text = str(part.get(field) or "")
        return self.count(text) if text else 0

    def part(self, part: Any, path: str, nesting: int) -> int:
        count = self.count
        if isinstance(part, str):
            return count(part)
        if not isinstance(part, Mapping):
            raise ValueError(
                f"{path} must be a str or an object with a 'type' key, not {type(part).__name__}"
            )
        if "type" not in part:
            raise ValueError(f"{path} is missing the 'type' key")
        kind = part["type"]
        if kind in _TEXT_FIELD_BY_BLOCK_TYPE:
            return self.block_text(part, _TEXT_FIELD_BY_BLOCK_TYPE[kind])
        if kind == "image_url":
            return self.image_url(part.get("image_url"), f"{path}.image_url")
        if kind == "image":
            if "source" not in part:
                raise ValueError(f"{path} is missing the 'source' key")
            return auto_detail_image_tokens(self.source_data(part["source"], f"{path}.source"))
        if kind == "document":
            return self.document(part, path, nesting)
        if kind == "file":
            return self.file(part.get("file"), f"{path}.file")
        if isinstance(kind, str) and _tool_block_fields(kind) is not None:
            return self.anthropic_block(part, path, nesting, 0)
        if kind == "tool_reference":
            return self.block_text(part, "tool_name")
        raise ValueError(
            f"{path}: invalid content part type {kind!r}; expected text, image_url, image, document, file, "
            "tool_use, tool_result, search_result, thinking, redacted_thinking, compaction, "
            "tool_reference or an Anthropic server-tool block"
        )

    @staticmethod
    def image_url(image_url: Any, path: str) -> int:
        """litellm's ``_count_image_tokens``."""
        if isinstance(image_url, dict):
            detail = image_url.get("detail", "auto")
            if detail not in ["low", "high", "auto"]:
                raise ValueError(
                    f"{path}.detail: Invalid detail value: {detail}. "
                    "Expected 'low', 'high', or 'auto'."
                )
            url = image_url.get("url")
            if not url:
                raise ValueError(f"{path}: Missing required key 'url' in image_url dict.")
            if detail == "low":
                return BASE_IMAGE_TOKENS
            if not isinstance(url, str):
                raise ValueError(f"{path}.url must be a str, not {type(url).__name__}")
            if detail == "high":
                try:
                    return high_detail_image_tokens(url)
                except UnsupportedContentError as e:
                    raise UnsupportedContentError(f"{path}: {e}") from None
                except ValueError as e:
                    raise ValueError(f"{path}: {e}") from None
            return auto_detail_image_tokens(url)
        if isinstance(image_url, str):
            if not image_url.strip():
                raise ValueError(f"{path}: Empty image_url string is not valid.")
            return auto_detail_image_tokens(image_url)
        raise ValueError(
            f"{path}: Invalid image_url type: {type(image_url).__name__}. "
            "Expected str or dict with 'url' field."
        )

    @staticmethod
    def source_data(source: Any, path: str) -> str:
        """litellm's ``_anthropic_image_source_data``: a data URL, a URL, or ""."""
        if not isinstance(source, Mapping):
            raise ValueError(
                f"{path} must be an object with a 'type' key, not {type(source).__name__}"
            )
        if "type" not in source:
            raise ValueError(f"{path} is missing the 'type' key")
        kind = source["type"]
        if kind == "base64":
            data = source.get("data")
            if not data:
                return ""
            media_type = source.get("media_type") or "image/png"
            return f"data:{media_type};base64,{data}"
        if kind == "url":
            url = source.get("url") or ""
            if not isinstance(url, str):
                raise ValueError(f"{path}.url must be a str, not {type(url).__name__}")
            return url
        return ""

    @staticmethod
    def opaque_document(data_url: str, path: str) -> int:
        if data_url.startswith(_PDF_PREFIX):
            raise UnsupportedContentError(
                f"{path}: litellm prices inline PDF documents page by page with pypdf; count with litellm"
            )
        return auto_detail_image_tokens(data_url)

    def _text(self, value: Any, path: str) -> int:
        if not isinstance(value, str):
            raise ValueError(f"{path} must be a str, not {type(value).__name__}")
        return self.count(value)

    def document(self, part: Mapping[str, Any], path: str, nesting: int) -> int:
        if "source" not in part:
            raise ValueError(f"{path} is missing the 'source' key")
        source = part["source"]
        total = 0
        for key in ("title", "context"):
            value = part.get(key)
            if value:
                total += self._text(value, f"{path}.{key}")
        if not isinstance(source, Mapping):
            raise ValueError(f"{path}.source must be an object, not {type(source).__name__}")
        if "type" not in source:
            raise ValueError(f"{path}.source is missing the 'type' key")
        kind = source["type"]
        if kind == "text":
            if "data" not in source:
                raise ValueError(f"{path}.source is missing the 'data' key")
            return total + self._text(source["data"], f"{path}.source.data")
        if kind == "content":
            if "content" not in source:
                raise ValueError(f"{path}.source is missing the 'content' key")
            content = source["content"]
            if isinstance(content, str):
                return total + self.count(content)
            if not isinstance(content, (list, tuple)):
                raise ValueError(
                    f"{path}.source.content must be a str or a list, not {type(content).__name__}"
                )
            return total + self.content_list(content, f"{path}.source.content", nesting + 1)
        return total + self.opaque_document(
            self.source_data(source, f"{path}.source"), f"{path}.source"
        )

    def file(self, file: Any, path: str) -> int:
        if not isinstance(file, Mapping):
            return 0
        filename = file.get("filename")
        total = self.count(filename) if isinstance(filename, str) and filename else 0
        data = file.get("file_data")
        if not isinstance(data, str) or not data:
            return total
        return total + self.opaque_document(data, f"{path}.file_data")

    def anthropic_block(self, block: Mapping[str, Any], path: str, nesting: int, depth: int) -> int:
        """litellm's ``_count_anthropic_content``: string fields count as text, list fields as
        content lists, dict fields as their ``str()``, except the dict ``content`` of a
        server-tool block, which is a block of its own (``depth`` counts those)."""
        if depth >= _MAX_TOOL_CONTENT_DEPTH:
            raise ValueError(
                f"{path}: Anthropic tool content nesting exceeds the token counter limit"
            )
        kind = block.get("type")
        if kind == "document":
            return self.document(block, path, nesting)
        found = _tool_block_fields(kind) if isinstance(kind, str) else None
        if found is None:
            raise ValueError(f"{path}: Unknown Anthropic content type: '{kind}'")
        fields, server = found
        total = 0
        for field in fields:
            value = block.get(field)
            if isinstance(value, str):
                total += self.count(value)
            elif isinstance(value, list):
                total += self.content_list(value, f"{path}.{field}", nesting + 1)
            elif isinstance(value, dict):
                if server and field == "content":
                    total += self.anthropic_block(value, f"{path}.{field}", nesting, depth + 1)
                else:
                    total += self.count(str(value))
        return total


def _tool_block_fields(kind: str) -> tuple[tuple[str, ...], bool] | None:
    """The fields litellm counts in an Anthropic tool block, and whether it is a server-tool block."""
    if kind in _CLIENT_TOOL_FIELDS:
        return _CLIENT_TOOL_FIELDS[kind], False
    if kind in _SERVER_TOOL_FIELDS:
        return _SERVER_TOOL_FIELDS[kind], True
    return None


def _compaction_summaries(fields: Mapping[str, Any]) -> list[str]:
    """litellm's ``_compaction_summaries``: the non-empty string ``content`` of each mapping of type
    "compaction" in a list ``compaction_blocks``."""
    blocks = fields.get("compaction_blocks")
    if not isinstance(blocks, list):
        return []
    return [
        block["content"]
        for block in blocks
        if isinstance(block, Mapping)
        and block.get("type") == "compaction"
        and isinstance(block.get("content"), str)
        and block["content"]
    ]


def count_message_tokens(
    messages: Any,
    *,
    tools: Any = None,
    tool_choice: Any = None,
    count_text: TextCounter,
    model: str | None = None,
    legacy_accounting: bool = False,
    chunk_chars: Optional[int] = CHUNK_CHARS,
) -> int:
    """What ``litellm.token_counter(model, messages=messages, tools=tools, tool_choice=tool_choice)``
    returns, given ``count_text(s) == len(encoding.encode(s, disallowed_special=()))`` for the
    model's encoding (``fast_litellm._models.encoding_for_model``). LiteLLM's chunking is applied
    here; pass the exact counter. ``legacy_accounting`` selects the gpt-3.5-turbo-0301 constants;
    passing ``model`` instead decides it from the model name
    (``fast_litellm._models.uses_legacy_message_accounting``). The model does not choose the
    encoding here: ``count_text`` already embodies it.
    """
    if model is not None:
        from fast_litellm._models import uses_legacy_message_accounting

        legacy_accounting = legacy_accounting or uses_legacy_message_accounting(model)
    if not isinstance(messages, (list, tuple)):
        raise TypeError(f"messages must be a list of dicts, not {type(messages).__name__}")
    if tools is not None and not isinstance(tools, (list, tuple)):
        raise TypeError(f"tools must be a list of tool definitions, not {type(tools).__name__}")
    count = litellm_text_counter(count_text, chunk_chars)
    counter = _Counter(count)
    per_message, per_name = (4, -1) if legacy_accounting else (3, 1)

    total = 0
    has_system = False
    for i, raw in enumerate(messages):
        message = _as_message_dict(raw, i)
        total += per_message
        if message.get("role") == "system":
            has_system = True
        for key, value in message.items():
            if value is None:
                continue
            if key == "tool_calls":
                total += counter.tool_calls(value, f"messages[{i}].tool_calls")
            elif key == "function_call":
                if not isinstance(value, Mapping):
                    raise ValueError(
                        f"messages[{i}].function_call must be an object, not {type(value).__name__}"
                    )
                total += count(str(value.get("arguments", "")))
            elif isinstance(value, str):
                total += count(value)
                if key == "name":
                    total += per_name
            elif key == "content" and isinstance(value, list):
                total += counter.content_list(value, f"messages[{i}].content")
            elif key == "provider_specific_fields" and isinstance(value, Mapping):
                total += sum(map(count, _compaction_summaries(value)))
            elif key == "search_results" and isinstance(value, list):
                try:
                    text = search_results_text(value)
                except TypeError as e:
                    raise TypeError(
                        f"messages[{i}].search_results: citations are not JSON: {e}"
                    ) from None
                total += count(text)

    total += 3  # every reply is primed with <|start|>assistant<|message|>
    if tools:
        total += count(format_function_definitions(tools)) + 9
        if has_system:
            total -= 4
    return total + _tool_choice_tokens(tool_choice, count)


def _tool_choice_tokens(tool_choice: Any, count: TextCounter) -> int:
    """litellm's ``_count_tool_choice``: "none" or ``{"type": "none"}`` is 1; a mapping naming a
    function by a str (``{"function": {"name": ...}}``, else ``{"name": ...}``) is 7 plus the
    name; anything else is 0."""
    if isinstance(tool_choice, str):
        return 1 if tool_choice == "none" else 0
    if not isinstance(tool_choice, Mapping):
        return 0
    function = tool_choice.get("function")
    if isinstance(function, Mapping) and isinstance(function.get("name"), str):
        return 7 + count(function["name"])
    if tool_choice.get("type") == "none":
        return 1
    name = tool_choice.get("name")
    return 7 + count(name) if isinstance(name, str) else 0
