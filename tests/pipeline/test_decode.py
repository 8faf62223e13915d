"""decode_audio turns every bad file into a row with its kind, and never raises."""

import numpy as np

from coattn_dist.pipeline.decode import decode_audio


def test_good_bad_and_already_failed_rows(sample_dir, bad_audio):
    good = sorted((sample_dir / "audio").glob("*.flac"))[1]
    names = ["good.flac", *bad_audio, "gone.flac"]
    data = [good.read_bytes(), *(b for b, _ in bad_audio.values()), b""]
    kinds = [""] * (len(names) - 1) + ["unreadable"]
    batch = {
        "uri": np.array(names, dtype=object),
        "data": np.array(data, dtype=object),
        "kind": np.array(kinds, dtype=object),
        "message": np.array([""] * (len(names) - 1) + ["gone.flac: cannot read"], dtype=object),
    }

    out = decode_audio(batch, sample_rate=16000)

    assert "data" not in out
    assert list(out["kind"]) == ["", *(k for _, k in bad_audio.values()), "unreadable"]
    assert out["message"][0] == "" and all(m for m in out["message"][1:])
    assert out["message"][-1] == "gone.flac: cannot read"  # earlier failures pass through
    wave = out["wave"][0]
    assert wave.dtype == np.float32 and wave.ndim == 1 and len(wave) == 5 * 16000
    assert all(len(w) == 0 for w in out["wave"][1:])
