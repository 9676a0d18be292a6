"""Checks fast_litellm's counts from a `--dump DIR` run against OpenAI's tiktoken (Python).

    cargo run --release -- --quick --dump /tmp/cmp-inputs
    python3 check_with_tiktoken.py /tmp/cmp-inputs

The vocabularies are read from python/fast_litellm/_vocab (no download); the split patterns and
special tokens are tiktoken's own. Exits non-zero on any difference.
"""

import csv
import pathlib
import sys

import tiktoken
import tiktoken_ext.openai_public as openai_public
from tiktoken.load import load_tiktoken_bpe

VOCAB = pathlib.Path(__file__).resolve().parents[2] / "python" / "fast_litellm" / "_vocab"


def local_encoding(name: str) -> tiktoken.Encoding:
    ranks = load_tiktoken_bpe(str(VOCAB / f"{name}.tiktoken"))
    original = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = lambda *args, **kwargs: ranks
    try:
        spec = getattr(openai_public, name)()
    finally:
        openai_public.load_tiktoken_bpe = original
    spec["name"] = f"{name}_local"
    return tiktoken.Encoding(**spec)


def main() -> int:
    folder = pathlib.Path(sys.argv[1])
    encodings = {}
    bad = 0
    with open(folder / "counts.tsv", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            name = row["encoding"]
            enc = encodings.setdefault(name, local_encoding(name))
            text = (folder / f"{row['input']}.txt").read_bytes().decode("utf-8")
            expected = len(enc.encode(text, disallowed_special=()))
            ours = int(row["count"])
            status = "ok" if ours == expected else "DIFFERENT"
            bad += ours != expected
            print(
                f"{name:12} {row['input']:16} fast_litellm={ours:6} tiktoken={expected:6} {status}"
            )
    print(f"tiktoken {tiktoken.__version__}: {bad} difference(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
