"""Deep metric learning for fastai: one-line ArcFace/CosFace/SphereFace/L2 heads, embeddings, kNN and t-SNE

Modules:

- `fastai_metric.all`: Everything a user calls: `from fastai_metric.all import *`. Helpers stay importable from their modules.
- `fastai_metric.distributed`: Distributed training through fastai's `distrib_ctx` on GPUs (nccl) and on CPUs (gloo), mining across processes with gradients to the local embeddings.
- `fastai_metric.evaluation`: `retrieval_metrics`: cmc@k, precision@k, map@k as open-metric-learning defines them and precision@1, R-precision, MAP@R as pytorch-metric-learning does, chunked over queries; clustering NMI/AMI; kNN classification accuracy.
- `fastai_metric.patches`: The only places where importing `fastai_metric` changes fastai itself: two fixes that let `distrib_ctx` train on CPUs, applied once, from here, and only to the fastai versions they were written against.
- `fastai_metric.precision`: `learn.to_amp('bf16')`: fastai's mixed precision on the device the data are on, the CPU included, through a subclass of fastai's `MixedPrecision` that only this method adds.
- `fastai_metric.search`: Exact nearest-neighbour search of a gallery, chunk by chunk (with a bfloat16 screen on large galleries) or through faiss, described by one `Search` object that every evaluation passes down.
- `fastai_metric.test_utils`: Small learners on synthetic data, an export round trip and brute-force references, shared by the notebooks and `tests/` (as `fastai.test_utils` serves fastai's). Not part of `fastai_metric.all`."""

__version__ = "0.0.1"
