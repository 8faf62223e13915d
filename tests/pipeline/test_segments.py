"""Training features on Ray Data agree with the in-process path, bad files included."""

import pyarrow as pa
import torch

from coattn_dist.config import AudioEncoderConfig
from coattn_dist.features import encode_clips
from coattn_dist.pipeline.segments import encode_clips_distributed


def test_ray_data_features_match_in_process_and_report_bad_files(
    sample_dir, bad_audio, audio_encoder, ray_local, tmp_path
):
    good = sorted((sample_dir / "audio").glob("*.flac"))[:5]
    for name, (data, _) in bad_audio.items():
        (tmp_path / name).write_bytes(data)
    paths = [str(p) for p in good] + [str(tmp_path / n) for n in bad_audio]
    table = pa.table(
        {
            "clip_id": [f"c{i}" for i in range(len(paths))],
            "audio": paths,
            "caption": [""] * len(paths),
            "label": [""] * len(paths),
        }
    )
    done = []

    features, failures = encode_clips_distributed(
        AudioEncoderConfig(), table, progress=lambda n, total: done.append((n, total))
    )
    expected, expected_failures = encode_clips(audio_encoder, table)
    assert set(features) == set(expected) == {f"c{i}" for i in range(len(good))}
    for clip_id, segments in expected.items():
        torch.testing.assert_close(features[clip_id], segments, atol=1e-4, rtol=1e-4)
    kinds = {f.uri.rsplit("/", 1)[-1]: f.kind for f in failures}
    assert kinds == {n: kind for n, (_, kind) in bad_audio.items()}
    assert kinds == {f.uri.rsplit("/", 1)[-1]: f.kind for f in expected_failures}
    assert done[-1] == (len(paths), len(paths))
