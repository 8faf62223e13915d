"""The retrieval model, top to bottom.

Both stages read the frozen encoders' outputs: audio *segments* (B, N, 512) and text *tokens*
(B, L, 384), each with a boolean mask (True = real, False = padding).

1. ``DualEncoder`` (stage 1) projects and pools each modality on its own into one L2-normalised
   vector, so that a whole collection is embedded once and searched by cosine in Milvus;
   ``DualEncoderEnsemble`` puts several side by side in one vector of the same width.
2. ``CoAttentionReranker`` (stage 2) reads a (query, clip) pair *together*: a cascade of
   ``CoAttentionLayer``s (self-attention in each modality, then guided cross-attention both ways,
   then a feed-forward block) refines the alignment of words and segments. Cascades: ``single``,
   ``stacked:K`` (K layers, separate weights) and ``iterated:T`` (one layer applied T times, shared
   weights). ``AlignmentScore`` scores the pair from its word-to-segment alignment before anything
   is pooled: what the words find in the clip, and whether they find it in the caption's order.

Losses: symmetric multi-positive InfoNCE with a learned temperature for stage 1; the same over a
query's candidate list (in-batch clips plus hard negatives mined from stage 1) for stage 2, plus
the order-swapped caption as a negative for its own clip (``training.train_reranker``).
"""

from __future__ import annotations

import hashlib
import json
import math

import fsspec
import torch
import torch.nn.functional as F
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from coattn_dist.config import Config, from_dict

# -- sequences -------------------------------------------------------------------------------------


def pad_sequences(seqs: list[torch.Tensor], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Variable-length (n_i, D) tensors -> (B, N, D) zero-padded batch and its mask.

    Sequences longer than ``max_len`` are average-pooled down to it, keeping their time order.
    """
    seqs = [
        s if len(s) <= max_len else F.adaptive_avg_pool1d(s.T[None], max_len)[0].T for s in seqs
    ]
    n = max(len(s) for s in seqs)
    x = seqs[0].new_zeros(len(seqs), n, seqs[0].shape[-1])
    mask = torch.zeros(len(seqs), n, dtype=torch.bool, device=x.device)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
        mask[i, : len(s)] = True
    return x, mask


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


def relative_positions(mask: torch.Tensor) -> torch.Tensor:
    """Each real position's place in its sequence, from -1 (first) to 1 (last); 0 for padding and
    for a sequence of one. Relative, so that a caption's words and a clip's segments compare."""
    n = mask.sum(1, keepdim=True).to(torch.float32)
    idx = torch.arange(mask.shape[1], device=mask.device, dtype=torch.float32)[None]
    return torch.where(mask, (2 * idx - (n - 1)) / (n - 1).clamp_min(1.0), 0.0)


def sinusoids(length: int, dim: int, device=None) -> torch.Tensor:
    """Fixed positional encodings: no parameters, so clips longer than any seen in training work."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


def parse_cascade(spec: str) -> tuple[str, int]:
    """ "single" | "stacked:K" | "iterated:T" -> (kind, depth)."""
    kind, _, n = spec.partition(":")
    if kind == "single" and not n:
        return "stacked", 1
    if kind in ("stacked", "iterated") and n.isdigit() and int(n) >= 1:
        return kind, int(n)
    raise ValueError(
        f"cascade {spec!r}: expected 'single', 'stacked:K' or 'iterated:T' (K, T >= 1)"
    )


# -- stage 1: dual encoder -------------------------------------------------------------------------


class Projection(nn.Module):
    """Into the shared space. "mlp": a linear map plus a residual MLP, so stage 1 can bend the
    frozen encoder's geometry without losing the linear baseline. "linear": the map alone.
    "frozen": a fixed random rotation (orthogonal rows), never trained: the pretrained encoder's
    geometry kept whole, so words never seen in training land where the encoder puts them and the
    other side learns to meet them there (LiT's locked tower)."""

    def __init__(self, in_dim: int, dim: int, dropout: float, kind: str = "mlp"):
        super().__init__()
        if kind not in ("mlp", "linear", "frozen"):
            raise ValueError(f"projection {kind!r}: expected 'mlp', 'linear' or 'frozen'")
        self.linear = nn.Linear(in_dim, dim, bias=kind != "frozen")
        self.mlp = None
        if kind == "frozen":
            nn.init.orthogonal_(self.linear.weight)
            self.linear.weight.requires_grad_(False)
        elif kind == "mlp":
            self.mlp = nn.Sequential(
                nn.LayerNorm(dim),
                nn.Linear(dim, 2 * dim),
                nn.GELU(),
                nn.Dropout(dropout),
                nn.Linear(2 * dim, dim),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        return x if self.mlp is None else x + self.mlp(x)


class AttentionPool(nn.Module):
    """A learned score per position; the softmax over real positions weights the mean."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        w = self.score(x).squeeze(-1).masked_fill(~mask, float("-inf")).softmax(dim=1)
        return (w.unsqueeze(-1) * x).sum(1)


class Pool(nn.Module):
    def __init__(self, kind: str, dim: int):
        super().__init__()
        if kind not in ("mean", "attention"):
            raise ValueError(f"pooling {kind!r}: expected 'mean' or 'attention'")
        self.attention = AttentionPool(dim) if kind == "attention" else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_mean(x, mask) if self.attention is None else self.attention(x, mask)


class DualEncoder(nn.Module):
    """A projection and a pooling per side. ``model.pool_first`` picks, per side, whether the
    encoder's features are pooled before the projection (one vector projected) or after it
    (every token or segment projected, then pooled)."""

    def __init__(self, cfg: Config, dim: int | None = None):
        super().__init__()
        m, dim = cfg.model, dim or cfg.model.dim
        if m.pool_first not in ("none", "text", "audio", "both"):
            raise ValueError(f"pool_first {m.pool_first!r}: expected none, text, audio or both")
        self.audio_first = m.pool_first in ("audio", "both")
        self.text_first = m.pool_first in ("text", "both")
        self.audio_proj = Projection(m.audio_dim, dim, m.dropout, m.audio_projection)
        self.text_proj = Projection(m.text_dim, dim, m.dropout, m.text_projection)
        self.audio_pool = Pool(m.pooling, m.audio_dim if self.audio_first else dim)
        self.text_pool = Pool(m.pooling, m.text_dim if self.text_first else dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / m.temperature)))

    def embed_audio(self, segments: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.audio_first:
            return F.normalize(self.audio_proj(self.audio_pool(segments, mask)), dim=-1)
        return F.normalize(self.audio_pool(self.audio_proj(segments), mask), dim=-1)

    def embed_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.text_first:
            sentence = F.normalize(self.text_pool(tokens, mask), dim=-1)
            return F.normalize(self.text_proj(sentence), dim=-1)
        return F.normalize(self.text_pool(self.text_proj(tokens), mask), dim=-1)

    def parts(self) -> list[DualEncoder]:
        """What training fits, each with its own loss: this one."""
        return [self]


class DualEncoderEnsemble(nn.Module):
    """``model.members`` dual encoders from different initialisations, each ``dim / members``
    wide. A vector is the members' unit vectors side by side, scaled by 1/sqrt(members): still a
    unit vector, and one inner product in Milvus is the mean of the members' cosines. Members
    trained alike still err differently on words they never paired, and the mean cancels part of
    that (RESULTS.md, "Training levers"), at no extra width in the index."""

    def __init__(self, cfg: Config):
        super().__init__()
        n = cfg.model.members
        if cfg.model.dim % n:
            raise ValueError(f"model.dim {cfg.model.dim} must split evenly into {n} members")
        self.members = nn.ModuleList(DualEncoder(cfg, cfg.model.dim // n) for _ in range(n))

    def _joined(self, vectors: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(vectors, dim=-1) / math.sqrt(len(vectors))

    def embed_audio(self, segments: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self._joined([m.embed_audio(segments, mask) for m in self.members])

    def embed_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self._joined([m.embed_text(tokens, mask) for m in self.members])

    def parts(self) -> list[DualEncoder]:
        return list(self.members)


# -- stage 2: co-attention reranker ----------------------------------------------------------------


class Attention(nn.Module):
    """Multi-head attention of ``x`` over ``context``; padded context positions are never read."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor
    ) -> torch.Tensor:
        B, n, d = x.shape
        q = self.q(x).view(B, n, self.heads, -1).transpose(1, 2)
        k, v = self.kv(context).view(B, context.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=context_mask[:, None, None, :],
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out(y.transpose(1, 2).reshape(B, n, d))


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, mult * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mult * dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CoAttentionLayer(nn.Module):
    """Self-attention within each modality, guided cross-attention both ways, feed-forward.

    Every sub-block is pre-norm with a residual. Both cross-attentions read the other modality as it
    was *before* this layer's cross step, so text and audio are updated symmetrically.
    """

    def __init__(self, dim: int, heads: int, ffn_mult: int, dropout: float):
        super().__init__()
        block = lambda cls, *a: nn.ModuleDict({"text": cls(*a), "audio": cls(*a)})  # noqa: E731
        self.self_norm = block(nn.LayerNorm, dim)
        self.self_attn = block(Attention, dim, heads, dropout)
        self.cross_norm = block(nn.LayerNorm, dim)
        self.cross_attn = block(Attention, dim, heads, dropout)
        self.ffn_norm = block(nn.LayerNorm, dim)
        self.ffn = block(FeedForward, dim, ffn_mult, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, t, t_mask, a, a_mask):
        tn, an = self.self_norm["text"](t), self.self_norm["audio"](a)
        t = t + self.drop(self.self_attn["text"](tn, tn, t_mask))
        a = a + self.drop(self.self_attn["audio"](an, an, a_mask))
        tn, an = self.cross_norm["text"](t), self.cross_norm["audio"](a)
        t = t + self.drop(self.cross_attn["text"](tn, an, a_mask))  # words attend to segments
        a = a + self.drop(self.cross_attn["audio"](an, tn, t_mask))  # segments attend to words
        t = t + self.drop(self.ffn["text"](self.ffn_norm["text"](t)))
        a = a + self.drop(self.ffn["audio"](self.ffn_norm["audio"](a)))
        return t, a


class CoAttentionCascade(nn.Module):
    def __init__(self, spec: str, dim: int, heads: int, ffn_mult: int, dropout: float):
        super().__init__()
        kind, self.depth = parse_cascade(spec)
        n_layers = self.depth if kind == "stacked" else 1
        self.layers = nn.ModuleList(
            CoAttentionLayer(dim, heads, ffn_mult, dropout) for _ in range(n_layers)
        )

    def forward(self, t, t_mask, a, a_mask):
        for step in range(self.depth):
            t, a = self.layers[step % len(self.layers)](t, t_mask, a, a_mask)
        return t, a


class AlignmentScore(nn.Module):
    """Scores a co-attended pair from its word-to-segment alignment, before anything is pooled.

    Each word softly picks the segments it matches. *What*: the salience-weighted similarity of the
    words to the segments they pick. *When*: the weighted covariance of a word's place in the
    caption with the place of its segments in the clip, positive when the events happen in the
    caption's order. "A, then B" against a clip of B then A flips its sign, which no score of two
    pooled vectors can do.
    """

    def __init__(self, dim: int, sharpness: float, order_weight: float):
        super().__init__()
        self.salience = nn.Linear(dim, 1)
        self.log_sharpness = nn.Parameter(torch.tensor(math.log(sharpness)))
        self.order_weight = nn.Parameter(torch.tensor(order_weight))

    def forward(self, t, t_mask, a, a_mask) -> torch.Tensor:
        sim = F.normalize(t, dim=-1) @ F.normalize(a, dim=-1).transpose(1, 2)  # (B, L, N)
        pick = (
            (sim * self.log_sharpness.exp())
            .masked_fill(~a_mask[:, None, :], float("-inf"))
            .softmax(-1)
        )
        salience = self.salience(t).squeeze(-1)  # (B, L)
        weight = salience.masked_fill(~t_mask, float("-inf")).softmax(-1)
        what = (weight * (pick * sim).sum(-1)).sum(-1)
        word_place = relative_positions(t_mask)
        segment_place = (pick * relative_positions(a_mask)[:, None, :]).sum(-1)
        centred = lambda x: x - (weight * x).sum(-1, keepdim=True)  # noqa: E731
        when = (weight * centred(word_place) * centred(segment_place)).sum(-1)
        return what + self.order_weight * when


class CoAttentionReranker(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        m = cfg.model
        d = m.rerank_dim
        self.text_in = nn.Sequential(nn.Linear(m.text_dim, d), nn.LayerNorm(d))
        self.audio_in = nn.Sequential(nn.Linear(m.audio_dim, d), nn.LayerNorm(d))
        self.cascade = CoAttentionCascade(m.cascade, d, m.heads, m.ffn_mult, m.dropout)
        self.text_out = nn.LayerNorm(d)
        self.audio_out = nn.LayerNorm(d)
        self.score = AlignmentScore(d, m.align_sharpness, m.order_weight)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / m.temperature)))
        # stage 1's weight in the final score: chosen on validation after training and saved with
        # this reranker, so each cascade keeps its own (1.0 where the reranker cannot help); one
        # for queries of one event, one for queries naming several (data.scenes.several_events)
        self.register_buffer("fusion", torch.tensor(m.fusion))
        self.register_buffer("multi_fusion", torch.tensor(m.multi_fusion))

    def forward(self, tokens, token_mask, segments, segment_mask) -> torch.Tensor:
        """Scores of aligned pairs: row i of the text batch with row i of the audio batch -> (P,)."""
        d = self.text_out.normalized_shape[0]
        t = self.text_in(tokens) + sinusoids(tokens.shape[1], d, tokens.device)
        a = self.audio_in(segments) + sinusoids(segments.shape[1], d, segments.device)
        t, a = self.cascade(t, token_mask, a, segment_mask)
        return self.score(self.text_out(t), token_mask, self.audio_out(a), segment_mask)


# -- the whole model -------------------------------------------------------------------------------


class RetrievalModel(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.stage1 = DualEncoder(cfg) if cfg.model.members == 1 else DualEncoderEnsemble(cfg)
        self.reranker = CoAttentionReranker(cfg)

    def fuse(
        self,
        stage1_scores: torch.Tensor,
        stage2_scores: torch.Tensor,
        several: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The final ranking score: both are cosines, so a convex mix needs no calibration.
        `several` (bool, broadcast against the scores) marks pairs whose query names several
        events, which take the multi-event weight: order and co-occurrence are what the reranker
        sees and stage 1 pools away, so one weight cannot serve both kinds of query."""
        w = self.reranker.fusion
        if several is not None:
            w = torch.where(several, self.reranker.multi_fusion, w)
        return w * stage1_scores + (1.0 - w) * stage2_scores

    def fingerprint(self) -> str:
        """Names the stage-1 embedding space: checkpoints with the same fingerprint (same encoders,
        same stage-1 weights; rerankers may differ) put a clip at the same vector, so a collection
        indexed with one can be searched with the other, and with no other."""
        encoders = json.dumps([self.cfg.to_dict()["audio"], self.cfg.to_dict()["text"]])
        digest = hashlib.sha256(encoders.encode())
        for name, tensor in sorted(self.stage1.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def save(self, uri: str, storage_options: dict | None = None) -> None:
        """``uri`` is a folder (local or any fsspec URI): model.safetensors + config.json, and the
        reranker once more under rerankers/ so that several cascades can share one stage 1."""
        fs, root = fsspec.core.url_to_fs(uri, **(storage_options or {}))
        fs.makedirs(root, exist_ok=True)
        _write(fs, f"{root}/model.safetensors", self.state_dict())
        with fs.open(f"{root}/config.json", "w") as f:
            f.write(self.cfg.to_json())
        self.save_reranker(uri, storage_options)

    def save_reranker(self, uri: str, storage_options: dict | None = None) -> None:
        fs, root = fsspec.core.url_to_fs(uri, **(storage_options or {}))
        fs.makedirs(f"{root}/rerankers", exist_ok=True)
        _write(fs, _reranker_path(root, self.cfg.model.cascade), self.reranker.state_dict())

    @classmethod
    def load(
        cls,
        uri: str,
        cascade: str | None = None,
        storage_options: dict | None = None,
        map_location="cpu",
    ) -> RetrievalModel:
        """The checkpoint's model; with ``cascade``, its stage 1 with that cascade's reranker."""
        fs, root = fsspec.core.url_to_fs(uri, **(storage_options or {}))
        cfg = read_config(uri, storage_options)
        state = _read(fs, f"{root}/model.safetensors")
        if cascade is not None and cascade != cfg.model.cascade:
            path = _reranker_path(root, cascade)
            if not fs.exists(path):
                raise FileNotFoundError(
                    f"{uri} has no {cascade!r} reranker; it has {cascades(uri, storage_options)}"
                )
            cfg.model.cascade = cascade
            state = {k: v for k, v in state.items() if not k.startswith("reranker.")}
            state.update({f"reranker.{k}": v for k, v in _read(fs, path).items()})
        model = cls(cfg)
        if "reranker.multi_fusion" not in state:  # written before query kinds had their own weight
            state["reranker.multi_fusion"] = state["reranker.fusion"]
        missing = sorted(set(model.state_dict()) - set(state))
        if missing:
            raise ValueError(
                f"{uri} was written by an older model (it lacks {', '.join(missing[:3])}, ...): "
                "retrain it with coattn train or coattn demo"
            )
        model.load_state_dict(state)
        return model.to(map_location).eval()


def read_config(uri: str, storage_options: dict | None = None) -> Config:
    """A checkpoint's config without its weights: enough to size a collection or pick encoders."""
    fs, root = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    with fs.open(f"{root}/config.json", "r") as f:
        return from_dict(Config, json.load(f))


def cascades(uri: str, storage_options: dict | None = None) -> list[str]:
    """The cascades a checkpoint holds a reranker for."""
    fs, root = fsspec.core.url_to_fs(uri, **(storage_options or {}))
    names = [
        p.rsplit("/", 1)[-1].removesuffix(".safetensors")
        for p in fs.glob(f"{root}/rerankers/*.safetensors")
    ]
    return sorted(n.replace("-", ":") for n in names)


def _reranker_path(root: str, cascade: str) -> str:
    parse_cascade(cascade)
    return f"{root}/rerankers/{cascade.replace(':', '-')}.safetensors"


def _write(fs, path: str, state: dict[str, torch.Tensor]) -> None:
    with fs.open(path, "wb") as f:
        f.write(save_safetensors({k: v.detach().cpu().contiguous() for k, v in state.items()}))


def _read(fs, path: str) -> dict[str, torch.Tensor]:
    with fs.open(path, "rb") as f:
        return load_safetensors(f.read())


# -- losses ----------------------------------------------------------------------------------------


def info_nce(logits: torch.Tensor, positives: torch.Tensor, symmetric: bool = True) -> torch.Tensor:
    """Multi-positive InfoNCE: -log(sum over positives / sum over all), per row (and per column).

    ``positives[i, j]`` is True when clip j carries caption i, so the several captions of a clip
    (or several clips of one caption) are never pushed apart as negatives.
    """

    def one_way(lg, pos):
        keep = pos.any(dim=1)
        lg, pos = lg[keep], pos[keep]
        return (
            torch.logsumexp(lg, dim=1) - torch.logsumexp(lg.masked_fill(~pos, float("-inf")), dim=1)
        ).mean()

    loss = one_way(logits, positives)
    return (loss + one_way(logits.T, positives.T)) / 2 if symmetric else loss


def soft_info_nce(
    logits: torch.Tensor,
    positives: torch.Tensor,
    text_similarity: torch.Tensor,
    weight: float,
    temperature: float,
) -> torch.Tensor:
    """Symmetric InfoNCE against soft targets: ``1 - weight`` of each row's target on its
    positives, ``weight`` spread over the batch by how alike the frozen text encoder finds the
    captions (``text_similarity``, symmetric). A clip of "footsteps on sand" is then a near miss
    for "footsteps on gravel", not as wrong as a dog: the text encoder's sense of which sounds are
    related survives training, which is what a word never paired with audio has to go on.
    """

    def one_way(lg, pos, sim):
        keep = pos.any(dim=1)
        lg, pos, sim = lg[keep], pos[keep].float(), sim[keep]
        target = (1 - weight) * pos / pos.sum(dim=1, keepdim=True) + weight * torch.softmax(
            sim / temperature, dim=1
        )
        return -(target * torch.log_softmax(lg, dim=1)).sum(dim=1).mean()

    return (
        one_way(logits, positives, text_similarity)
        + one_way(logits.T, positives.T, text_similarity.T)
    ) / 2


def hard_negatives(stage1_scores: torch.Tensor, positives: torch.Tensor, n: int) -> torch.Tensor:
    """Indices (Q, n) of the n best-scoring *non-relevant* clips per query: the candidates stage 1
    confuses, which are exactly what the reranker must learn to push down."""
    masked = stage1_scores.masked_fill(positives, float("-inf"))
    return masked.topk(min(n, masked.shape[1]), dim=1).indices
