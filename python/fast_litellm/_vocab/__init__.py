"""BPE vocabularies shipped with the package, byte-identical to OpenAI's ``.tiktoken`` files.

The native module's tables are built from these files when the library is built (``build.rs``
checks each against the hash below first); the fallback hands them to Python ``tiktoken``.
Nothing is ever downloaded at run time.
"""

from __future__ import annotations

import os

# sha256 of each file as published by OpenAI (the same hashes tiktoken checks on download).
SHA256 = {
    "r50k_base": "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
    "p50k_base": "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}

# The vocabulary file of each encoding this package counts: one definition in Python (the native
# module has its own, and tests/test_layout.py holds the two equal). o200k_harmony (gpt-oss) is
# o200k_base's ranks and pattern with other special tokens, as in tiktoken.
VOCABULARY_OF = {name: name for name in SHA256} | {"o200k_harmony": "o200k_base"}
ENCODING_NAMES = tuple(VOCABULARY_OF)


def unknown_encoding(name: object) -> ValueError:
    return ValueError(f"unknown encoding {name!r}; valid encodings: {', '.join(ENCODING_NAMES)}")


def vocabulary_path(name: str) -> str:
    """The path of the ``.tiktoken`` file of encoding ``name``."""
    if name not in VOCABULARY_OF:
        raise unknown_encoding(name)
    return os.path.join(os.path.dirname(__file__), f"{VOCABULARY_OF[name]}.tiktoken")
