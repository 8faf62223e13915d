"""The query service as one Ray Serve application: Ingress (which encodes the query) -> Reranker
(which fetches its candidates from Milvus), and Ingress -> Retriever for stage-1 answers, queries
by sound and audio.

`serve run serve/config.yaml` calls `build(args)` with the config's `args` and applies each
deployment's options from the config itself; Python callers (`coattn demo`, the tests, the
benchmark) call `application()`, which reads the same file, so both paths deploy the same thing.
Checkpoint, Milvus URI and collection come from the environment (COATTN_CHECKPOINT,
COATTN_MILVUS_URI, COATTN_COLLECTION) when set, else from the config's args: one config file then
serves every environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import ray
import yaml
from ray import serve
from ray.serve import Application

from coattn_dist.checkpoints import resolve_checkpoint
from coattn_dist.model import RetrievalModel
from coattn_dist.query.encode import checked_runtime
from coattn_dist.runtime import quiet_ray
from serve.ingress import Ingress
from serve.reranker import Reranker
from serve.retriever import Retriever

CONFIG = Path(__file__).with_name("config.yaml")
ENV = {
    "checkpoint": "COATTN_CHECKPOINT",
    "milvus_uri": "COATTN_MILVUS_URI",
    "collection": "COATTN_COLLECTION",
}
DEPLOYMENTS = {d.name: d for d in (Ingress, Retriever, Reranker)}


@dataclass
class ServiceArgs:
    checkpoint: str
    milvus_uri: str
    collection: str
    storage_options: dict = field(default_factory=dict)  # fsspec options: checkpoint and audio
    deadlines: dict = field(default_factory=dict)  # seconds per stage (serve.ingress.Deadlines)
    query_encoder: str = "onnx"  # QueryEncoder.for_model's runtime in the ingress

    @classmethod
    def resolve(cls, args: dict) -> ServiceArgs:
        """The environment over `args`, the shipped checkpoint when neither names one; a relative
        local checkpoint becomes absolute, since replicas need not share the caller's working
        directory."""
        values = {name: os.environ.get(var) or args.get(name) for name, var in ENV.items()}
        values["checkpoint"] = resolve_checkpoint(values["checkpoint"])
        missing = [f"{name} (or ${ENV[name]})" for name, value in values.items() if not value]
        if missing:
            raise ValueError(f"the service needs {', '.join(missing)}")
        if values["milvus_uri"].endswith(".db"):
            raise ValueError(
                f"{values['milvus_uri']} is a Milvus Lite file, which one process "
                "owns: serve it with `milvus-lite server --data-dir ... --host "
                "127.0.0.1` and give its http:// URI"
            )
        query_encoder = checked_runtime(args.get("query_encoder") or "onnx", "query_encoder")
        if "://" not in values["checkpoint"] and Path(values["checkpoint"]).exists():
            values["checkpoint"] = str(Path(values["checkpoint"]).resolve())
        return cls(
            **values,
            storage_options=dict(args.get("storage_options") or {}),
            deadlines=dict(args.get("deadlines") or {}),
            query_encoder=query_encoder,
        )


def build(args: dict) -> Application:
    """The entry point `serve run` calls (it applies the config's deployment options itself)."""
    return compose(args, {})


def compose(args: dict, options: dict[str, dict]) -> Application:
    """The application graph; `options` per deployment name as `Deployment.options` takes them.
    The reranker gets a GPU when the cluster has one."""
    service = ServiceArgs.resolve(args)
    # Loading the checkpoint here fails fast on a bad path and tells the retriever the vector size
    # and the fingerprint the collection must carry (a collection of another checkpoint is refused).
    model = RetrievalModel.load(service.checkpoint, storage_options=service.storage_options)
    dim, fingerprint = model.cfg.model.dim, model.fingerprint()
    options = dict(options)
    if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) >= 1:
        options["Reranker"] = _merged(
            {"ray_actor_options": {"num_gpus": 1}}, options.get("Reranker", {})
        )

    def deployment(name: str):
        return DEPLOYMENTS[name].options(**options[name]) if name in options else DEPLOYMENTS[name]

    retriever = deployment("Retriever").bind(
        service.milvus_uri, service.collection, dim, fingerprint, model.cfg.model.like_fusion
    )
    # The reranker fetches its candidates itself: their features reach no other replica.
    reranker = deployment("Reranker").bind(
        service.checkpoint, service.storage_options, service.milvus_uri, service.collection
    )
    return deployment("Ingress").bind(
        service.checkpoint,
        retriever,
        reranker,
        service.storage_options,
        service.deadlines,
        service.query_encoder,
    )


def application(
    args: dict | None = None, deployments: dict[str, dict] | None = None, config: Path = CONFIG
) -> Application:
    """What `serve run config` deploys, with `args` over the config's args and `deployments`
    (name -> options) over its deployment settings."""
    app = yaml.safe_load(config.read_text())["applications"][0]
    options = {d["name"]: {k: v for k, v in d.items() if k != "name"} for d in app["deployments"]}
    for name, extra in (deployments or {}).items():
        options[name] = _merged(options.get(name, {}), extra)
    return compose({**app.get("args", {}), **(args or {})}, options)


def http_options(config: Path = CONFIG) -> dict:
    return yaml.safe_load(config.read_text())["http_options"]


def run(
    args: dict | None = None,
    deployments: dict[str, dict] | None = None,
    port: int | None = None,
    name: str = "coattn",
    route_prefix: str = "/",
) -> str:
    """Start Serve on loopback (at `port`, else the config's) and deploy at `route_prefix`;
    returns the app's base URL."""
    http = {**http_options(), **({"port": port} if port else {})}
    quiet_ray()
    serve.start(http_options=http)
    serve.run(application(args, deployments), name=name, route_prefix=route_prefix)
    return f"http://{http['host']}:{http['port']}{route_prefix.rstrip('/')}"


def _merged(base: dict, extra: dict) -> dict:
    """`extra` over `base`, one level deep (so autoscaling_config keys merge, not replace)."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            {**out[key], **value}
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out
