"""Model name -> tokenizer: the snapshot users get without litellm, against litellm itself.

``fast_litellm._models`` answers from a snapshot of litellm's tables until litellm is imported and
from litellm's own resolvers afterwards. Importing litellm here would put this process on the
second path for good, so the snapshot is exercised in child processes that never import litellm,
and litellm's answers are computed in other child processes.
"""

from __future__ import annotations

import json
import os
import random

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import fast_litellm  # noqa: E402
from fast_litellm import _models as models_mod  # noqa: E402

from .conftest import run_python  # noqa: E402

CHILD_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}

#: Names whose answer depended on import order, and names of each rule's edge.
NAMED = [
    "chatgpt-4o-latest",
    "azure/gpt-4o",
    "openai/gpt-4o",
    "o1-mini",
    "o1-preview",
    "gpt-4.5-preview",
    "ft:gpt-4o:org::id",
    "azure/gpt-41",
    "o5",
    "gpt-3.5-turbo",
    "gpt-4",
    "gpt-4-0613",
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4o-2024-08-06",
    "gpt-4-turbo",
    "gpt-4.1",
    "o1",
    "o3",
    "o3-mini",
    "o4-mini",
    "gpt-5",
    "gpt-5-mini",
    "gpt-35-turbo",
    "gpt-35-turbo-16k",
    "gpt-oss-20b",
    "davinci",
    "text-davinci-003",
    "text-embedding-3-small",
    "totally-unknown-model-xyz",
    "",
    "claude-3-opus-20240229",
    "claude-opus-4-5",
    "claude-sonnet-4-5",
    "anthropic/claude-opus-4-5",
    "deepseek-chat",
    "deepseek/deepseek-reasoner",
    "DeepSeek-V3",
    "meta-llama/Llama-3-8b",
    "llama-2-7b",
    "replicate/foo",
    "command-r",
    "command-r-plus",
    "GPT-4O",
    "gpt-4o ",
    "mistral-large",
    # Python's regex semantics: Unicode digits, "$" before a final newline, case folding.
    "o1\u0663",
    "gpt-1\u0665",
    "o5\n",
    "deepseek-chat\n",
    "deepſeek-v3",
    "DEEPSEEK_CHAT_V4",
]

#: Text on which cl100k_base and o200k_base give different counts.
TEXT = "Grüße aus Köln! 東京の天気は晴れ。 Привет, как дела? " * 8

_RANDOM_PIECES = (
    "gpt", "-", "4o", "4", "5", "6", "o", "1", "3", "0", "/", "azure", "openai", "eu", ":",
    "ft", ".", "mini", "pro", "turbo", "35", "3.5", "0301", "deepseek", "chat", "v3", "_",
    "reasoner", "llama-3", "LLaMA-2", "replicate", "claude", "opus", "command-r", "embedding",
    "tts", "image", "realtime", "oss", "chatgpt", "ſ", "\u0663", "\n", " ", "K", "é", "",
)  # fmt: skip


def _generated_names(known: list[str]) -> list[str]:
    """``known`` with provider prefixes, ``ft:`` forms, dated and case variants, unlisted gpt-5+
    and o-series releases, and seeded random strings, without repeats."""
    names = dict.fromkeys(NAMED + known)
    for name in known:
        last = name.rpartition("/")[2]
        for variant in (
            last,
            f"openai/{last}",
            f"azure/{last}",
            f"azure/eu/{last}",
            f"azure_ai/{last}",
            f"openrouter/openai/{last}",
            f"ft:{last}:my-org::abc123",
            f"azure/ft:{last}:org::id",
            f"{last}-2099-01-01",
            last.upper(),
            f"{name}/",
        ):
            names[variant] = None
    for version in ("5", "5.9", "6", "6.2", "7", "10", "12.1", "4.9", "50"):
        for form in ("gpt-{}", "gpt-{}-mini", "gpt-{}-2030-01-01", "openai/gpt-{}", "azure/gpt-{}"):
            names[form.format(version)] = None
    for number in ("0", "01", "1", "2", "5", "7", "12"):
        for suffix in ("", "-mini", "-pro", "-preview", ".5", "x"):
            names[f"o{number}{suffix}"] = None
            names[f"openai/o{number}{suffix}"] = None
    rng = random.Random(20261203)
    for _ in range(5000):
        names["".join(rng.choice(_RANDOM_PIECES) for _ in range(rng.randint(1, 7)))] = None
    for _ in range(2000):
        base = list(rng.choice(known))
        base.insert(rng.randint(0, len(base)), rng.choice(_RANDOM_PIECES))
        names["".join(base)] = None
    return list(names)


_LITELLM_ANSWERS = """
import json, sys
import litellm
from litellm.litellm_core_utils.token_counter import (
    openai_tokenizer_encoding_name, uses_legacy_message_accounting)
from litellm.litellm_core_utils.prompt_templates.chat_template_tools import (
    chat_template_tool_section)
from litellm.utils import huggingface_tokenizer_kind
names = json.load(open(sys.argv[1]))
answers = {
    name: [openai_tokenizer_encoding_name(name), huggingface_tokenizer_kind(name),
           uses_legacy_message_accounting(name), chat_template_tool_section(name) is not None]
    for name in names
}
json.dump(answers, open(sys.argv[2], "w"))
"""

_SNAPSHOT_ANSWERS = """
import json, sys
from fast_litellm import _models
names = json.load(open(sys.argv[1]))
answers = {
    name: [_models.encoding_for_model(name), _models._rules.hf_kind(name),
           _models.uses_legacy_message_accounting(name), list(_models.tokenizer_for_model(name)),
           _models.prices_tools_by_chat_template(name)]
    for name in names
}
assert "litellm" not in sys.modules, "the snapshot process imported litellm"
assert not _models._live
json.dump(answers, open(sys.argv[2], "w"))
"""


def _child_output(code: str) -> str:
    """What ``code`` prints in a fresh interpreter (bounded by ``run_python``'s timeout)."""
    result = run_python(code, env=CHILD_ENV)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _run_script(code: str, tmp_path, name: str, names: list[str]) -> dict:
    names_file = tmp_path / f"{name}-names.json"
    answers_file = tmp_path / f"{name}-answers.json"
    names_file.write_text(json.dumps(names))
    _child_output(
        f"import sys; sys.argv[1:] = [{str(names_file)!r}, {str(answers_file)!r}]\n{code}"
    )
    return json.loads(answers_file.read_text())


def _expected_tokenizer(encoding: str, hf_kind: str | None) -> str | list[str]:
    """What ``tokenizer_for_model`` must say, from litellm's encoding and HuggingFace kind."""
    if hf_kind is not None:
        return "other"
    encoding = models_mod._SAME_COUNTS_AS.get(encoding, encoding)
    return ["tiktoken", encoding] if encoding in models_mod.SUPPORTED_ENCODINGS else "other"


def test_snapshot_resolves_every_name_as_litellm_does(tmp_path):
    """Every key of the bundled model map, its prefixed, fine-tuned, dated and case variants,
    unlisted gpt-5+/o-series names and random strings: the snapshot, in a process that never
    imports litellm, gives litellm 1.110.2's answer for each."""
    known = _run_script(
        "import json, sys, litellm\n"
        "names = set(litellm.model_cost) | set(litellm.open_ai_chat_completion_models)"
        " | set(litellm.azure_llms) | set(litellm.anthropic_models) | set(litellm.cohere_models)\n"
        "json.dump(sorted(names), open(sys.argv[2], 'w'))\n",
        tmp_path,
        "known",
        [],
    )
    assert len(known) > 1000
    names = _generated_names(known)
    reference = _run_script(_LITELLM_ANSWERS, tmp_path, "litellm", names)
    snapshot = _run_script(_SNAPSHOT_ANSWERS, tmp_path, "snapshot", names)

    differences = {}
    for name in names:
        encoding, hf_kind, legacy, template_tools = reference[name]
        expected = [
            encoding,
            hf_kind,
            legacy,
            _expected_tokenizer(encoding, hf_kind),
            template_tools,
        ]
        got = snapshot[name]
        if got[3][0] == "other":
            got = got[:3] + ["other"] + got[4:]
        if got != expected:
            differences[name] = {"snapshot": got, "litellm": expected}
    report = json.dumps(dict(list(differences.items())[:40]), indent=1)
    assert not differences, (
        f"{len(differences)} of {len(names)} names differ: {sorted(differences)}\n{report}"
    )
    # The names reach both encodings and the HuggingFace kinds.
    assert {answer[0] for answer in reference.values()} == {"cl100k_base", "o200k_base"}
    assert {answer[1] for answer in reference.values()} >= {"anthropic", "deepseek", "llama3"}
    assert {answer[3] for answer in reference.values()} == {True, False}


def test_count_does_not_depend_on_import_order():
    """The same count for each name before and after ``import litellm`` in one process, and it is
    the count with the encoding litellm names."""
    code = (
        "import json, sys\n"
        "import fast_litellm as f\n"
        "from fast_litellm import _models\n"
        f"names, text = {NAMED!r}, {TEXT!r}\n"
        "before = {m: f.count_tokens(text, model=m) for m in names"
        " if _models.tokenizer_for_model(m)[0] == 'tiktoken'}\n"
        "assert 'litellm' not in sys.modules\n"
        "import litellm\n"
        "from litellm.litellm_core_utils.token_counter import openai_tokenizer_encoding_name as e\n"
        "after = {m: f.count_tokens(text, model=m) for m in before}\n"
        "reference = {m: f.count_tokens(text, encoding=e(m)) for m in before}\n"
        "print(json.dumps([before, after, reference]))\n"
    )
    before, after, reference = json.loads(_child_output(code))
    assert {
        "chatgpt-4o-latest",
        "azure/gpt-4o",
        "openai/gpt-4o",
        "gpt-4.5-preview",
        "ft:gpt-4o:org::id",
        "o5",
    } <= set(before)
    changed = {m: (before[m], after[m]) for m in before if before[m] != after[m]}
    assert not changed, changed
    assert after == reference
    cl100k = fast_litellm.count_tokens(TEXT, encoding="cl100k_base")
    assert cl100k != fast_litellm.count_tokens(TEXT, encoding="o200k_base")
    assert before["azure/gpt-4o"] != cl100k


def test_model_rules_follow_litellm_once_it_is_imported():
    """Once litellm is imported, names resolve by litellm itself, even a name already counted (the
    per-model caches are dropped): a model added to litellm's table at run time is followed."""
    code = (
        "import fast_litellm as f\n"
        f"text = {TEXT!r}\n"
        "before = f.count_tokens(text, model='my-gpt-4o-deployment')\n"
        "import litellm\n"
        "litellm.open_ai_chat_completion_models.add('my-gpt-4o-deployment')\n"
        "after = f.count_tokens(text, model='my-gpt-4o-deployment')\n"
        "print(before, after, f.encoding_for_model('my-gpt-4o-deployment'))\n"
    )
    before, after, encoding = _child_output(code).split()
    assert before == str(fast_litellm.count_tokens(TEXT, encoding="cl100k_base"))
    assert after == str(fast_litellm.count_tokens(TEXT, encoding="o200k_base"))
    assert encoding == "o200k_base"


def test_snapshot_is_current():
    """The snapshot tables are the installed litellm's and tiktoken's, table by table."""
    litellm = pytest.importorskip("litellm")
    tiktoken = pytest.importorskip("tiktoken")
    live = models_mod.tables_from_litellm(litellm, tiktoken)
    snapshot = models_mod.snapshot_tables()
    assert live.keys() == snapshot.keys()
    for table, names in snapshot.items():
        if isinstance(names, frozenset):
            assert live[table] == names, (
                table,
                {"missing": sorted(live[table] - names), "extra": sorted(names - live[table])},
            )
        else:
            assert live[table] == names, table


@pytest.mark.parametrize(
    "model, encoding",
    [
        ("gpt-4o", "o200k_base"),
        ("azure/gpt-4o", "cl100k_base"),
        ("chatgpt-4o-latest", "cl100k_base"),
        ("o1-mini", "cl100k_base"),
        ("gpt-35-turbo", "cl100k_base"),
        ("o3-mini", "o200k_base"),
        ("text-embedding-3-small", "cl100k_base"),
    ],
)
def test_rules_of_litellm_before_1_110(model, encoding):
    """A litellm without ``openai_tokenizer_encoding_name`` counted every name outside its OpenAI
    tables as ``gpt-3.5-turbo``; that rule is kept for such versions."""
    assert models_mod._encoding_name_before_1_110(model, models_mod._SNAPSHOT) == encoding


def test_encoding_for_model_type_error():
    with pytest.raises(TypeError):
        models_mod.encoding_for_model(None)
    with pytest.raises(TypeError):
        models_mod.tokenizer_for_model(b"gpt-4")
