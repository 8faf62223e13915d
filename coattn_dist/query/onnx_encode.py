"""Stage `encode` on ONNX Runtime: MiniLM and stage 1's text side exported as one graph from the
loaded checkpoint (the weights torch already loaded, so no network), cached on disk by what
determines it, and checked against the torch path before it answers anything. One query on one
CPU thread costs a fraction of torch eager (BENCHMARKS.md, "Query encoder"): the service's encode
stage and `coattn search` use it on CPUs; training and GPUs keep torch. The float32 graph ranks
exactly as torch does; the one with 8-bit weights and int8 products (`quantize`, runtime
"onnx-int8") is faster again but reorders near-ties, so it is there to be chosen, not the default."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import sys
import tempfile
import warnings
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import numpy as np
import torch
from torch import nn

from coattn_dist.encoders.huggingface import tokenize
from coattn_dist.model import RetrievalModel
from coattn_dist.query.embed import model_device

EXPORTS = Path.home() / ".cache" / "coattn" / "onnx"
# Queries the export is checked on before use: short and long, one word to a full scene.
PROBES = [
    "rain",
    "a dog barks while rain falls",
    "footsteps on gravel, then a door creaks open and slams shut",
    "a helicopter flies low overhead as sirens wail in the distance and a crowd cheers",
]
MIN_COSINE = 0.999  # per token and per vector, against torch
EXPORT_VERSION = 2  # how `export` builds the graph: a new one is not mistaken for an old file
WEIGHTS = ("fp32", "int8")
# MatMulNBits: 8-bit symmetric weights per block of 32 inputs, activations quantised per block too
# and multiplied in int8 (accuracy level 4). Blocks of 64 move token features to cosine 0.9988,
# under MIN_COSINE; float products (level 0) are 3x slower than float32 weights (BENCHMARKS.md).
INT8_BLOCK, INT8_ACCURACY_LEVEL = 32, 4


class ExportMismatch(RuntimeError):
    """The graph does not compute what torch does (an exporter bug, weights that do not survive
    8 bits): not used."""


class _QueryGraph(nn.Module):
    """(input_ids, attention_mask) -> token features (B, L, D) and stage-1 vectors (B, dim)."""

    def __init__(self, text_model: nn.Module, model: RetrievalModel):
        super().__init__()
        self.text_model, self.stage1 = text_model, model.stage1

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        hidden = self.text_model(input_ids=input_ids, attention_mask=attention_mask)
        hidden = hidden.last_hidden_state
        return hidden, self.stage1.embed_text(hidden, attention_mask.bool())


def export_path(model: RetrievalModel, text_encoder) -> Path:
    """Where the graph of this stage 1 with this text encoder lives; a new checkpoint or encoder
    gets a new file."""
    key = f"{model.fingerprint()}|{text_encoder.cache_key}|{torch.__version__}|{EXPORT_VERSION}"
    return EXPORTS / f"query-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"


def export(model: RetrievalModel, text_encoder, path: Path) -> Path:
    """Writes the graph to `path` atomically (replicas on one node may export at once)."""
    graph = _QueryGraph(text_encoder.model, model).eval()
    example = tokenize(text_encoder.tokenizer, PROBES[:2], text_encoder.max_tokens)
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=512)
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"[encode] exporting the query encoder for ONNX Runtime (once): {path}", file=sys.stderr)
    # the exporter's own chatter (progress prints, shape-naming warnings) stays out of view
    with _atomically(path) as tmp:
        with torch.no_grad(), warnings.catch_warnings(), redirect_stdout(io.StringIO()), _quiet():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph,
                (example["input_ids"], example["attention_mask"]),
                tmp,
                input_names=["input_ids", "attention_mask"],
                output_names=["tokens", "vectors"],
                dynamic_shapes={
                    "input_ids": {0: batch, 1: length},
                    "attention_mask": {0: batch, 1: length},
                },
                dynamo=True,
                optimize=True,
                external_data=False,
                verbose=False,
            )
        _fuse(tmp)
    return path


@contextmanager
def _atomically(path: Path):
    """A temporary file beside `path` to write, moved onto `path` when the block succeeds
    (replicas on one node may write the same graph at once; none reads half a file)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def _quiet(
    names: tuple[str, ...] = ("torch.onnx", "onnxscript", "onnx_ir"), level: int = logging.ERROR
):
    """The loggers `names` (by default the exporter's) at `level` or above for the block."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(loggers, levels):
            lg.setLevel(old)


def _fuse(path: str) -> None:
    """onnxscript's fusions for ONNX Runtime (attention, skip layer norm, bias GELU) in place:
    about 10 % off a query (BENCHMARKS.md)."""
    import onnx_ir as ir
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    graph = ir.load(path)
    with _quiet():
        graph, _ = optimize_for_ort(graph)
    ir.save(graph, path)


def quantized_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}-int8w{INT8_BLOCK}a{INT8_ACCURACY_LEVEL}.onnx")


def quantize(path: Path) -> Path:
    """The graph at `path` with its MatMuls' weights in 8 bits (MatMulNBits), written atomically
    beside it: the matrix products are most of a query's time and read 42 MB of float32 weights
    per query; a quarter of that in int8, multiplied with VNNI where the CPU has it."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    out = quantized_path(path)
    config = DefaultWeightOnlyQuantConfig(
        block_size=INT8_BLOCK, is_symmetric=True, accuracy_level=INT8_ACCURACY_LEVEL, bits=8
    )
    quantizer = MatMulNBitsQuantizer(onnx.load(str(path)), algo_config=config)
    # it logs one INFO line per node it leaves alone
    with _quiet(("onnxruntime.quantization.matmul_nbits_quantizer",), logging.WARNING):
        quantizer.process()
    with _atomically(out) as tmp:
        quantizer.model.save_model_to_file(tmp, False)
    return out


class OnnxQueryEncoder:
    """Same call as `QueryEncoder`: queries -> (each query's (n_tokens, D) features on the model's
    device, (Q, dim) vectors). `reference`: the torch encoder it must agree with; `weights`: the
    graph's, "fp32" or "int8" (`quantize`)."""

    def __init__(
        self,
        model: RetrievalModel,
        text_encoder,
        reference,
        threads: int | None = None,
        weights: str = "fp32",
    ):
        import onnxruntime as ort

        if weights not in WEIGHTS:
            raise ValueError(f"weights {weights!r}: expected one of {', '.join(WEIGHTS)}")
        if model_device(model).type != "cpu":
            raise ValueError("the ONNX query encoder runs on CPU; on a GPU use the torch one")
        # The tokenizer alone is kept: the torch weights are not needed once the graph exists.
        self.model, self.tokenizer = model, text_encoder.tokenizer
        self.max_tokens = text_encoder.max_tokens
        path = export_path(model, text_encoder)
        if not path.exists():
            export(model, text_encoder, path)
        if weights == "int8":
            path = quantized_path(path) if quantized_path(path).exists() else quantize(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        # Idle pool threads that spin after a run take the cores torch reranks on next, in the
        # same process (`coattn search`): 15 ms per rerank instead of 7 with two threads.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.path = path
        self._check(reference)

    def _run(self, queries: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        batch = tokenize(self.tokenizer, queries, self.max_tokens, "np")
        ids, mask = batch["input_ids"].astype(np.int64), batch["attention_mask"].astype(np.int64)
        tokens, vectors = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
        return tokens, vectors, mask.astype(bool)

    def __call__(self, queries: list[str]) -> tuple[list[torch.Tensor], np.ndarray]:
        tokens, vectors, mask = self._run(queries)
        device = model_device(self.model)
        return [torch.from_numpy(t[m]).to(device) for t, m in zip(tokens, mask)], vectors

    def _check(self, reference) -> None:
        """Refuses a graph that disagrees with torch on the probes (`ExportMismatch`)."""
        want_tokens, want_vectors = reference(PROBES)
        tokens, vectors = self(PROBES)
        worst = min(
            min(
                cosines(t.cpu().numpy(), w.cpu().numpy()).min() for t, w in zip(tokens, want_tokens)
            ),
            cosines(vectors, want_vectors).min(),
        )
        if worst < MIN_COSINE:
            raise ExportMismatch(
                f"{self.path} disagrees with torch (cosine {worst:.4f} < {MIN_COSINE}): "
                "delete it to export again, or use the torch encoder"
            )


def cosines(a, b) -> np.ndarray:
    """Row-wise cosine of two (..., D) arrays, in float64."""
    a, b = np.asarray(a), np.asarray(b)
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12)
