"""What a reading of the code for GPU and DDP failures found, reproduced on the CPU: each test fails without its fix.
The cases that need a GPU are in tests/test_cuda.py; the distributed ones (gloo processes) in tests/test_scale.py."""
import numpy as np, pytest, torch
from fastai.vision.all import *
from fastai_metric.all import *

@pytest.fixture(scope='module')
def small():
    xtr, ytr, xva, yva = digits_arrays(sz=28)
    return xtr[:256], ytr[:256], xva[:64], yva[:64]

def _learn(small, **kwargs):
    set_seed(0, reproducible=True)
    return vision_learner(array_dls(*small, bs=32, device='cpu'), resnet18, pretrained=False, **kwargs)

def _fit(learn, epochs=1):
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs, 1e-3)
    return learn

@pytest.mark.parametrize('convert', [lambda l: l.to_arcface(), lambda l: l.add_center_loss(),
                                     lambda l: l.to_triplet(n_classes=4, n_instances=8)], ids=['arcface', 'center_loss', 'live_metric'])
def test_data_parallel_is_refused(small, convert):
    "`to_parallel()` (nn.DataParallel) splits batches across replicas that share labels and hooks: refused, pointing to distrib_ctx"
    learn = convert(_learn(small, metrics=[RecallAtK(1)])).to_parallel()
    with pytest.raises(ValueError, match='distrib_ctx'): _fit(learn)
    learn = convert(_learn(small)).to_parallel()
    with pytest.raises(ValueError, match='distrib_ctx'): get_embeddings(learn)

class _NanValid(Callback):
    "Validation inputs made NaN: the embeddings diverge, as after an fp16 overflow"
    def before_batch(self):
        if not self.training: self.learn.xb = (self.xb[0] * float('nan'),)

def test_live_metrics_show_nan_instead_of_aborting_fit(small):
    learn = _fit(_learn(small, metrics=[RecallAtK(1), MapAtR()], cbs=_NanValid()))
    vals = dict(zip(learn.recorder.metric_names[1:-1], learn.recorder.values[-1]))
    assert np.isnan(vals['recall@1']) and np.isnan(vals['map@r']) and np.isfinite(vals['train_loss'])

def test_metric_loss_computes_in_float32_under_autocast():
    "The user's (or pytorch-metric-learning's) loss and miner get float32 embeddings, with autocast off"
    seen = []
    def miner(e, l): seen.append(('miner', e.dtype, (e @ e.T).dtype)); return HardTripletsMiner()(e, l)
    def loss(e, l, idx): seen.append(('loss', e.dtype, (e @ e.T).dtype)); return e.pow(2).mean()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = MetricLoss(loss, miner)(torch.randn(8, 4).bfloat16(), torch.arange(8) % 2)
    assert seen == [('miner', torch.float32, torch.float32), ('loss', torch.float32, torch.float32)] and out.dtype == torch.float32

def test_interpretation_of_training_set_after_to_triplet(small):
    "The P×K sampler of the training loader is not used to embed it: every training item once, in order"
    learn = _learn(small).to_triplet(n_classes=4, n_instances=8)
    interp = MetricInterpretation.from_learner(learn, ds_idx=0)
    test_eq(len(interp.lbls), len(learn.dls.train_ds))
    test_eq(interp.lbls, get_embeddings(learn, 0)[1])

def test_memory_learner_save_and_load(small, tmp_path):
    "A trained `to_triplet(memory=...)` learner's weights load into a fresh learner (the memory is allocated at the first batch)"
    learn = _fit(_learn(small).to_triplet(n_classes=4, n_instances=8, memory=64))
    learn.path = tmp_path; learn.save('memory')
    fresh = _learn(small).to_triplet(n_classes=4, n_instances=8, memory=64)
    fresh.path = tmp_path; fresh.load('memory')
    mem = lambda l: l.model.loss_modules['loss'].miner.memory()
    test_eq(mem(fresh)[0], mem(learn)[0]); test_eq(mem(fresh)[1], mem(learn)[1]); assert len(mem(learn)[0]) == 64

def _no_sync(*args, **kwargs): raise AssertionError('a host sync (a tensor read back) in the training step')

def test_running_state_updates_read_nothing_back(monkeypatch):
    "SphereFace's annealing, AdaFace's norm statistics, the memory and the hierarchy's margins stay on the device (no host sync)"
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 8, generator=g), torch.arange(16) % 4
    sphere, ada, mem = SphereProduct(8, 4).train(), AdaFaceProduct(8, 4).train(), MemoryBankMiner(32).train()
    htl = HierarchicalTripletLoss(4); htl.observe(x, y)
    for attr in ('item', '__bool__', '__int__', '__float__', 'tolist'): monkeypatch.setattr(torch.Tensor, attr, _no_sync)
    sphere.margin(F.normalize(x, dim=1)[:, :1]); ada.quality(x); mem(x, y); mem(x, y); htl.margins(y, y.flip(0))
    monkeypatch.undo()
    test_eq(sphere.n_iter.item(), 1); test_eq(mem.n.item(), 32); assert ada.batch_mean.item() != 20.
