"""Long runs of one character (indentation, padding, rules, ``"a" * n``), which the native
counter merges in a compressed form: counts and token ids against tiktoken."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fast_litellm
from fast_litellm import _flags

ENCODINGS = ["r50k_base", "cl100k_base", "o200k_base"]

# Every length up to 300 (the compressed merge starts above 96 bytes), then lengths around the
# powers of two and the longest tokens.
LENGTHS = [*range(1, 301), 383, 384, 385, 511, 512, 513, 1000, 1023, 1024, 1025, 1999, 2000]


@pytest.fixture(scope="module")
def native_encoder():
    if _flags.native is None:
        pytest.skip(f"native module unavailable: {_flags.native_import_error}")
    from fast_litellm.tokens import _encoding_tokenizer

    return lambda encoding: _encoding_tokenizer(encoding).load_native()


def _check(native_encoder, tiktoken_reference, texts):
    for encoding in ENCODINGS:
        native = native_encoder(encoding)
        reference = tiktoken_reference[encoding]
        for text in texts:
            want = reference.encode(text, disallowed_special=())
            assert native.encode(text) == want, (encoding, text[:40], len(text))
            assert fast_litellm.count_tokens(text, encoding=encoding) == len(want), (
                encoding,
                text[:40],
                len(text),
            )


@pytest.mark.parametrize("char", [" ", "\t", "\n", "a", "-", "="])
def test_runs_of_one_byte(native_encoder, tiktoken_reference, char):
    _check(native_encoder, tiktoken_reference, [char * n for n in LENGTHS])


@pytest.mark.parametrize("char", ["é", "中", "😀", "\u00a0", "\u3000"])
def test_runs_of_one_multibyte_character(native_encoder, tiktoken_reference, char):
    _check(native_encoder, tiktoken_reference, [char * n for n in LENGTHS[::7]])


def test_mixed_whitespace_followed_by_a_word(native_encoder, tiktoken_reference):
    texts = []
    for n in (1, 2, 95, 96, 97, 98, 300, 1001):
        for tail in ("", "\n", "\n\n\n", "\r\n", "\t" * 40, "\n\t", " \n"):
            for word in ("", "x", "indent", " word", "\n"):
                texts.append(" " * n + tail + word)
                texts.append("\t" * n + tail + word)
                texts.append("a" + "\n" * n + tail + word)
    # The benchmark's own input.
    texts.append(("indent" + " " * 300 + "\n\n\n" + "\t" * 40 + "x ") * 28)
    _check(native_encoder, tiktoken_reference, texts)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([" ", "\t", "\n", "\r\n", "a", "b", "-", "é", "\u00a0", "x1", ". "]),
            st.integers(min_value=1, max_value=400),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_concatenated_runs(native_encoder, tiktoken_reference, runs):
    _check(native_encoder, tiktoken_reference, ["".join(piece * n for piece, n in runs)])
