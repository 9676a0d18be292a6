"""The fallback cost table: the same arithmetic as ``src/cost/`` (and as LiteLLM's
``generic_cost_per_token`` for the usage shapes ``fast_litellm.cost`` sends here), in Python.

Every operation is written in LiteLLM's order: an integer count is turned into a float and then
multiplied by the rate, and the parts are added in the order LiteLLM adds them, so the result is
the same float, bit for bit (IEEE addition is not associative: a different order can differ in
the last bit).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

# One price entry: (input, output, cache_read, cache_creation, reasoning, input_audio, output_audio,
# output_image, thresholds), each rate a float or None (absent), thresholds a sequence of
# (threshold, input, output, cache_creation, cache_read) in the order LiteLLM applies them.
Threshold = Tuple[float, Optional[float], Optional[float], Optional[float], Optional[float]]


class _Entry:
    __slots__ = (
        "input",
        "output",
        "cache_read",
        "cache_creation",
        "reasoning",
        "input_audio",
        "output_audio",
        "output_image",
        "thresholds",
    )

    def __init__(
        self,
        input: Optional[float],
        output: Optional[float],
        cache_read: Optional[float],
        cache_creation: Optional[float],
        reasoning: Optional[float],
        input_audio: Optional[float],
        output_audio: Optional[float],
        output_image: Optional[float],
        thresholds: Sequence[Threshold],
    ) -> None:
        self.input = input
        self.output = output
        self.cache_read = cache_read
        self.cache_creation = cache_creation
        self.reasoning = reasoning
        self.input_audio = input_audio
        self.output_audio = output_audio
        self.output_image = output_image
        self.thresholds = tuple(thresholds)


class CostTable:
    """Price entries added one by one (``add`` returns the index); ``cost`` prices a usage."""

    def __init__(self) -> None:
        self._entries: List[_Entry] = []

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries = []

    def add(
        self,
        input: Optional[float],
        output: Optional[float],
        cache_read: Optional[float],
        cache_creation: Optional[float],
        reasoning: Optional[float],
        input_audio: Optional[float],
        output_audio: Optional[float],
        output_image: Optional[float],
        thresholds: Sequence[Threshold],
    ) -> int:
        self._entries.append(
            _Entry(
                input,
                output,
                cache_read,
                cache_creation,
                reasoning,
                input_audio,
                output_audio,
                output_image,
                thresholds,
            )
        )
        return len(self._entries) - 1

    def cost(
        self,
        index: int,
        prompt_tokens: int,
        completion_tokens: int,
        prompt_details: bool,
        cached_tokens: int,
        cache_creation_tokens: int,
        prompt_text_tokens: int,
        prompt_audio_tokens: int,
        completion_details: bool,
        completion_text_tokens: int,
        reasoning_tokens: int,
        completion_audio_tokens: int,
    ) -> Tuple[float, float]:
        """``(prompt_cost, completion_cost)``, as LiteLLM's generic calculator computes them.

        ``prompt_details``/``completion_details``: whether the usage carries a
        ``prompt_tokens_details``/``completion_tokens_details`` object (the counts in it are 0
        when absent)."""
        entry = self._entries[index]
        prompt = prompt_tokens
        # -- prompt token classes (parse_prompt_tokens_details and the double-counting rule)
        if prompt_details:
            cache_hit = cached_tokens
            cache_creation = cache_creation_tokens
            text = max(prompt_text_tokens, 0)
            audio = max(prompt_audio_tokens, 0)
        else:
            cache_hit = 0
            cache_creation = 0
            text = prompt
            audio = 0
        total_details = text + cache_hit + audio + cache_creation
        if (cache_hit > 0 or cache_creation > 0) and total_details > prompt:
            budget = max(prompt - cache_hit - cache_creation, 0)
            audio = min(audio, budget)
            text = budget - audio
        elif text == 0:
            text = max(prompt - cache_hit - audio - cache_creation, 0)

        # -- base rates (_get_token_base_cost): above a threshold every rate it sets wins
        input_rate = entry.input if entry.input is not None else 0.0
        output_rate = entry.output if entry.output is not None else 0.0
        if output_rate == 0.0 and entry.output_image is not None:
            output_rate = entry.output_image
        cache_creation_rate = entry.cache_creation
        cache_read_rate = entry.cache_read
        for threshold, above_input, above_output, above_creation, above_read in entry.thresholds:
            if prompt > threshold:
                if above_input is not None:
                    input_rate = above_input
                if above_output is not None:
                    output_rate = above_output
                if above_creation is not None:
                    cache_creation_rate = above_creation
                if above_read is not None:
                    cache_read_rate = above_read
        if cache_read_rate is None:
            cache_read_rate = input_rate
        if cache_creation_rate is None:
            cache_creation_rate = input_rate

        # -- input cost (_calculate_input_cost)
        prompt_cost = float(text) * input_rate
        prompt_cost += float(max(cache_hit, 0)) * cache_read_rate
        if audio:
            rate = entry.input_audio if entry.input_audio is not None else input_rate
            if entry.input_audio is None:
                prompt_cost += float(audio) * rate
            elif audio > 0:
                prompt_cost += float(audio) * rate
        if cache_creation:
            prompt_cost += cache_creation * cache_creation_rate

        # -- output cost
        completion = completion_tokens
        out_text = 0
        out_audio = 0
        reasoning = 0
        total_is_text = False
        if completion_details:
            out_audio = completion_audio_tokens
            reasoning = reasoning_tokens
            reported = completion_text_tokens
            # text_tokens_without_nested_reasoning
            reported_total = reported + reasoning + out_audio
            nested = min(reasoning, reported, max(reported_total - completion, 0))
            out_text = reported - nested
        if out_text == 0:
            if out_audio > 0 or reasoning > 0:
                out_text = max(0, completion - reasoning - out_audio)
            else:
                out_text = completion
                total_is_text = True
        completion_cost = float(out_text) * output_rate
        if not total_is_text and out_audio > 0:
            rate = entry.output_audio if entry.output_audio is not None else output_rate
            completion_cost += float(out_audio) * rate
        if not total_is_text and reasoning > 0:
            rate = entry.reasoning if entry.reasoning is not None else output_rate
            completion_cost += float(reasoning) * rate
        return prompt_cost, completion_cost


def custom_cost(
    prompt_tokens: float,
    completion_tokens: int,
    cached_tokens: float,
    cache_creation_tokens: float,
    input_rate: float,
    output_rate: float,
    cache_read_rate: float,
    cache_creation_rate: float,
) -> Tuple[float, float]:
    """Prices passed in the call (LiteLLM's ``_cost_per_token_custom_pricing_helper``): the
    prompt count includes the cached and cache-written tokens."""
    regular = max(prompt_tokens - cached_tokens - cache_creation_tokens, 0)
    input_cost = (
        regular * input_rate
        + cached_tokens * cache_read_rate
        + cache_creation_tokens * cache_creation_rate
    )
    return input_cost, completion_tokens * output_rate
