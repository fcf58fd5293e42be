"Retrieval metrics against brute force on random inputs (hypothesis), against pytorch-metric-learning, and live during fit"
import os, pytest
import numpy as np
import torch, torch.nn.functional as F
from hypothesis import given, settings, strategies as st, HealthCheck
from conftest import fit_quiet
from fastai.vision.all import *
from fastai_metric.all import *
from fastai_metric.search import rank_gallery

def _brute(q, ql, g, gl, topk, distance, loo):
    "Every metric from its definition, query by query, ranking by (distance in double precision, gallery index)"
    # pair by pair (broadcast, not a matrix product, whose kernels may round two equal columns differently): copies tie exactly
    if distance == 'cosine': d = 1 - (F.normalize(q.double(), dim=1)[:,None] * F.normalize(g.double(), dim=1)[None]).sum(-1)
    else: d = (q.double()[:,None] - g.double()[None]).pow(2).sum(-1).sqrt()
    res = {}
    for r in range(len(q)):
        row = sorted((j for j in range(len(g)) if not (loo and j == r)), key=lambda j: (d[r, j].item(), j))
        rel = [int(gl[j] == ql[r]) for j in row]
        R = sum(rel)
        if R == 0: continue
        P = lambda i: sum(rel[:i]) / i
        for k in topk:
            hits = sum(rel[:k])
            res.setdefault(f'cmc@{k}', []).append(float(hits > 0))
            res.setdefault(f'precision@{k}', []).append(hits / min(k, R))
            res.setdefault(f'map@{k}', []).append(sum(P(i) * rel[i-1] for i in range(1, k+1)) / hits if hits else 0.)
        res.setdefault('precision@1', []).append(rel[0])
        res.setdefault('r_precision', []).append(sum(rel[:R]) / R)
        res.setdefault('map@r', []).append(sum(P(i) * rel[i-1] for i in range(1, R+1)) / R)
    return {k: float(np.mean(v)) for k, v in res.items()}

@st.composite
def retrieval_case(draw):
    "Random sizes, labels and a seed for the embeddings; some gallery rows repeated exactly, so distances tie"
    nq, ng, dim, ncls = draw(st.integers(2, 25)), draw(st.integers(2, 30)), draw(st.integers(1, 6)), draw(st.integers(1, 5))
    seed = draw(st.integers(0, 10_000))
    g = torch.Generator().manual_seed(seed)
    q, gal = torch.randn(nq, dim, generator=g), torch.randn(ng, dim, generator=g)
    dups = draw(st.lists(st.tuples(st.integers(0, ng-1), st.integers(0, ng-1)), max_size=ng))
    for a, b in dups: gal[a] = gal[b]                      # exact copies: equal distances to every query
    qdups = draw(st.lists(st.tuples(st.integers(0, nq-1), st.integers(0, nq-1)), max_size=nq))
    for a, b in qdups: q[a] = q[b]
    ql, gl = torch.randint(0, ncls, (nq,), generator=g), torch.randint(0, ncls, (ng,), generator=g)
    loo = draw(st.booleans())
    n_cand = nq - 1 if loo else ng
    topk = tuple(sorted(set(draw(st.lists(st.integers(1, max(1, n_cand)), min_size=1, max_size=3)))))
    return q, ql, gal, gl, topk, draw(st.sampled_from(['cosine', 'euclidean'])), loo, draw(st.integers(1, nq))

@settings(max_examples=int(os.environ.get('HYPOTHESIS_EXAMPLES', 60)), deadline=None, derandomize=not os.environ.get('HYPOTHESIS_EXAMPLES'),
          suppress_health_check=[HealthCheck.too_slow])
@given(retrieval_case())
def test_against_brute_force(case):
    q, ql, g, gl, topk, distance, loo, chunk = case
    if loo and len(q) < 2: return
    args = (q, ql) if loo else (q, ql, g, gl)
    ref = _brute(q, ql, q if loo else g, ql if loo else gl, topk, distance, loo)
    ours = retrieval_metrics(*args, topk=topk, distance=distance)
    chunked = retrieval_metrics(*args, topk=topk, distance=distance, chunk_size=chunk)
    # bf16 screening, or faiss's float32 candidates, then exact ranking (cosine only: refused for euclidean)
    screen = (lambda s: retrieval_metrics(*args, topk=topk, distance=distance, screen=s)) if distance == 'cosine' else (lambda s: ours)
    screened, by_faiss = screen(True), screen('faiss')
    assert set(ref) <= set(ours)
    for k, v in ref.items():
        assert ours[k] == pytest.approx(v, abs=1e-9), (k, ours[k], v)
        # neither the chunk size nor screening changes anything
        assert chunked[k] == ours[k] and screened[k] == ours[k] and by_faiss[k] == ours[k]
    if not ref: assert np.isnan(ours['map@r']) and ours['n_lone'] == len(q)

@pytest.mark.parametrize('distance', ['cosine', 'euclidean'])
@pytest.mark.parametrize('loo', [False, True])
def test_same_as_pml_accuracy_calculator(distance, loo):
    pytest.importorskip('faiss')
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN
    from pytorch_metric_learning.distances import CosineSimilarity, LpDistance
    knn = CustomKNN(CosineSimilarity() if distance == 'cosine' else LpDistance(normalize_embeddings=False))
    calc = AccuracyCalculator(include=('precision_at_1', 'r_precision', 'mean_average_precision_at_r'), k='max_bin_count', knn_func=knn)
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        q, ql = torch.randn(300, 16, generator=g), torch.randint(0, 12, (300,), generator=g)
        gal, gl = torch.randn(500, 16, generator=g), torch.randint(0, 12, (500,), generator=g)
        theirs = calc.get_accuracy(q, ql) if loo else calc.get_accuracy(q, ql, gal, gl)
        ours = retrieval_metrics(q, ql, distance=distance) if loo else retrieval_metrics(q, ql, gal, gl, distance=distance)
        for a, b in [('precision@1', 'precision_at_1'), ('r_precision', 'r_precision'), ('map@r', 'mean_average_precision_at_r')]:
            assert ours[a] == pytest.approx(theirs[b], abs=1e-4), (a, ours[a], theirs[b])

@pytest.mark.quality
def test_live_metrics_on_digits(digits_dls, tmp_path):
    learn = vision_learner(digits_dls, resnet18, pretrained=False, metrics=[accuracy, RecallAtK(1), RecallAtK(5), MapAtR()]).to_arcface()
    fit_quiet(learn, 2)
    rec = dict(zip(learn.recorder.metric_names[1:-1], learn.recorder.values[-1]))
    # 2 epochs, seeds 42, 0, 1: recall@1 0.94, MAP@R 0.76-0.82 (untrained: 0.79-0.84 and 0.27-0.29)
    assert 0.88 < rec['recall@1'] <= rec['recall@5'] <= 1 and 0.68 < rec['map@r'] <= 1, rec
    after = learn.retrieval_metrics(topk=(1, 5))
    assert rec['recall@1'] == pytest.approx(after['cmc@1'], abs=1e-6) and rec['map@r'] == pytest.approx(after['map@r'], abs=1e-6)
    learn.export(tmp_path/'live.pkl')                     # the metrics pickle, without hooks
    assert [m.name for m in load_learner(tmp_path/'live.pkl').metrics] == ['accuracy', 'recall@1', 'recall@5', 'map@r']
    assert all(not m._forward_hooks for m in learn.model.modules())

def test_faiss_missing_gives_the_pip_line(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'faiss', None)          # as if faiss-cpu were not installed
    with pytest.raises(ImportError, match='pip install faiss-cpu'):
        retrieval_metrics(torch.randn(10, 4), torch.arange(10) % 2, topk=(1, 5), backend='faiss')

def test_screening_on_a_large_gallery():
    "bf16 or faiss screening gives exactly the float32 ranking on 20,000 clustered items with copies"
    g = torch.Generator().manual_seed(0)
    gal = torch.randn(200, 32, generator=g)[torch.randint(0, 200, (20_000,), generator=g)] + 0.6*torch.randn(20_000, 32, generator=g)
    gal[5000:5100] = gal[:100]
    q = torch.cat([gal[:150], torch.randn(150, 32, generator=g)])
    d1, i1 = rank_gallery(q, gal, 60, screen=False)
    qn, gn = F.normalize(q.double(), dim=1), F.normalize(gal.double(), dim=1)
    true = lambda i: 1 - (qn[:, None] * gn[i]).sum(-1)           # double-precision distances of the items ranked
    for screen in (True, 'faiss'):                              # bf16 scores, or faiss's float32 ones: candidates ranked exactly
        d2, i2 = rank_gallery(q, gal, 60, screen=screen)
        assert (i1 == i2).all(1).float().mean() > 0.98        # the same ranking, but for near-ties float32 rounding may order either way
        torch.testing.assert_close(true(i1), true(i2), atol=1e-6, rtol=0)   # rank by rank, equally near: only near-ties swapped
        assert (true(i2)[:, 1:] >= true(i2)[:, :-1] - 1e-6).all()
        torch.testing.assert_close(d1, d2, atol=1e-5, rtol=0)

_BIG_R = """
import resource, torch, torch.nn.functional as F
from fastai_metric.evaluation import retrieval_metrics
g = torch.Generator().manual_seed(0)
q = F.normalize(torch.randn(5000, {d}, generator=g) + 3, dim=1)     # near-parallel embeddings, as of a collapsed unseen class
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = retrieval_metrics(q, torch.arange(5000) % 5, topk=(1,), screen={screen})
extra = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 2**20
exact = retrieval_metrics(q, torch.arange(5000) % 5, topk=(1,), screen=False)   # plain float32 ranking, checked by brute force elsewhere
print(extra, r['map@r'], exact['map@r'], r['cmc@1'], exact['cmc@1'])
"""

@pytest.mark.parametrize('screen', [None, True])
def test_few_classes_keep_memory_small(screen):
    "MAP@R of 5,000 items in 5 classes ranks 1,000 neighbours a query: the exact re-ranking must not gather (queries x candidates x D)"
    import subprocess, sys
    # the forced bf16 screen at 128-d: many CPUs emulate bf16 (20x slower); a gather of (queries x candidates x D) would still be 2.6 GB
    d = 128 if screen else 512
    out = subprocess.run([sys.executable, '-c', _BIG_R.format(d=d, screen=screen)], capture_output=True, text=True, check=True).stdout.split()
    extra_gb, mapr, mapr_exact, cmc, cmc_exact = map(float, out)
    assert extra_gb < 1.0, f'{extra_gb:.2f} GB extra'        # was 9.8 GB at 512-d (2.6 GB at 128-d) before blocks of queries
    assert abs(mapr - mapr_exact) < 1e-6 and cmc == cmc_exact  # the screened ranking (many rows re-ranked exactly) equals the exact one

def test_no_native_bf16_means_no_screen_by_default(monkeypatch):
    """Where bf16 products are emulated (`matmul_speedup` 0.02, as measured on AVX2-only EPYCs), the default search does not
    screen in bf16 and says nothing; screen=True warns once and stays exact. Timings themselves are measured in bench/"""
    import warnings
    import fastai_metric.search as S, fastai_metric.checks as fm_checks
    monkeypatch.setattr(S, 'matmul_speedup', lambda dtype=None: 0.02)
    fm_checks._warned.clear()
    g = F.normalize(torch.randn(5000, 32, generator=torch.Generator().manual_seed(0)), dim=1)
    assert 'bf16' not in S._screens_to_probe()                                # emulated bf16 is not even timed
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always')
        d0, i0 = S.rank_gallery(g[:200], g, 20)                                 # the default: faiss or float32 chunks
        assert not [w for w in ws if 'screen=True' in str(w.message)]
        forced = [S.rank_gallery(g[:200], g, 20, screen=True)[1] for _ in range(2)]
    assert sum('screen=True' in str(w.message) for w in ws) == 1             # forced: one warning for two searches,
    assert all(torch.equal(f, i0) for f in forced)                            # and still the exact ranking

@pytest.mark.parametrize('slow', ['screen', 'float32'])
def test_probe_runs_the_kernel_it_timed_faster(monkeypatch, slow):
    """The default search times the screen and float32 chunks on slices of its own queries and runs the faster one for the
    rest. The kernels are made slow on purpose (a 50 ms sleep a call, far above their real cost at this size), so the choice
    is known; every slice's answers are kept and the ranking stays the exact one"""
    import time
    import fastai_metric.search as S
    g = F.normalize(torch.randn(5000, 32, generator=torch.Generator().manual_seed(0)), dim=1)
    q = g[:256] + 0.01
    ref = S.rank_gallery(q, g, 10, screen=False)
    scores, calls = S._scores, []
    def screened(qc, g_, gb, inv, self_idx, k, n_cand):      # the screen's answer: exact, so only the timing differs
        calls.append('screen')
        if slow == 'screen': time.sleep(0.05)
        return S._topk_stable(F.normalize(qc, dim=1) @ g_.T, k)
    def slow_scores(*args, **kw):
        calls.append('float32')
        if slow == 'float32': time.sleep(0.05)
        return scores(*args, **kw)
    monkeypatch.setattr(S, '_screens_to_probe', lambda: ['bf16'])
    monkeypatch.setattr(S, '_screened', screened)
    monkeypatch.setattr(S, '_scores', slow_scores)
    S.kernel_log.clear()
    d, i = S.rank_gallery(q, g, 10)
    chosen = S.kernel_log[-1]['chosen']
    assert chosen == (None if slow == 'screen' else 'bf16')
    assert calls[:4] == ['screen', 'float32', 'screen', 'float32']            # the probe: turns on four slices
    assert set(calls[4:]) == {'float32' if chosen is None else 'screen'}       # then only the faster kernel
    assert torch.equal(i, ref[1]) and torch.allclose(d, ref[0], atol=1e-6)   # the fake screen rounds its own way
