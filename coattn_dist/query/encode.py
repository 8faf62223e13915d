"""Stage `encode`: query text -> token features (for the reranker) and stage-1 vectors (for
Milvus). The one module of the query path that loads the text encoder's libraries."""

from __future__ import annotations

import numpy as np
import torch

from coattn_dist.encoders import build_text_encoder
from coattn_dist.features import encode_texts
from coattn_dist.model import RetrievalModel
from coattn_dist.query.embed import embed_texts, model_device


class QueryEncoder:
    def __init__(self, model: RetrievalModel, text_encoder):
        self.model, self.text_encoder = model, text_encoder

    @classmethod
    def for_model(cls, model: RetrievalModel, device: str | torch.device = "cpu") -> QueryEncoder:
        """With the text encoder the model's config names: the one its stage 1 was trained on."""
        return cls(model, build_text_encoder(model.cfg.text, device))

    def __call__(self, queries: list[str]) -> tuple[list[torch.Tensor], np.ndarray]:
        """Each query's (n_tokens, D) features on the model's device, and the (Q, dim) vectors."""
        device = model_device(self.model)
        tokens = [t.to(device) for t in encode_texts(self.text_encoder, queries)]
        return tokens, embed_texts(self.model, tokens).cpu().numpy()
