"""Features of a manifest: captions that name events in sequence carry their order-swapped twin."""

import torch

from coattn_dist.audio.augment import recording
from coattn_dist.config import TrainConfig
from coattn_dist.data.table import manifest_table
from coattn_dist.features import (
    Augmented,
    bed_captions,
    build_features,
    encode_texts,
    plan_beds,
    with_variants,
)


def test_sequence_captions_get_their_swapped_twin(sample_dir, audio_encoder, text_encoder):
    uris = [str(sample_dir / "audio" / n) for n in ("4-182395-A-0.flac", "4-161127-A-10.flac")]
    captions = ["a dog barks, then rain is falling", "rain is falling while a dog barks"]
    data = build_features(
        audio_encoder, text_encoder, manifest_table(["a", "b"], uris, captions, ["", ""])
    )
    assert list(data.swapped) == [data.texts.index(captions[0])]  # an overlap has no order to swap
    (twin,) = encode_texts(text_encoder, ["rain is falling, then a dog barks"])
    torch.testing.assert_close(data.swapped[data.texts.index(captions[0])], twin)


def test_augmented_versions_of_every_clip(sample_dir, audio_encoder, text_encoder, tmp_path):
    uris = [str(sample_dir / "audio" / n) for n in ("4-182395-A-0.flac", "4-161127-A-10.flac")]
    table = manifest_table(["a", "b"], uris, ["a dog barks", "rain is falling"], ["", ""])
    data = build_features(audio_encoder, text_encoder, table)
    heard = with_variants(data, audio_encoder, table, 2, cache=tmp_path)
    assert heard.segments is data.segments and len(heard.variants) == 2
    for clean, versions in zip(heard.segments, heard.variants):
        assert len(versions) == 2 and not torch.equal(versions[0], versions[1])
        for v in versions:  # the same sound under other conditions: changed, still close
            cos = torch.nn.functional.cosine_similarity(clean.mean(0), v.mean(0), dim=0)
            assert 0.6 < cos < 0.999
    cached = with_variants(data, audio_encoder, table, 2, cache=tmp_path)  # read back, not redone
    keys = {Augmented(audio_encoder, v).cache_key for v in range(2)}
    assert {p.name for p in tmp_path.iterdir()} == keys
    for a, b in zip(cached.variants, heard.variants):
        torch.testing.assert_close(a[0], b[0], atol=2e-3, rtol=1e-2)  # stored as float16


BEDS = TrainConfig(audio_bed=1.0)


def test_steady_recordings_are_the_beds_and_name_their_cache(sample_dir, audio_encoder, tmp_path):
    uris = [str(sample_dir / "audio" / n) for n in ("4-182395-A-0.flac", "4-161127-A-10.flac")]
    table = manifest_table(["dog", "rain"], uris, ["a dog barks", "rain is falling"], ["", ""])
    plan = plan_beds(table, audio_encoder.sample_rate, recording(BEDS), 4)
    assert list(plan.beds) == ["rain"]  # barks come and go; rain stays
    assert set(plan.behind) == {"dog", "rain"} and all(len(b) == 4 for b in plan.behind.values())
    assert {b for bs in plan.behind.values() for b in bs} <= {"rain", None}
    with_beds = Augmented(audio_encoder, 0, recording(BEDS), plan.beds).cache_key
    assert (
        "-bedset" in with_beds
        and with_beds != Augmented(audio_encoder, 0, recording(TrainConfig())).cache_key
    )


def test_a_version_over_a_bed_gets_a_caption_naming_both(
    sample_dir, audio_encoder, text_encoder, tmp_path
):
    uris = [str(sample_dir / "audio" / n) for n in ("4-182395-A-0.flac", "4-161127-A-10.flac")]
    table = manifest_table(["dog", "rain"], uris, ["a dog barks", "rain is falling"], ["", "rain"])
    data = build_features(audio_encoder, text_encoder, table)
    heard = with_variants(data, audio_encoder, table, 4, tmp_path, conditions=recording(BEDS))
    plan = plan_beds(table, audio_encoder.sample_rate, recording(BEDS), 4)
    assert heard.variant_beds == [plan.behind[c] for c in heard.clip_ids]
    named = bed_captions(heard, table, text_encoder)
    (both,) = encode_texts(text_encoder, ["a dog barks while rain is falling"])
    for cid, beds, tokens in zip(named.clip_ids, named.variant_beds, named.variant_tokens):
        for bed, t in zip(beds, tokens):
            if bed is None or cid == "rain":  # no bed, or rain over rain: nothing more to say
                assert t is None
            else:
                torch.testing.assert_close(t, both)
    assert any(t is not None for t in named.variant_tokens[heard.clip_ids.index("dog")])
