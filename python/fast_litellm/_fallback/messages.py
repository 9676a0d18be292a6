"""Chat-message token counting, exactly as ``litellm.token_counter(model=..., messages=..., tools=...,
tool_choice=...)`` does it for tiktoken-counted models (litellm 1.106,
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
  - ``search_results`` given as a list: the concatenation of each dict result's string ``source``,
    ``title``, its ``content`` blocks' string ``text``, and ``json.dumps(citations,
    separators=(",", ":"))`` when ``citations`` is not None, counted as one string;
  - every other value (numbers, dicts, tuples, lists under other keys) is ignored.
* content parts (a ``str`` item is counted as text; otherwise by ``item["type"]``):
  - ``text``: ``count(str(item.get("text", "")))``;
  - ``image_url``: 85 tokens for ``detail`` "low"/"auto" (default "auto") or a plain string URL. For
    ``detail="high"`` LiteLLM needs the image size: it *downloads* http(s) URLs (we do not: that
    raises ``UnsupportedContentError`` so the caller can delegate), and decodes ``data:`` URLs
    (PNG/GIF/JPEG/WebP headers, else 300x300): the size is scaled so the short side is 768 (long side
    capped at 2000) when either side exceeds 768, then ``85 + 170 * tiles`` with 512x512 tiles.
    Any ``detail`` outside low/high/auto, a missing url, or an empty string url is a ValueError;
  - ``image`` (Anthropic): 85 (``source["type"]`` must exist);
  - ``document``: truthy ``title``/``context`` counted; ``source.type`` "text" counts
    ``source["data"]``, "content" counts a string or a nested part list; any other source is priced
    as an image (85) unless it is a ``data:application/pdf;base64,`` document, which LiteLLM parses
    with pypdf when installed (``UnsupportedContentError`` here);
  - ``file``: its string ``filename``, plus 85 for non-empty string ``file_data`` (PDF data URLs:
    ``UnsupportedContentError``);
  - ``tool_use``: the string/list/dict fields ``name``, ``input``, ``caller`` (a dict counts as its
    Python ``str()``); ``tool_result``: its ``content`` the same way;
  - ``thinking`` / ``redacted_thinking``: ``count(str(item.get("thinking", "")))``;
  - ``tool_reference``: ``count(str(item.get("tool_name") or ""))``;
  - anything else is a ValueError.
* then the request overhead: ``3`` (reply priming), and when ``tools`` is truthy
  ``count(format_function_definitions(tools)) + 9``, minus ``4`` if any message has
  ``role == "system"``; ``tool_choice == "none"`` adds 1, a dict ``tool_choice`` adds
  ``7 + count(str(tool_choice["function"]["name"]))`` (LiteLLM's comment says 4; the code adds 7),
  ``"auto"``/``"required"``/anything else adds nothing.
* ``format_function_definitions`` renders tools as a TypeScript-like namespace (see the function
  below; it is LiteLLM's renderer). Tools that are not mappings are skipped; a tool may be
  OpenAI-style (``{"function": {...}}``), Gemini-style (``function_declarations``) or
  Anthropic-style (``name``/``description``/``input_schema``).

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
import os
from collections.abc import Callable, Mapping
from typing import Any, Final

from fast_litellm.errors import UnsupportedContentError

__all__ = [
    "BASE_IMAGE_TOKENS",
    "UnsupportedContentError",
    "count_message_tokens",
    "count_text_like_litellm",
    "format_function_definitions",
    "high_detail_image_tokens",
    "litellm_text_counter",
    "search_results_text",
]


# ---- text counter -------------------------------------------------------------------------------


def _env_int_in_range(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = os.getenv(name)
    if raw is None:
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


def litellm_text_counter(count_exact: TextCounter) -> TextCounter:
    """Wrap an exact counter into LiteLLM's chunking/extrapolating counter."""
    return lambda text: count_text_like_litellm(text, count_exact)


# ---- images -------------------------------------------------------------------------------------

_MAX_SHORT_SIDE: Final = 768
_MAX_LONG_SIDE: Final = 2000
_TILE: Final = 512
_DEFAULT_IMAGE_SIDE: Final = 300
_PDF_PREFIX: Final = "data:application/pdf;base64,"


def _field(data: bytes, at: int, size: int, byteorder: str) -> int:
    if at + size > len(data):
        raise ValueError("image header is truncated")
    return int.from_bytes(data[at : at + size], byteorder)  # type: ignore[arg-type]


def _be16(data: bytes, at: int) -> int:
    return _field(data, at, 2, "big")


def _le(data: bytes, at: int, size: int) -> int:
    return _field(data, at, size, "little")


def _jpeg_dimensions(data: bytes) -> tuple[int, int]:
    """Walks the JPEG segments to the first start-of-frame marker (C0-CF except the DHT, JPG and
    DAC markers C4, C8, CC), whose payload holds height then width."""
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return _be16(data, at + 7), _be16(data, at + 5)
        at += 2 + _be16(data, at + 2)
    raise ValueError("image data looks like a JPEG but has no readable frame header")


def _webp_dimensions(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended: 24-bit sizes minus one
        return _le(data, 24, 3) + 1, _le(data, 27, 3) + 1
    if chunk == b"VP8 ":  # lossy: 14-bit sizes in the frame header
        return _le(data, 26, 2) & 0x3FFF, _le(data, 28, 2) & 0x3FFF
    if chunk == b"VP8L":  # lossless: two 14-bit fields, minus one, after the signature byte
        bits = _le(data, 21, 4)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _image_dimensions(data: bytes) -> tuple[int, int]:
    """Width and height read from the image header, as LiteLLM reads them; formats it does not
    read (HEIC, unknown data) are priced as a 300x300 image, as LiteLLM prices them."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _be16(data, 16) << 16 | _be16(data, 18), _be16(data, 20) << 16 | _be16(data, 22)
    if data.startswith(b"GIF8") and data[5:6] == b"a":
        return _le(data, 6, 2), _le(data, 8, 2)
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg_dimensions(data)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        size = _webp_dimensions(data)
        if size is not None:
            return size
    return _DEFAULT_IMAGE_SIDE, _DEFAULT_IMAGE_SIDE


def _high_detail_tokens_for_size(width: int, height: int) -> int:
    if not (width <= _MAX_SHORT_SIDE and height <= _MAX_SHORT_SIDE):
        longer, shorter = max(width, height), min(width, height)
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


def high_detail_image_tokens(url: object) -> int:
    """Tokens LiteLLM charges for an ``image_url`` part with ``detail="high"``.

    Raises ``UnsupportedContentError`` for http(s) URLs (LiteLLM downloads them) and ``ValueError``
    where LiteLLM fails (not a str, no comma, bad base64, truncated header).
    """
    if not isinstance(url, str):
        raise ValueError(f"image url must be a str for detail='high', not {type(url).__name__}")
    if url.startswith(("http://", "https://")):
        raise UnsupportedContentError(
            "litellm downloads high-detail images given by http(s) URL to measure them; "
            "pass detail='low'/'auto', a data: URL, or count with litellm"
        )
    try:
        _header, encoded = url.split(",", 1)
        data = base64.b64decode(encoded)
        width, height = _image_dimensions(data)
        return _high_detail_tokens_for_size(width, height)
    except Exception as e:  # litellm turns every failure here into a ValueError
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
#     <member lines, indented two spaces per nested object level>
#     }) => any;
#     <blank>
#     } // namespace functions
#
# A member line is "<key>?: <type>," ("?" dropped for required keys), preceded by
# "// <description>" when the property has one. Types: string (or a union of quoted enum
# values), number (integer too; enums quoted the same way), boolean, null, <type>[] for arrays,
# a braced block of member lines for objects, and "any" for everything else. Tools that are not
# mappings, and functions without a name, contribute nothing.


def format_function_definitions(tools: Any) -> str:
    """The text LiteLLM counts for ``tools`` (see the layout above). Malformed schemas raise
    ``TypeError``/``ValueError`` naming the place instead of failing deep inside."""
    out = ["namespace functions {", ""]
    for index, tool in enumerate(tools):
        if isinstance(tool, Mapping):
            for where, name, description, schema in _declared_functions(tool, f"tools[{index}]"):
                out += _signature_lines(name, description, schema, where)
    out.append("} // namespace functions")
    return "\n".join(out)


def _declared_functions(tool: Mapping[str, Any], where: str):
    """``(where, name, description, parameters)`` for each function one tool declares: an
    OpenAI ``function``, a Gemini ``function_declarations`` list, or an Anthropic-style tool."""
    declared = tool.get("function")
    if isinstance(declared, Mapping):
        found = [(f"{where}.function", declared)]
    else:
        field = (
            "function_declarations"
            if tool.get("function_declarations")
            else ("functionDeclarations")
        )
        listed = tool.get(field)
        if isinstance(listed, list):
            found = [
                (f"{where}.{field}[{n}]", entry)
                for n, entry in enumerate(listed)
                if isinstance(entry, Mapping)
            ]
        else:
            schema = tool.get("input_schema") or tool.get("parameters") or {}
            found = [
                (
                    where,
                    {
                        "name": tool.get("name"),
                        "description": tool.get("description"),
                        "parameters": schema if isinstance(schema, Mapping) else {},
                    },
                )
            ]
    for place, entry in found:
        schema = entry.get("parameters") or {}
        yield (
            place,
            entry.get("name"),
            entry.get("description"),
            schema if isinstance(schema, Mapping) else {},
        )


def _signature_lines(name: Any, description: Any, schema: Mapping[str, Any], where: str) -> list:
    if not name:
        return []
    comment = [f"// {description}"] if description else []
    members = schema.get("properties")
    if not (isinstance(members, Mapping) and members):
        return [*comment, f"type {name} = () => any;", ""]
    body = _member_lines(schema, 0, f"{where}.parameters")
    return [*comment, f"type {name} = (_: {{", body, "}) => any;", ""]


def _schema_object(value: Any, where: str) -> None:
    if not callable(getattr(value, "get", None)):
        raise TypeError(f"{where} must be a JSON schema object, not {type(value).__name__}")


def _member_lines(schema: Any, depth: int, where: str) -> str:
    members = schema.get("properties")
    if not members:
        return ""
    if not callable(getattr(members, "items", None)):
        raise TypeError(f"{where}.properties must be an object, not {type(members).__name__}")
    required = schema.get("required", [])
    pad = " " * max(0, depth)
    lines = []
    for key, member in members.items():
        member_where = f"{where}.properties[{key!r}]"
        _schema_object(member, member_where)
        if member.get("description"):
            lines.append(f"{pad}// {member.get('description')}")
        try:
            optional = not (required and key in required)
        except TypeError:
            raise TypeError(
                f"{where}.required must be a list, not {type(required).__name__}"
            ) from None
        marker = "?" if optional else ""
        lines.append(f"{pad}{key}{marker}: {_type_text(member, depth, member_where)},")
    return "\n".join(lines)


def _enum_text(schema: Any, where: str) -> str:
    values = schema["enum"]
    try:
        return " | ".join(f'"{value}"' for value in values)
    except TypeError:
        raise TypeError(f"{where}.enum must be a list, not {type(values).__name__}") from None


_SCALAR_TYPES = {"boolean": "boolean", "null": "null"}


def _type_text(schema: Any, depth: int, where: str) -> str:
    kind = schema.get("type")
    if kind in ("string", "integer", "number"):
        if "enum" in schema:
            return _enum_text(schema, where)
        return "string" if kind == "string" else "number"
    if kind == "array":
        if "items" not in schema:
            raise ValueError(f"{where}: an array schema needs 'items'")
        _schema_object(schema["items"], f"{where}.items")
        return _type_text(schema["items"], depth, f"{where}.items") + "[]"
    if kind == "object":
        return "{\n" + _member_lines(schema, depth + 2, where) + "\n}"
    return _SCALAR_TYPES.get(kind, "any") if isinstance(kind, str) else "any"


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
    if isinstance(message, dict):
        return message
    if isinstance(message, Mapping):
        return dict(message)
    model_dump = getattr(message, "model_dump", None)
    if callable(model_dump) and not isinstance(message, type):
        dumped = model_dump(exclude_none=True)
        if isinstance(dumped, dict):
            return dumped
    raise TypeError(f"messages[{index}] must be a dict, not {type(message).__name__}")


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

    def content_list(self, items: Any, path: str) -> int:
        total = 0
        for j, part in enumerate(items):
            total += self.part(part, f"{path}[{j}]")
        return total

    def part(self, part: Any, path: str) -> int:
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
        if kind == "text":
            return count(str(part.get("text", "")))
        if kind == "image_url":
            return self.image_url(part.get("image_url"), f"{path}.image_url")
        if kind == "image":
            if "source" not in part:
                raise ValueError(f"{path} is missing the 'source' key")
            self.source_data(part["source"], f"{path}.source")
            return BASE_IMAGE_TOKENS
        if kind == "document":
            return self.document(part, path)
        if kind == "file":
            return self.file(part.get("file"), f"{path}.file")
        if kind in ("tool_use", "tool_result"):
            return self.anthropic_block(part, kind, path)
        if kind in ("thinking", "redacted_thinking"):
            return count(str(part.get("thinking", "")))
        if kind == "tool_reference":
            return count(str(part.get("tool_name") or ""))
        raise ValueError(
            f"{path}: invalid content part type {kind!r}; expected text, image_url, image, document, file, "
            "tool_use, tool_result, thinking, redacted_thinking or tool_reference"
        )

    def image_url(self, image_url: Any, path: str) -> int:
        if isinstance(image_url, dict):
            detail = image_url.get("detail", "auto")
            if detail not in ["low", "high", "auto"]:
                raise ValueError(f"{path}.detail must be 'low', 'high' or 'auto', not {detail!r}")
            url = image_url.get("url")
            if not url:
                raise ValueError(f"{path} is missing 'url'")
            if detail == "high":
                try:
                    return high_detail_image_tokens(url)
                except UnsupportedContentError:
                    raise
                except ValueError as e:
                    raise ValueError(f"{path}: {e}") from None
            return BASE_IMAGE_TOKENS
        if isinstance(image_url, str):
            if not image_url.strip():
                raise ValueError(f"{path} must not be an empty string")
            return BASE_IMAGE_TOKENS
        raise ValueError(
            f"{path} must be a str or a dict with 'url', not {type(image_url).__name__}"
        )

    @staticmethod
    def source_data(source: Any, path: str) -> Any:
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
            return source.get("url") or ""
        return ""

    def opaque_document(self, data_url: Any, path: str) -> int:
        if not isinstance(data_url, str):
            raise ValueError(f"{path} must be a str, not {type(data_url).__name__}")
        if data_url.startswith(_PDF_PREFIX):
            raise UnsupportedContentError(
                f"{path}: litellm prices inline PDF documents page by page with pypdf; count with litellm"
            )
        return BASE_IMAGE_TOKENS

    def _text(self, value: Any, path: str) -> int:
        if not isinstance(value, str):
            raise ValueError(f"{path} must be a str, not {type(value).__name__}")
        return self.count(value)

    def document(self, part: Mapping[str, Any], path: str) -> int:
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
            return total + self.content_list(content, f"{path}.source.content")
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

    def anthropic_block(self, part: Mapping[str, Any], kind: str, path: str) -> int:
        if kind == "tool_use":
            fields: tuple[str, ...] = ("name", "input", "caller")
        else:
            fields = ("content",)
        total = 0
        for field in fields:
            value = part.get(field)
            if isinstance(value, str):
                total += self.count(value)
            elif isinstance(value, list):
                total += self.content_list(value, f"{path}.{field}")
            elif isinstance(value, dict):
                total += self.count(str(value))
        return total


def count_message_tokens(
    messages: Any,
    *,
    tools: Any = None,
    tool_choice: Any = None,
    count_text: TextCounter,
    model: str | None = None,
    legacy_accounting: bool = False,
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
    count = litellm_text_counter(count_text)
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
    if tool_choice == "none":
        total += 1
    elif isinstance(tool_choice, dict):
        function = tool_choice.get("function")
        if not isinstance(function, Mapping) or "name" not in function:
            raise ValueError(
                "tool_choice must be 'none', 'auto', 'required' or {'type': 'function', 'function': {'name': ...}}"
            )
        total += 7 + count(str(function["name"]))
    return total
