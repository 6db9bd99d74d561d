"""The transcript tool records a real session and annotates every element."""

from __future__ import annotations

from xmlchat.tools.transcript import STEPS, TITLES, annotate, record, render


async def test_a_recorded_session_is_annotated_step_by_step() -> None:
    recorder, versions = await record()
    annotated = annotate(recorder.chunks)
    wire = [(chunk, step, notes) for chunk, step, notes in annotated if chunk.direction != "#"]
    assert all(notes for _, _, notes in wire), [c.data for c, _, n in wire if not n]
    assert [step for _, step, _ in wire] == sorted((step for _, step, _ in wire), key=STEPS.index)
    assert {step for _, step, _ in wire} == set(STEPS)
    text = render(recorder, versions)
    for step in STEPS:
        assert TITLES[step] in text
    assert "TLS established" in text and "SCRAM-SHA-1" in text and "n,,n=alice" in text
    assert "Hello Bob, from slixmpp." in text and "Hi Alice! 你好" in text
