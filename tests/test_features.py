"""Features of a manifest: captions that name events in sequence carry their order-swapped twin."""

import torch

from coattn_dist.data.table import manifest_table
from coattn_dist.features import build_features, encode_texts


def test_sequence_captions_get_their_swapped_twin(sample_dir, audio_encoder, text_encoder):
    uris = [str(sample_dir / "audio" / n) for n in ("4-182395-A-0.flac", "4-161127-A-10.flac")]
    captions = ["a dog barks, then rain is falling", "rain is falling while a dog barks"]
    data = build_features(
        audio_encoder, text_encoder, manifest_table(["a", "b"], uris, captions, ["", ""])
    )
    assert list(data.swapped) == [data.texts.index(captions[0])]  # an overlap has no order to swap
    (twin,) = encode_texts(text_encoder, ["rain is falling, then a dog barks"])
    torch.testing.assert_close(data.swapped[data.texts.index(captions[0])], twin)
