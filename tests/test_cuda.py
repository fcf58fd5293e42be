"""The GPU suite: skipped where CUDA is not available. `tools/gpu_check.sh` runs it with a short benchmark.

`FASTAI_METRIC_TEST_DEVICE=cpu pytest tests/test_cuda.py` runs the same checks against the CPU (a dry run of the suite's own logic;
the cases that only a GPU can show — GradScaler, peak GPU memory, host syncs, two GPUs — are skipped there)."""
import json, os, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np, pytest, torch
from fastai.vision.all import *
from fastai.callback.fp16 import MixedPrecision
from fastai_metric.all import *
from fastai_metric.classifier import embedding_layer
from fastai_metric.tsne import subsample_idxs, tsne_figure
from fastai_metric.metric_learner import get_miner
from fastai_metric.search import distinct_rows, ranked_chunks, rank_gallery
from fastai_metric.distributed import world
from fastai_metric.compare import METHODS

DEV = torch.device(os.environ.get('FASTAI_METRIC_TEST_DEVICE', 'cuda'))
CUDA = DEV.type == 'cuda'
pytestmark = pytest.mark.skipif(CUDA and not torch.cuda.is_available(), reason='needs a GPU (CUDA)')
needs_cuda = pytest.mark.skipif(not CUDA, reason='only a GPU shows this')
PRECISIONS = {'fp32': lambda l: l, 'fp16': lambda l: l.to_fp16(), 'bf16': lambda l: l.to_bf16()}

@pytest.fixture(scope='module')
def small():
    xtr, ytr, xva, yva = digits_arrays(sz=28)
    return xtr[:512], ytr[:512], xva[:128], yva[:128]

def _learn(small, bs=64, **kwargs):
    set_seed(0, reproducible=True)
    return vision_learner(array_dls(*small, bs=bs, device=DEV), resnet18, pretrained=False, **kwargs)

def _fit(learn, epochs=1, lr=1e-3):
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs, lr)
    return learn

def _state(model): return list(model.named_parameters()) + list(model.named_buffers())

@pytest.mark.parametrize('precision', list(PRECISIONS))
@pytest.mark.parametrize('method', list(METHODS))
def test_every_method_trains(small, method, precision):
    "One epoch: finite losses, every parameter and buffer on the GPU, embeddings back on the CPU in float32, finite metrics"
    learn = _fit(PRECISIONS[precision](METHODS[method](_learn(small))))
    assert np.isfinite(learn.recorder.values[-1]).all(), learn.recorder.values
    wrong = [n for n, t in _state(learn.model) if t is not None and t.device.type != DEV.type]
    assert not wrong, f'not on {DEV}: {wrong}'
    embs, lbls = get_embeddings(learn)
    assert embs.device.type == 'cpu' and embs.dtype == torch.float32 and torch.isfinite(embs).all()
    res = retrieval_metrics(embs, lbls)
    assert all(np.isfinite(v) for k, v in res.items() if k != 'n_lone'), res

def _heads():
    return {'arcface': ArcMarginProduct(16, 5), 'cosface': AddMarginProduct(16, 5), 'sphereface': SphereProduct(16, 5),
            'l2': L2ConstrainedLinear(16, 5), 'subcenter': SubCenterArcMarginProduct(16, 5), 'adaface': AdaFaceProduct(16, 5)}

@pytest.mark.parametrize('name', list(_heads()))
def test_heads_equal_on_cpu_and_gpu(name):
    "The same head, inputs and labels: GPU float32 equals CPU (training and eval); under fp16 autocast the logits stay float32 and close"
    torch.manual_seed(0)
    cpu, gpu = _heads()[name], _heads()[name]
    gpu.load_state_dict(cpu.state_dict()); gpu.to(DEV)
    x, y = torch.randn(32, 16) * 5, torch.randint(0, 5, (32,))
    for mode in (True, False):                       # training updates running state (SphereFace's annealing, AdaFace's norms)
        cpu.train(mode); gpu.train(mode)
        ref = cpu(x, y)
        torch.testing.assert_close(gpu(x.to(DEV), y.to(DEV)).cpu(), ref, atol=1e-3, rtol=1e-4)
    half_dtype = torch.float16 if CUDA else torch.bfloat16
    with torch.autocast(DEV.type, dtype=half_dtype): half = gpu(x.to(DEV).to(half_dtype), y.to(DEV))
    assert half.dtype == torch.float32 and torch.isfinite(half).all()
    err = (half.cpu() - ref).abs().max()
    assert err < 0.02 * ref.abs().max(), err

def _losses():
    torch.manual_seed(0)
    return {'hard': TripletLossWithMiner(0.2, HardTripletsMiner()), 'all': TripletLossWithMiner(0.2, AllTripletsMiner()),
            'semihard': TripletLossWithMiner(0.2, get_miner('semihard')), 'cluster': TripletLossWithMiner(0.2, HardClusterMiner()),
            'soft': TripletLossWithMiner(None), 'center': CenterLoss(4, 16), 'hierarchical': HierarchicalTripletLoss(4),
            'memory': TripletLossWithMiner(0.2, MemoryBankMiner(64))}

@pytest.mark.parametrize('name', list(_losses()))
def test_losses_and_miners_equal_on_cpu_and_gpu(name):
    "Loss values and gradients (and the mined triplets) equal between the CPU and the GPU in float32; float32 out of fp16 autocast"
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 16, generator=g), torch.arange(4).repeat(8)
    res = {}
    for dev in ('cpu', DEV):
        loss = _losses()[name].to(dev)
        e = x.to(dev).requires_grad_()
        l = loss(e, y.to(dev)); l = l + loss(e, y.to(dev))     # twice: running state (memory, tree) used on the second call
        l.backward()
        res[str(dev)] = (l.detach().cpu(), e.grad.cpu())
        with torch.autocast(e.device.type, dtype=torch.float16 if e.device.type == 'cuda' else torch.bfloat16):
            lh = loss(x.to(dev).to(torch.float16 if e.device.type == 'cuda' else torch.bfloat16), y.to(dev))
        assert lh.dtype == torch.float32 and torch.isfinite(lh), (name, lh)
    (lc, gc), (lg, gg) = res['cpu'], res[str(DEV)]
    torch.testing.assert_close(lg, lc, atol=1e-4, rtol=1e-4); torch.testing.assert_close(gg, gc, atol=1e-4, rtol=1e-3)
    if name in ('hard', 'all', 'semihard'):
        m = _losses()[name].miner
        test_eq([t.cpu() for t in m(x.to(DEV), y.to(DEV))], list(m(x, y)))

def test_user_miner_returning_cpu_indices():
    "A user's miner that answers on the CPU for GPU embeddings"
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(32, 16, generator=g), torch.arange(4).repeat(8)
    cpu_miner = lambda e, l: tuple(t.cpu() for t in HardTripletsMiner()(e, l))
    ref = TripletLossWithMiner(0.2, cpu_miner)(x, y)
    torch.testing.assert_close(TripletLossWithMiner(0.2, cpu_miner)(x.to(DEV), y.to(DEV)).cpu(), ref)

def test_subcenter_helpers_after_fit(small):
    learn = _fit(_learn(small).to_subcenter_arcface(k=3), 2)
    idxs, angles = learn.subcenter_noise(max_angle=0.)
    assert idxs.device.type == 'cpu' and angles.device.type == 'cpu' and len(idxs) == len(learn.dls.train_ds)
    learn.drop_subcenters()
    head = [m for m in learn.model.modules() if isinstance(m, ArcMarginProduct)][-1]
    assert type(head) is ArcMarginProduct and head.weight.device.type == DEV.type
    _fit(learn)
    assert np.isfinite(learn.recorder.values[-1]).all()

def test_public_api_takes_gpu_tensors():
    "Search, metrics, verification, open set and t-SNE helpers fed GPU tensors give the CPU answer"
    g = torch.Generator().manual_seed(3)
    q, g_, ql, gl = torch.randn(200, 16, generator=g), torch.randn(5000, 16, generator=g), torch.arange(200) % 10, torch.arange(5000) % 10
    d = lambda t: t.to(DEV)
    for screen in (False, True):
        a, b = rank_gallery(q, g_, 10, screen=screen), rank_gallery(d(q), d(g_), 10, screen=screen)
        test_eq(b[1].cpu(), a[1]); torch.testing.assert_close(b[0].cpu(), a[0])
    test_eq(knn(d(q), d(g_), 5)[1].cpu(), knn(q, g_, 5)[1])
    test_eq([p[2] for p in ranked_chunks(d(q), d(g_), 3)][0].cpu(), list(ranked_chunks(q, g_, 3))[0][2])
    test_eq(retrieval_metrics(d(q), d(ql), d(g_), d(gl)), retrieval_metrics(q, ql, g_, gl))
    test_eq(retrieval_metrics(d(q), d(ql), cluster=True), retrieval_metrics(q, ql, cluster=True))
    test_eq(distinct_rows(d(g_))[1], None)
    test_eq(cluster_scores(d(q), d(ql)), cluster_scores(q, ql))
    test_eq(open_set_auroc(d(g_), d(q), d(ql < 5)), open_set_auroc(g_, q, ql < 5))
    test_eq(tpr_at_fpr(d(q[:, 0]), d(q[:, 1]), 0.1), tpr_at_fpr(q[:, 0], q[:, 1], 0.1))
    test_eq(identification_rate(d(q), d(ql), d(g_[:100]), d(gl[:100]), d(g_[100:300])),
            identification_rate(q, ql, g_[:100], gl[:100], g_[100:300]))
    test_eq(subsample_idxs(200, 50, d(ql)), subsample_idxs(200, 50, ql))
    xy = tsne_2d(d(q), n_jobs=1)
    test_close(xy, tsne_2d(q, n_jobs=1))
    plot_2d(d(torch.tensor(xy)), d(ql)); tsne_figure(d(q), d(ql), n_max=100)
    plt.close('all')

class _Inject(Callback):
    "Make the embeddings of one training batch overflow (an inf row, a NaN row), as fp16 activations sometimes do"
    def before_batch(self):
        if self.training and self.iter == 2:
            self.h = embedding_layer(get_model(self.learn.model)).register_forward_pre_hook(self._poison)
    def after_batch(self):
        if getattr(self, 'h', None) is not None: self.h.remove(); self.h = None
    @staticmethod
    def _poison(m, args):
        x = args[0].clone(); x[0] = float('inf'); x[1] = float('nan')
        return (x, *args[1:])

@needs_cuda
@pytest.mark.parametrize('method', ['adaface', 'triplet_memory', 'hierarchical', 'sphereface'])
def test_overflowing_batch_under_fp16_leaves_state_finite(small, method):
    "GradScaler skips the overflowing step; the running state (norm statistics, memory, class statistics) stays finite"
    learn = _fit(METHODS[method](_learn(small, cbs=_Inject())).to_fp16(), 2)
    bad = [n for n, t in _state(learn.model) if t is not None and t.is_floating_point() and not torch.isfinite(t).all()]
    assert not bad, bad
    assert np.isfinite(learn.recorder.values[-1][1])                 # the validation loss after the skipped step
    assert torch.isfinite(get_embeddings(learn)[0]).all()

@needs_cuda
def test_adaface_under_non_native_fp16(small):
    "`to_non_native_fp16()` casts the model, buffers included, to half: AdaFace's running statistics still update"
    learn = _fit(_learn(small).to_adaface().to_non_native_fp16())
    head = [m for m in learn.model.modules() if isinstance(m, AdaFaceProduct)][0]
    assert np.isfinite(learn.recorder.values[-1]).all() and head.batch_mean.item() != 20.

class _Seen(Callback):
    order = MixedPrecision.order + 1
    def after_batch(self):
        if self.training: self.learn.seen = (self.learn.scaler.is_enabled(), [c for c in self.learn.cbs if isinstance(c, MixedPrecision)][0].autocast)

@needs_cuda
def test_fp16_keeps_fastais_cuda_autocast_and_scaler(small):
    learn = _fit(_learn(small, cbs=_Seen()).to_arcface().to_fp16())
    enabled, ac = learn.seen
    assert enabled and ac.device == 'cuda' and ac.fast_dtype == torch.float16
    learn = _fit(_learn(small, cbs=_Seen()).to_arcface().to_bf16())
    enabled, ac = learn.seen
    assert not enabled and ac.device == 'cuda' and ac.fast_dtype == torch.bfloat16

@needs_cuda
def test_get_embeddings_peak_memory_does_not_grow_with_the_dataset(small):
    xtr, ytr, xva, yva = small
    peaks = []
    for reps in (1, 8):
        set_seed(0)
        dls = array_dls(xtr, ytr, np.concatenate([xva]*reps), np.concatenate([yva]*reps), bs=64, device=DEV)
        learn = vision_learner(dls, resnet18, pretrained=False)
        get_embeddings(learn)                                        # warm up
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
        embs, _ = get_embeddings(learn)
        peaks.append(torch.cuda.max_memory_allocated())
        assert embs.device.type == 'cpu' and len(embs) == 128*reps
    assert peaks[1] <= peaks[0] * 1.1 + (4 << 20), peaks

@needs_cuda
def test_heads_and_center_loss_step_without_host_sync():
    "The training step of the heads, center loss and hierarchical margins reads nothing back from the GPU"
    x, y = torch.randn(32, 16, device=DEV), torch.randint(0, 5, (32,), device=DEV)
    mods = [h.to(DEV).train() for h in _heads().values()]
    center, htl = CenterLoss(5, 16).to(DEV), HierarchicalTripletLoss(5).to(DEV)
    htl.observe(x, y); center(x, y)                 # the first training call starts the centers at the batch's class means (once)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')
    try:
        for h in mods: h(x, y).sum().backward()
        center(x, y).backward(); htl.margins(y, y.flip(0))
    finally: torch.cuda.set_sync_debug_mode('default')

def test_gpu_embeddings_are_searched_on_the_gpu(monkeypatch):
    "The search's products and top-k run on the GPU (no copy of the embeddings to the CPU); faiss-gpu when installed"
    import fastai_metric.search as S
    seen = []
    def spy(f):
        def g(*args, **kw):
            seen.append((f.__name__, {a.device.type for a in args if isinstance(a, torch.Tensor)}))
            return f(*args, **kw)
        return g
    # `_rescored` ranks faiss's candidates: the CPU's default where bf16 products are slow and faiss is installed (dry run)
    for name in ('_scores', 'topk_grouped', '_screened', '_rescored'): monkeypatch.setattr(S, name, spy(getattr(S, name)))
    gen = torch.Generator().manual_seed(5)
    q, g_ = torch.randn(300, 32, generator=gen), torch.randn(20_000, 32, generator=gen)
    for screen in (None, False, True):
        seen.clear()
        i_gpu = rank_gallery(q.to(DEV), g_.to(DEV), 10, screen=screen)[1]
        assert seen and all(devs == {DEV.type} for _, devs in seen), seen
        # a GPU's float32 is fast: no screen unless asked for
        if CUDA: test_eq(any(n == '_screened' for n, _ in seen), bool(screen))
        test_eq(i_gpu.device.type, 'cpu'); test_eq(i_gpu, rank_gallery(q, g_, 10, screen=False)[1])   # exact either way
    try: import faiss
    except ImportError: return
    if CUDA and hasattr(faiss, 'StandardGpuResources') and faiss.get_num_gpus():
        assert S._to_faiss_gpu(faiss.IndexFlatIP(32), DEV)[1]
        test_eq(knn(q.to(DEV), g_.to(DEV), 5, backend='faiss')[1].cpu(), knn(q, g_, 5)[1])

def test_retrieval_screen_identical_and_timed():
    "On the GPU host's CPU: the bfloat16 screen and the float32 ranking give identical metrics; both timed (printed, not asserted)"
    g = torch.Generator().manual_seed(4)
    centers = torch.randn(500, 64, generator=g)
    lbls = torch.randint(0, 500, (20000,), generator=g)
    embs = centers[lbls] + 0.7 * torch.randn(20000, 64, generator=g)
    res = {}
    for screen in (True, False):
        t = time.perf_counter(); res[screen] = retrieval_metrics(embs[:2000], lbls[:2000], embs, lbls, screen=screen)
        print(f'retrieval_metrics screen={screen}: {time.perf_counter() - t:.3f} s, cpu {torch.backends.cpu.get_cpu_capability()}')
    test_eq(res[True], res[False])

@pytest.mark.skipif(not CUDA or torch.cuda.device_count() < 2, reason='needs 2 GPUs')
def test_two_gpus_distrib_ctx():
    "Every conversion through distrib_ctx on 2 GPUs (nccl): gathered embeddings and live metrics equal one process's"
    with tempfile.TemporaryDirectory() as d:
        out = Path(d)/'res.json'
        r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                            str(Path(__file__).parent/'dist_train.py'), str(out)], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        res = json.loads(out.read_text())
    for name, v in res.items():
        assert v['world'] == 2 and np.isfinite(v['values']).all() and v['n'] == 150 and v['lbl_equal'], (name, v)
        assert v['emb_diff'] < 1e-3 and abs(v['live_recall'] - v['single_recall']) < 1e-6, (name, v)
