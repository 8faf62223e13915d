"""Any Hugging Face text or audio model, by hub name or local path, behind the encoder interfaces.

Everything loads with ``local_files_only``: these machines cannot reach a model hub at run time,
and a cluster should not either (bake the weights into the image or a mounted volume).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoFeatureExtractor, AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from coattn_dist.progress import verbose

if not verbose():  # "Loading weights: 100%" on every start is noise beside our own progress lines
    hf_logging.disable_progress_bar()


def _slug(name_or_path) -> str:
    """A short stable name for a model: its last path part plus a hash of the whole."""
    name = str(name_or_path)
    return f"{Path(name).name}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def tokenize(tokenizer, texts: list[str], max_tokens: int, tensors: str = "pt"):
    """Padded, truncated token ids and mask: what `HFTextEncoder` reads, and what its ONNX export
    (`query.onnx_encode`) is fed ("np")."""
    return tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_tokens, return_tensors=tensors
    )


class HFTextEncoder(nn.Module):
    """Texts -> token features (B, L, D) and their mask (B, L); True marks a real token."""

    def __init__(self, name_or_path: str, max_tokens: int = 48, device: str | torch.device = "cpu"):
        super().__init__()
        self.tokenizer = AutoTokenizer.from_pretrained(str(name_or_path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(name_or_path), local_files_only=True)
        self.max_tokens = max_tokens
        self.dim = self.model.config.hidden_size
        self.cache_key = f"{_slug(name_or_path)}-tok{max_tokens}"
        self.eval().requires_grad_(False).to(device)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def forward(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = tokenize(self.tokenizer, texts, self.max_tokens).to(self.device)
        hidden = self.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        return hidden.cpu(), batch["attention_mask"].bool().cpu()


class HFAudioEncoder(nn.Module):
    """Waveforms -> one (segments, D) tensor per clip.

    Transformer audio models emit a frame every ~20 ms; frames are average-pooled into segments
    of ``segment_hop_s`` so that every audio encoder gives the reranker sequences of similar length.
    """

    def __init__(
        self, name_or_path: str, segment_hop_s: float = 1.0, device: str | torch.device = "cpu"
    ):
        super().__init__()
        self.extractor = AutoFeatureExtractor.from_pretrained(
            str(name_or_path), local_files_only=True
        )
        self.model = AutoModel.from_pretrained(str(name_or_path), local_files_only=True)
        self.sample_rate = int(self.extractor.sampling_rate)
        self.dim = self.model.config.hidden_size
        self.segment_hop_s = segment_hop_s
        self.cache_key = f"{_slug(name_or_path)}-hop{segment_hop_s}"
        self.eval().requires_grad_(False).to(device)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def frame_counts(self, samples: list[int], total_frames: int) -> list[int]:
        lengths = getattr(self.model, "_get_feat_extract_output_lengths", None)
        if lengths is None:
            longest = max(samples)
            return [max(1, math.ceil(total_frames * n / longest)) for n in samples]
        return [max(1, int(lengths(torch.tensor(n)))) for n in samples]

    @torch.inference_mode()
    def forward(self, waves: list[np.ndarray]) -> list[torch.Tensor]:
        inputs = self.extractor(
            [np.asarray(w, dtype=np.float32) for w in waves],
            sampling_rate=self.sample_rate,
            padding=True,
            return_attention_mask=True,
            return_tensors="pt",
        ).to(self.device)
        hidden = self.model(**inputs).last_hidden_state  # (B, frames, D)
        counts = self.frame_counts([len(w) for w in waves], hidden.shape[1])
        out = []
        for h, n, w in zip(hidden, counts, waves):
            segments = max(1, round(len(w) / self.sample_rate / self.segment_hop_s))
            out.append(F.adaptive_avg_pool1d(h[:n].T[None], segments)[0].T.cpu())
        return out
