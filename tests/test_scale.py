"Distributed training on CPU (gloo) through distrib_ctx, cross-process mining against one process, bfloat16 on the CPU."
import json, os, subprocess, sys, tempfile
from pathlib import Path
import numpy as np, pytest, torch
import torch.distributed as dist
from fastai.vision.all import *
from fastai_metric.all import *
from fastai_metric.metric_learner import get_miner, ModelWithLosses
from fastai_metric.distributed import world
from fastai_metric.distributed import _run_two
from fastai_metric.compare import METHODS

pytest.importorskip('accelerate')

def _losses():
    torch.manual_seed(0)                                                      # the same class centers in every process
    return {'center': MetricLoss(CenterLoss(8, 8), gather=True),'hard': TripletLossWithMiner(0.2, HardTripletsMiner()), 'all': TripletLossWithMiner(0.2, AllTripletsMiner()),
            'semihard': TripletLossWithMiner(0.2, get_miner('semihard')), 'cluster': TripletLossWithMiner(0.2, get_miner('cluster')),
            'metric_loss': MetricLoss(TripletLossWithMiner(0.1, AllTripletsMiner()), gather=True)}

def _global_batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 8, generator=g), torch.arange(8).repeat_interleave(4)[torch.randperm(32, generator=g)]

def _worker(rank, out):
    embs, lbls = _global_batch()
    part = slice(16*rank, 16*(rank+1))
    res = {}
    for name, loss in _losses().items():
        if hasattr(loss, 'gather'): loss.gather = True
        e = embs[part].clone().requires_grad_()
        l = loss(e, lbls[part])
        l.backward()
        res[name] = (l.detach(), e.grad, [p.grad for p in loss.parameters()])
    torch.save(res, Path(out)/f'{rank}.pt')

def test_gathered_loss_equals_one_process():
    "Two gloo processes, each half of a global batch: the loss equals one process's on the whole batch; after DDP's average, so do the gradients"
    embs, lbls = _global_batch()
    with tempfile.TemporaryDirectory() as d:
        _run_two(_worker, d)
        parts = [torch.load(Path(d)/f'{r}.pt') for r in range(2)]
    for name, loss in _losses().items():
        e = embs.clone().requires_grad_()
        l = loss(e, lbls); l.backward()
        for r in range(2):
            torch.testing.assert_close(parts[r][name][0], l.detach(), msg=name)          # the value of the global batch on each process
            torch.testing.assert_close(parts[r][name][1] / 2, e.grad[16*r:16*(r+1)], msg=name)   # DDP averages over 2 processes
        for i, p in enumerate(loss.parameters()):                                  # the loss's own parameters (class centers):
            torch.testing.assert_close((parts[0][name][2][i] + parts[1][name][2][i]) / 2, p.grad, msg=name)   # not scaled
        assert l > 0 and e.grad.abs().sum() > 0, name
    assert len(list(_losses()['center'].parameters())) == 1

def _state_batches():
    g = torch.Generator().manual_seed(1)
    return torch.randn(3, 2, 8, 6, generator=g), torch.randint(0, 4, (3, 2, 8), generator=g)   # steps x processes x items

def _state_worker(rank, out):
    "A DDP model (buffers broadcast from rank 0 before every forward) holding a memory miner and a hierarchical loss, gather=False"
    torch.manual_seed(0)
    model = ModelWithLosses(torch.nn.Linear(6, 8))
    mem, htl = TripletLossWithMiner(0.2, MemoryBankMiner(64)), HierarchicalTripletLoss(4, refresh_every=1000)
    model.loss_modules['mem'], model.loss_modules['htl'] = mem, htl
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    x, y = _state_batches()
    for step in range(3):
        e = ddp(x[step, rank])
        (mem(e, y[step, rank]) + htl(e, y[step, rank])).backward()
    torch.save({'mem': mem.miner.memory(), 'spread': htl.spread, 'level': htl.level, 'emb': model.model(x.view(-1, 6)).detach()},
               Path(out)/f'{rank}.pt')

def test_running_state_under_ddp_covers_every_process():
    "Memory and hierarchy statistics observe the batches of all processes, so DDP's broadcast of rank 0's buffers loses nothing"
    with tempfile.TemporaryDirectory() as d:
        _run_two(_state_worker, d)
        parts = [torch.load(Path(d)/f'{r}.pt') for r in range(2)]
    x, y = _state_batches()
    for r in range(2):
        mem, ml = parts[r]['mem']
        torch.testing.assert_close(mem, F.normalize(parts[r]['emb'], dim=1))   # step by step, rank by rank: all 48 items
        torch.testing.assert_close(ml, y.flatten())
    ref = HierarchicalTripletLoss(4, refresh_every=1000)
    ref.observe(parts[0]['emb'][:16], y[0].flatten())                          # one process seeing the first global batch
    for r in range(2):
        torch.testing.assert_close(parts[r]['spread'], ref.spread); torch.testing.assert_close(parts[r]['level'], ref.level)

def test_distrib_ctx_trains_on_two_cpu_processes():
    "Every conversion (heads, triplet/hierarchical/memory with gather=True, center loss, ArcFace + triplet) under `distrib_ctx`, torchrun, 2 CPU processes (gloo)"
    with tempfile.TemporaryDirectory() as d:
        out = Path(d)/'res.json'
        r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                            str(Path(__file__).parent/'dist_train.py'), str(out)], capture_output=True, text=True, timeout=300,
                           env={**os.environ, 'CUDA_VISIBLE_DEVICES': ''})   # the CPU run, also on a host with GPUs
        assert r.returncode == 0, r.stderr[-3000:]
        res = json.loads(out.read_text())
    assert len(res) == 11
    for name, v in res.items():
        assert v['world'] == 2, name
        assert np.isfinite(v['values']).all(), (name, v)
        assert v['n'] == 150 and v['lbl_equal'], (name, v)                   # gathered: every validation item once, in order
        assert v['emb_diff'] < 1e-4, (name, v)                                 # equal to one process's embeddings
        assert abs(v['live_recall'] - v['single_recall']) < 1e-6, (name, v)    # the live metric gathered across processes
        assert v['knn_in'] == v['knn_out'], (name, v)                         # knn_accuracy: gathered inside, alone outside

@pytest.mark.parametrize('method', list(METHODS))
def test_bf16_on_cpu_every_method(method):
    "Every method trains under bfloat16 autocast on the CPU: finite losses and embeddings"
    xtr, ytr, xva, yva = digits_arrays(sz=28)
    # one training and one validation batch: many CPUs emulate bfloat16 (20x slower than float32); finiteness is the question
    dls = array_dls(xtr[:32], ytr[:32], xva[:32], yva[:32], bs=32, device='cpu')
    set_seed(0, reproducible=True)
    learn = METHODS[method](vision_learner(dls, resnet18, pretrained=False)).to_amp('bf16')
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    assert np.isfinite(learn.recorder.values[-1]).all(), learn.recorder.values
    assert torch.isfinite(get_embeddings(learn)[0]).all()
