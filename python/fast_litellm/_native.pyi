"""Type stubs for the native extension ``fast_litellm._native`` (private; use the package API)."""

from os import PathLike
from typing import Any, Iterable, List, Literal, Mapping, Optional, Sequence, Union, final

__version__: str
ENCODING_NAMES: List[str]

EncodingName = Literal["r50k_base", "p50k_base", "cl100k_base", "o200k_base"]

@final
class Encoding:
    """One loaded BPE vocabulary; immutable and safe to share between threads."""

    @staticmethod
    def load(name: EncodingName, path: Union[str, PathLike[str]]) -> Encoding: ...
    @property
    def name(self) -> EncodingName: ...
    def count(self, text: str) -> int: ...
    def count_batch(self, texts: Iterable[str]) -> List[int]: ...
    def encode(self, text: str) -> List[int]: ...
    def count_messages(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Optional[Sequence[Mapping[str, Any]]] = None,
        tool_choice: Any = None,
        *,
        legacy_accounting: bool = False,
    ) -> int: ...

def _testing_panic(message: str) -> None: ...
