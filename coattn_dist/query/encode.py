"""Stage `encode`: query text -> token features (for the reranker) and stage-1 vectors (for
Milvus). The one module of the query path that loads the text encoder's libraries."""

from __future__ import annotations

import logging

import numpy as np
import torch

from coattn_dist.encoders import build_text_encoder
from coattn_dist.features import encode_texts
from coattn_dist.model import RetrievalModel
from coattn_dist.query.embed import embed_texts, model_device

# ONNX Runtime with float32 weights (ranks as torch does) or 8-bit ones (faster, reorders near-ties;
# BENCHMARKS.md, "Query encoder"), or torch itself.
RUNTIMES = ("onnx", "onnx-int8", "torch")
log = logging.getLogger("coattn.query")


def checked_runtime(runtime: str, name: str = "runtime") -> str:
    """`runtime` if it is one of RUNTIMES; a ValueError naming the setting (`name`) otherwise."""
    if runtime not in RUNTIMES:
        raise ValueError(f"{name} {runtime!r}: expected one of {', '.join(RUNTIMES)}")
    return runtime


class QueryEncoder:
    """The torch path: what training embeds with, and the reference the ONNX one is checked on."""

    def __init__(self, model: RetrievalModel, text_encoder):
        self.model, self.text_encoder = model, text_encoder

    @classmethod
    def for_model(
        cls, model: RetrievalModel, device: str | torch.device = "cpu", runtime: str = "onnx"
    ):
        """With the text encoder the model's config names (the one its stage 1 was trained on),
        on ONNX Runtime on a CPU (`query.onnx_encode`) unless `runtime` is "torch"; "onnx-int8"
        falls back to float32 weights where 8 bits disagree with torch. Torch on a GPU, and where
        no export agrees with torch (said in the log)."""
        checked_runtime(runtime)
        reference = cls(model, build_text_encoder(model.cfg.text, device))
        if runtime != "torch" and torch.device(device).type == "cpu":
            from coattn_dist.query.onnx_encode import ExportMismatch, OnnxQueryEncoder

            for weights in ("int8", "fp32") if runtime == "onnx-int8" else ("fp32",):
                try:
                    return OnnxQueryEncoder(
                        model, reference.text_encoder, reference, weights=weights
                    )
                except ExportMismatch as error:
                    log.warning("query encoder: %s weights refused: %s", weights, error)
            log.warning("query encoder stays on torch")
        return reference

    def __call__(self, queries: list[str]) -> tuple[list[torch.Tensor], np.ndarray]:
        """Each query's (n_tokens, D) features on the model's device, and the (Q, dim) vectors."""
        device = model_device(self.model)
        tokens = [t.to(device) for t in encode_texts(self.text_encoder, queries)]
        return tokens, embed_texts(self.model, tokens).cpu().numpy()
