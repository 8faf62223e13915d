"""Lever: aisfx's upper conv block trained with stage 1, on a CPU. The issue puts "unfreeze the
upper aisfx block" where a GPU makes it affordable; it is affordable here because the three lower
blocks stay frozen and run once: their output (256 x 12 x 12 per segment, float16) is cached, and
only block 4 (3.5 M weights, a quarter of the CNN's work) runs forward and backward each step.

Block 4 learns a *change* to its pretrained weights, w = w0 + `--scale` * delta, delta starting at
zero: AdamW's steps on delta are `--scale` times smaller on w than the projections' (a lower
learning rate for pretrained weights without a second optimiser), and weight decay pulls w back
towards w0, not towards zero. Its batch norms keep their pretrained statistics.

Same protocol as levers.py: every arm trains on sfx-train with the shipped recipe
(experiments/general.yaml) and is scored on sfx-val, concepts never trained on, over three seeds;
sfx-test, the outside package and all of ESC-50 are recorded beside it, never used to choose.
Both arms see at most `--crop` consecutive segments of a clip per step (what makes block 4's
backward pass affordable); "base, every segment" is the recipe as shipped, for reference.

    python experiments/upper_block.py DATA OUT --cache CACHE --zero-shot ESC50_DIR
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import torch
import torch.nn.functional as F
from levers import write_report  # experiments/, this script's folder
from safetensors.torch import load_file, save_file
from torch import nn

from coattn_dist.config import load_config
from coattn_dist.data import read_manifest
from coattn_dist.encoders import build_audio_encoder, build_text_encoder
from coattn_dist.features import Features, build_features, encode_clips
from coattn_dist.metrics import map_at_k
from coattn_dist.model import RetrievalModel, info_nce
from coattn_dist.progress import Progress, log_line
from coattn_dist.query.embed import pad_segments, pad_tokens, stage1_matrix
from coattn_dist.train.loops import fit, positive_pairs, seed_everything, stage1_loss


class LowerBlocks:
    """Waveforms -> blocks 1-3 of the frozen CNN, (segments, 256, 12, 12) per clip: an audio
    encoder for `features.encode_clips`, which decodes and records what fails."""

    def __init__(self, encoder):
        self.encoder, self.sample_rate = encoder, encoder.sample_rate

    @torch.inference_mode()
    def __call__(self, waves) -> list[torch.Tensor]:
        e, cnn = self.encoder, self.encoder.cnn
        out = []
        with torch.autocast("cpu", torch.bfloat16):
            for spec in e.spectrograms(waves):
                x = e.blocks(spec).unsqueeze(1)
                out.append(cnn.conv_block3(cnn.conv_block2(cnn.conv_block1(x, 2), 2), 2).half())
        return out


def lower_outputs(encoder, table: pa.Table, path: Path) -> dict[str, torch.Tensor]:
    """clip_id -> blocks 1-3's output (float16) for every clip of `table`, computed once and kept
    at `path`."""
    known = load_file(str(path)) if path.exists() else {}
    todo = table.filter(pc.invert(pc.is_in(table["clip_id"], pa.array(list(known), pa.string()))))
    if todo.num_rows:
        new, _ = encode_clips(LowerBlocks(encoder), todo, progress=Progress("lower blocks"))
        known.update((k, v.contiguous()) for k, v in new.items())
        save_file(known, str(path))
    return known


class UpperBlock(nn.Module):
    """aisfx's conv_block4 as w0 + scale * delta, then its pooling (mean over mels, max over
    time): (n, 256, 12, 12) -> (n, 512), the encoder's segment features."""

    def __init__(self, block: nn.Module, scale: float, trainable: bool):
        super().__init__()
        self.block, self.scale = block, scale
        self.w0 = {n: getattr(block, n).weight.detach().clone() for n in ("conv1", "conv2")}
        self.delta = nn.ParameterDict(
            {
                n: nn.Parameter(torch.zeros_like(w), requires_grad=trainable)
                for n, w in self.w0.items()
            }
        )
        for bn in (block.bn1, block.bn2):
            bn.weight.requires_grad_(trainable)
            bn.bias.requires_grad_(trainable)
        for conv in (block.conv1, block.conv2):
            conv.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.block
        b.eval()  # pretrained running statistics, whatever mode training is in
        w = {n: self.w0[n] + self.scale * self.delta[n] for n in self.w0}
        with torch.autocast("cpu", torch.bfloat16):
            x = F.relu(b.bn1(F.conv2d(x, w["conv1"], padding=1)))
            x = F.relu(b.bn2(F.conv2d(x, w["conv2"], padding=1)))
        return x.float().mean(dim=3).amax(dim=2)


def runs(segments: list[torch.Tensor], longest: int, gen: torch.Generator) -> list[torch.Tensor]:
    """Each clip as a random run of at most `longest` consecutive segments."""
    out = []
    for s in segments:
        if len(s) > longest:
            start = int(torch.randint(0, len(s) - longest + 1, (), generator=gen))
            s = s[start : start + longest]
        out.append(s)
    return out


def upper(block: UpperBlock, lowers: list[torch.Tensor]) -> list[torch.Tensor]:
    counts = [len(x) for x in lowers]
    return list(block(torch.cat(lowers).float()).split(counts))


def train_arm(cfg, data: Features, lower: list[torch.Tensor], val, far, block, crop: int | None):
    """Stage 1 (and block 4 when it trains) on `data`; sfx-val and the far sets' mAP@10."""
    model = RetrievalModel(cfg)
    module = nn.ModuleDict({"stage1": model.stage1, "upper": block})
    gen = torch.Generator().manual_seed(cfg.train.seed + 1)
    trains = any(p.requires_grad for p in block.parameters())

    def segments_of(clips_: list[int]) -> list[torch.Tensor]:
        if crop is None:
            return [data.segments[i] for i in clips_]
        with torch.set_grad_enabled(trains):
            return upper(block, runs([lower[i] for i in clips_], crop, gen))

    def loss_fn(batch: torch.Tensor) -> torch.Tensor:
        q, c = batch[:, 0], batch[:, 1]
        tokens = pad_tokens(model, [data.tokens[i] for i in q])
        segments = pad_segments(model, segments_of(c.tolist()))
        positives = data.relevant[q][:, c]
        return stage1_loss(model, tokens, segments, lambda lg: info_nce(lg, positives))

    def score(f: Features, f_lower: list[torch.Tensor]) -> float:
        with torch.no_grad():
            segments = f.segments if crop is None else upper(block, f_lower)
        return map_at_k(stage1_matrix(model, f.tokens, segments), f.relevant, 10)

    history = fit(
        module,
        loss_fn,
        positive_pairs(data),
        cfg.train,
        cfg.train.epochs,
        cfg.train.batch_size,
        torch.Generator().manual_seed(cfg.train.seed),
        "stage1",
        log_line(f"stage1 seed {cfg.train.seed}"),
        lambda: score(*val),
    )
    return max(e["val_mAP@10"] for e in history), {n: score(*f) for n, f in far.items()}


EVERY_SEGMENT, TRAINED = "base, every segment", "block 4 trained"


def report(results: dict, out: Path) -> None:
    """levers.md and levers.png, as experiments/levers.py writes them ("base" is the crop arm)."""
    far = {
        n: {t: [r[t] for r in rs if t in r] for t in rs[0] if t not in ("seed", "sfx-val")}
        for n, rs in results.items()
    }
    write_report(
        {
            "stage1": {n: sum(r["sfx-val"] for r in rs) / len(rs) for n, rs in results.items()},
            "stage1_seeds": {n: [r["sfx-val"] for r in rs] for n, rs in results.items()},
            "stage1_far": far,
            "reranker": {},
        },
        out,
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data", help="coattn prepare --sfx output folder")
    p.add_argument("out")
    p.add_argument("--cache", required=True, help="the feature cache of that corpus")
    p.add_argument("--zero-shot", help="the ESC-50 subset: all its clips, recorded")
    p.add_argument("--config", default="experiments/general.yaml")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--crop", type=int, default=4, help="segments per clip per step, both arms")
    p.add_argument("--scale", type=float, default=0.1, help="block 4's step relative to lr")
    p.add_argument("--report", action="store_true", help="only redraw OUT's report")
    p.add_argument("--arms", nargs="*", default=[EVERY_SEGMENT, "base", TRAINED])
    args = p.parse_args()
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.report:
        report(json.loads((out / "upper_block.json").read_text()), out)
        return 0
    # block 4 trains from cached lower-block outputs of the clean clips only: no recording
    # conditions in either arm (the arms were measured before they existed)
    clean = ["train.audio_aug=0"]
    cfg = load_config(args.config, clean)
    audio, text = build_audio_encoder(cfg.audio), build_text_encoder(cfg.text)
    paths = {
        "train": data / "sfx-train.csv",
        "sfx-val": data / "sfx-val.csv",
        "sfx-test": data / "sfx-test.csv",
        "outside": data / "outside.csv",
    }
    if args.zero_shot:
        paths["ESC-50 (all)"] = Path(args.zero_shot) / "meta" / "esc50.csv"
    tables = {n: read_manifest(str(p)) for n, p in paths.items()}
    feats = {n: build_features(audio, text, t, cache=args.cache) for n, t in tables.items()}
    lowers = lower_outputs(audio, pa.concat_tables(tables.values()), out / "lower.safetensors")
    lower = {n: [lowers[c] for c in f.clip_ids] for n, f in feats.items()}

    frozen = UpperBlock(copy.deepcopy(audio.cnn.conv_block4), 1.0, trainable=False)
    got = upper(frozen, lower["sfx-val"])
    cos = min(
        F.cosine_similarity(a, b, dim=1).min().item()
        for a, b in zip(got, feats["sfx-val"].segments)
    )
    print(
        f"cached lower blocks + block 4 against the cached features: min cosine {cos:.5f}",
        file=sys.stderr,
    )

    path = out / "upper_block.json"
    results = json.loads(path.read_text()) if path.exists() else {}  # earlier arms kept
    for arm in args.arms:
        trained = arm == TRAINED
        name = f"{arm}, step {args.scale:g} x lr" if trained else arm
        for seed in range(args.seeds):
            run_cfg = load_config(args.config, [*clean, f"train.seed={seed}"])
            seed_everything(seed)
            block = UpperBlock(copy.deepcopy(audio.cnn.conv_block4), args.scale, trained)
            crop = None if arm == EVERY_SEGMENT else args.crop
            val, far = train_arm(
                run_cfg,
                feats["train"],
                lower["train"],
                (feats["sfx-val"], lower["sfx-val"]),
                {n: (feats[n], lower[n]) for n in feats if n not in ("train", "sfx-val")},
                block,
                crop,
            )
            runs_ = [r for r in results.get(name, []) if r["seed"] != seed]
            results[name] = [*runs_, {"seed": seed, "sfx-val": val, **far}]
            print(f"{name} seed {seed}: sfx-val {val:.3f} {far}", file=sys.stderr, flush=True)
            path.write_text(json.dumps(results, indent=1))
    report(results, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
