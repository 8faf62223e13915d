"""The query's route, one module per stage: `encode` (text -> token features and stage-1
vectors) -> `retrieve` (stage 1 in Milvus) -> `rerank` (the co-attention cascade over the
candidates, fused with stage 1). `search` chains the three in one process for `coattn search`;
the service (`serve/`) runs them as three deployments, so both rank alike. `embed` holds the
stage-1 batching and padding that indexing, training and evaluation share; `answer`, what a
search answers.

Nothing is imported here: only `encode` (and `search`, which uses it) load the text encoder's
libraries, and the retriever and reranker replicas must start without them, since a replica's
start is what an autoscaling step waits for.
"""
