"""Features of a manifest: captions that name events in sequence carry their order-swapped twin."""

import torch

from coattn_dist.audio.augment import recording
from coattn_dist.config import TrainConfig
from coattn_dist.data.table import manifest_table
from coattn_dist.features import (
    Augmented,
    build_features,
    encode_texts,
    steady_beds,
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
    beds = steady_beds(table, audio_encoder.sample_rate, recording(BEDS))
    assert list(beds) == ["rain"]  # barks come and go; rain stays
    with_beds = Augmented(audio_encoder, 0, recording(BEDS), beds).cache_key
    assert (
        "-beds" in with_beds
        and with_beds != Augmented(audio_encoder, 0, recording(TrainConfig())).cache_key
    )
