"""Speed and memory of `retrieval_metrics` at scale, side by side in one run (issue 4):

10,000 queries x 50,000 gallery x 128-d (1,000 classes, Gaussian clusters, L2-normalised), cmc@k / precision@k / map@k at 1, 5, 10
plus precision@1, R-precision and MAP@R, against pytorch-metric-learning's `AccuracyCalculator` with faiss-cpu on the same
embeddings (precision@1, R-precision, MAP@R only); target at most 0.7x its time with at most 0.5 GB of extra peak memory. Also a
full-matrix computation (one chunk: the whole 10,000 x 50,000 score matrix) and our faiss backend.

Each method runs in a fresh process (so peak memory is its own): `extra memory` is the growth of the process's peak resident
memory over what it had with the data loaded. Run: `python bench/retrieval.py [--write]`."""
import argparse, json, resource, subprocess, sys, time, warnings
warnings.filterwarnings('ignore')
import numpy as np, torch
import torch.nn.functional as F
from common import write_section, fresh_process_runs

NQ, NG, D, NC = 10_000, 50_000, 128, 1_000

def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(NC, D, generator=g)
    ql, gl = torch.arange(NC).repeat(NQ // NC), torch.arange(NC).repeat(NG // NC)
    q = F.normalize(centers[ql] + 1.2*torch.randn(NQ, D, generator=g), dim=1)
    gal = F.normalize(centers[gl] + 1.2*torch.randn(NG, D, generator=g), dim=1)
    return q, ql, gal, gl

def run(method):
    "Time (best of 3) and extra peak memory of one method, in this process"
    from fastai_metric.evaluation import retrieval_metrics
    q, ql, gal, gl = data()
    if method == 'pml':
        from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
        calc = AccuracyCalculator(include=('precision_at_1', 'r_precision', 'mean_average_precision_at_r'), k='max_bin_count')
        names = dict(precision_at_1='precision@1', r_precision='r_precision', mean_average_precision_at_r='map@r')
        f = lambda: {names[a]: v for a, v in calc.get_accuracy(q, ql, gal, gl).items()}
    else:
        kw = dict(torch={}, full={'chunk_size': NQ}, faiss={'backend': 'faiss'})[method]
        f = lambda: retrieval_metrics(q, ql, gal, gl, topk=(1, 5, 10), **kw)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    secs = []
    for _ in range(3):
        t = time.perf_counter(); res = f(); secs.append(time.perf_counter() - t)
        if not len(secs) - 1: extra = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 2**20   # KiB -> GiB
    return dict(seconds=min(secs), extra_gb=extra, res={k: float(v) for k, v in res.items()})

METHODS = {'pml': 'pml AccuracyCalculator + faiss-cpu (p@1, R-precision, MAP@R)',
           'torch': 'retrieval_metrics (chunked, all metrics)',
           'faiss': "retrieval_metrics(backend='faiss')",
           'full': 'retrieval_metrics, one chunk (full 10,000 x 50,000 matrix)'}

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--one'); p.add_argument('--write', action='store_true'); p.add_argument('--rounds', type=int, default=3)
    a = p.parse_args()
    if a.one: print(json.dumps(run(a.one))); sys.exit()
    runs = fresh_process_runs(__file__, METHODS, a.rounds, log=True)
    out = {m: dict(seconds=float(np.median([o['seconds'] for o in v])), extra_gb=max(o['extra_gb'] for o in v), res=v[0]['res'])
           for m, v in runs.items()}
    for k in ('precision@1', 'r_precision', 'map@r'):
        for m in ('torch', 'faiss', 'full'): assert abs(out[m]['res'][k] - out['pml']['res'][k]) < 1e-4, (m, k, out[m]['res'][k], out['pml']['res'][k])
    rows = ['| | seconds | ratio | extra peak memory (GB) |', '|---|---|---|---|']
    rows += [f"| {METHODS[m]} | {o['seconds']:.2f} | {o['seconds']/out['pml']['seconds']:.3f} | {o['extra_gb']:.2f} |" for m, o in out.items()]
    r = out['torch']['res']
    body = (f"**{NQ:,} queries x {NG:,} gallery x {D}-d, {NC:,} classes: median over {a.rounds} fresh processes (interleaved) of the best of 3 calls; "
            f"largest extra peak memory** (target: at most 0.7x pml's time, at most 0.5 GB extra)\n\n"
            + '\n'.join(rows) + '\n\nAll methods agree to 1e-4 on precision@1, R-precision and MAP@R: '
            + ', '.join(f'{k} {r[k]:.4f}' for k in ('precision@1', 'r_precision', 'map@r', 'cmc@5', 'precision@10', 'map@10')) + '.')
    print(body)
    if a.write: write_section('retrieval', 'Retrieval metrics at scale (issue 4): `python bench/retrieval.py --write`', body)
