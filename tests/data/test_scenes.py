"""Scenes: real clips in sequence or overlapping, captions that name the events in order."""

import soundfile as sf

from coattn_dist.data.scenes import (
    caption_for,
    plan_scenes,
    render,
    several_events,
    swap_events,
    write_scenes,
)


def pool(sample_dir):
    names = {
        "dog": "4-182395-A-0.flac",
        "rain": "4-161127-A-10.flac",
        "church_bells": "4-125825-A-46.flac",
    }
    return {label: [str(sample_dir / "audio" / n)] for label, n in names.items()}


def test_canonical_captions_and_their_swaps():
    assert caption_for(["dog", "rain"], "sequence", None) == (
        "a dog barks, then rain is falling",
        "rain is falling, then a dog barks",
    )
    caption, swapped = caption_for(["dog", "rain", "church_bells"], "sequence", None)
    assert (
        caption.count(", then ") == 2 and swapped.split(", then ") == caption.split(", then ")[::-1]
    )
    assert caption_for(["dog", "rain"], "overlap", None)[1] == ""


def test_swap_events_reverses_any_sequence_wording():
    assert swap_events("a dog barks, and then rain falls") == "rain falls, and then a dog barks"
    assert swap_events("a, then b and then c") == "c, then b and then a"  # each join stays in place
    assert swap_events("a dog barks while rain falls") == ""  # an overlap has no order
    assert swap_events("a dog barks") == ""
    for labels in (["dog", "rain"], ["rain", "church_bells", "dog"]):
        caption, swapped = caption_for(labels, "sequence", None)
        assert swap_events(swapped) == caption


def test_several_events_are_told_from_one():
    assert several_events("a dog barks, and then rain falls")
    assert several_events("a dog barks while rain falls")  # an overlap names two events too
    assert several_events("a dog barks as rain falls")
    assert not several_events("a dog barks")
    assert not several_events("a knife and fork clatter")  # a plain "and" joins no events
    # a clause about the same source is one event
    assert not several_events("a man screams as he dies")
    assert not several_events("an old door squeaks as it opens")
    assert several_events("thunder crashes as rain falls")
    assert several_events("a man screams as he dies, then a door opens")
    for kind in ("sequence", "overlap"):
        assert several_events(caption_for(["dog", "rain"], kind, None)[0])


def test_every_pair_comes_in_both_orders(sample_dir):
    scenes = plan_scenes(pool(sample_dir), 20, seed=0, canonical=True, prefix="t")
    pairs = [tuple(s.labels) for s in scenes if s.kind == "sequence" and len(s.labels) == 2]
    assert pairs and all(p[::-1] in pairs for p in pairs)
    assert {s.kind for s in scenes} == {"sequence", "overlap"}
    assert len({s.scene_id for s in scenes}) == 20


def test_rendered_lengths(sample_dir, tmp_path):
    scenes = plan_scenes(pool(sample_dir), 8, seed=1, canonical=False, prefix="r")
    for s in scenes:
        audio = render(s)
        expected = {2: 10.0, 3: 15.0}[len(s.clips)] if s.kind == "sequence" else 7.5
        assert abs(len(audio) / 44100 - expected) < 0.01 and abs(audio).max() <= 1.0
    write_scenes(scenes[:2], tmp_path)
    assert sf.info(tmp_path / f"{scenes[0].scene_id}.flac").samplerate == 44100
