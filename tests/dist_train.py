"""A 2-process training run through fastai's `distrib_ctx`, launched by tests/test_scale.py on the CPU (gloo, with
`CUDA_VISIBLE_DEVICES=''`) and by tests/test_cuda.py on 2 GPUs (nccl):
`python -m torch.distributed.run --standalone --nproc_per_node 2 tests/dist_train.py OUT.json`.
Rank 0 writes, for each conversion, the losses, the largest difference between the embeddings gathered across processes and
one process's own, and the live recall@1 against the value computed from one process's embeddings."""
import json, sys, warnings
warnings.filterwarnings('ignore')
import numpy as np, torch
import torch.distributed as dist
from fastai.vision.all import *
from fastai_metric.all import *
from fastai_metric.distributed import world

CONVERSIONS = {'arcface': lambda l: l.to_arcface(),
               'triplet_gather': lambda l: l.to_triplet(n_classes=4, n_instances=8, gather=True, seed=0),
               'center_loss': lambda l: l.add_center_loss(),
               'cosface': lambda l: l.to_cosface(), 'sphereface': lambda l: l.to_sphereface(),
               'l2_constrained': lambda l: l.to_l2_constrained(), 'subcenter_arcface': lambda l: l.to_subcenter_arcface(),
               'adaface': lambda l: l.to_adaface(), 'arcface_triplet': lambda l: l.to_arcface().add_triplet(),
               'hierarchical_gather': lambda l: l.to_metric_loss(HierarchicalTripletLoss(10), n_classes=4, n_instances=8, seed=0, gather=True),
               'memory_gather': lambda l: l.to_triplet(n_classes=4, n_instances=8, seed=0, gather=True, memory=128)}

def run(name, data):
    xtr, ytr, xva, yva = data
    dls = array_dls(xtr, ytr, xva, yva, bs=32)              # on this process's GPU (set below), or the CPU
    set_seed(0, reproducible=True)
    learn = CONVERSIONS[name](vision_learner(dls, resnet18, pretrained=False, metrics=[RecallAtK(1)]))
    with learn.no_bar(), learn.distrib_ctx():
        learn.fit(1, 1e-3)
        vals = dict(zip(learn.recorder.metric_names[1:-1], learn.recorder.values[-1]))   # read before get_preds resets it
        gathered, gl = get_embeddings(learn)                    # inside the context: each process embeds its part, then all_gather
        knn_in = knn_accuracy(learn)
    alone, al = get_embeddings(learn)                           # one process, the whole validation set
    single = retrieval_metrics(alone, al, topk=(1,))['cmc@1']
    knn_out = knn_accuracy(learn)
    return dict(values=[float(v) for v in vals.values()], n=len(gathered), emb_diff=float((gathered - alone).abs().max()),
                lbl_equal=bool((gl == al).all()), live_recall=float(vals['recall@1']), single_recall=float(single),
                knn_in=knn_in, knn_out=knn_out, world=dist.get_world_size() if dist.is_initialized() else 1)

if __name__ == '__main__':
    # each process's GPU first: DataLoaders made before it would all put their statistics on cuda:0
    if torch.cuda.is_available(): torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
    torch.set_num_threads(1)
    xtr, ytr, xva, yva = digits_arrays(sz=16)
    data = (xtr[:256], ytr[:256], xva[:150], yva[:150])     # 8 training batches: the question is the plumbing
    res = {name: run(name, data) for name in CONVERSIONS}
    if not int(os.environ.get('RANK', 0)): Path(sys.argv[1]).write_text(json.dumps(res))
    if dist.is_initialized(): dist.destroy_process_group()
