"""`<think>` reasoning split off chat "v2" content (engine-spec §4.4), streamed and whole."""

from __future__ import annotations

from skill_engine.csi.inference.reasoning import Part, ReasoningExtractor, split_reasoning


def feed(*chunks: str) -> list[Part]:
    extractor = ReasoningExtractor()
    return [part for chunk in chunks for part in extractor.feed(chunk)] + extractor.flush()


def test_whole_answer() -> None:
    assert split_reasoning("<think>hmm</think> The answer") == ("hmm", " The answer")
    assert split_reasoning("<think>still thinking") == ("still thinking", None)
    late = "plain <think>not at the start</think>"
    assert split_reasoning(late) == (None, late)
    assert split_reasoning(None) == (None, None)


def test_stream_with_tags_inside_chunks() -> None:
    assert feed("<think>I am ", "thinking...</think>The ans", "wer") == [
        ("reasoning", "I am "),
        ("reasoning", "thinking..."),
        ("content", "The ans"),
        ("content", "wer"),
    ]


def test_stream_with_tags_split_across_chunks() -> None:
    assert feed("<th", "ink>I am", "</thi", "nk>", "42") == [("reasoning", "I am"), ("content", "42")]


def test_stream_without_leading_tag_is_untouched() -> None:
    assert feed("Hello, <think>x", "</think>y") == [("content", "Hello, <think>x"), ("content", "</think>y")]
