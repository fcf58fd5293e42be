"""Nearest neighbours at a million (issue 6): 10,000 queries against a 1,000,000 x 128-d gallery on the CPU.

Exact search with faiss (`IndexFlatIP`) and with our torch backend (bf16 screening + exact float32 re-ranking), and approximate
faiss indices (`IVF4096,Flat` at several `nprobe`): build time, search time, recall@10 against the exact neighbours, and
MAP@R of `retrieval_metrics` with each. Gaussian clusters (10,000 classes x 100 items), L2-normalised, cosine.
Run: `python bench/faiss_million.py [--write]` (a few minutes on 2 cores)."""
import argparse, time, warnings
warnings.filterwarnings('ignore')
import numpy as np, torch
import torch.nn.functional as F
from fastai_metric.search import knn
from fastai_metric.evaluation import retrieval_metrics
from common import write_section

NQ, NG, D, NC, K = 10_000, 1_000_000, 128, 10_000, 10

def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(NC, D, generator=g)
    gl, ql = torch.arange(NC).repeat(NG // NC), torch.randint(0, NC, (NQ,), generator=g)
    gal = F.normalize(centers[gl] + 1.2*torch.randn(NG, D, generator=g), dim=1)
    q = F.normalize(centers[ql] + 1.2*torch.randn(NQ, D, generator=g), dim=1)
    return q, ql, gal, gl

def timed(f):
    t = time.perf_counter(); r = f(); return r, time.perf_counter() - t

if __name__ == '__main__':
    p = argparse.ArgumentParser(); p.add_argument('--write', action='store_true'); a = p.parse_args()
    q, ql, gal, gl = data()
    (d0, i0), t_flat = timed(lambda: knn(q, gal, K, backend='faiss'))
    rows = [('faiss exact (Flat)', t_flat, 1.0)]
    (d1, i1), t_torch = timed(lambda: knn(q, gal, K))
    rows.append(('torch exact (bf16 screen + float32 re-rank)', t_torch, float((i1 == i0).float().mean())))
    import faiss
    for nprobe in (8, 32, 128):
        (d2, i2), t = timed(lambda: knn(q, gal, K, backend='faiss', faiss_index='IVF4096,Flat', faiss_params=f'nprobe={nprobe}'))
        rec = np.mean([len(set(x) & set(y)) / K for x, y in zip(i0.tolist(), i2.tolist())])
        rows.append((f'faiss IVF4096,Flat nprobe={nprobe} (build + search)', t, float(rec)))
    _, t_map = timed(lambda: retrieval_metrics(q, ql, gal, gl, topk=(1, 10), backend='faiss', faiss_index='IVF4096,Flat', faiss_params='nprobe=32'))
    res_ex, t_map_ex = timed(lambda: retrieval_metrics(q, ql, gal, gl, topk=(1, 10), backend='faiss'))
    res_ap = retrieval_metrics(q, ql, gal, gl, topk=(1, 10), backend='faiss', faiss_index='IVF4096,Flat', faiss_params='nprobe=32')
    lines = ['| search | seconds | recall@10 vs exact |', '|---|---|---|']
    lines += [f'| {n} | {t:.1f} | {r:.4f} |' for n, t, r in rows]
    body = (f"**{NQ:,} queries x {NG:,} gallery x {D}-d, k={K}, {NC:,} classes (cosine); {torch.get_num_threads()} threads, faiss "
            f"{faiss.__version__}.** The torch row's 'recall' is the share of ranks with the same index as faiss exact (equal "
            f"distances may swap).\n\n" + '\n'.join(lines) +
            f"\n\nretrieval_metrics(backend='faiss'): exact {t_map_ex:.1f} s (map@r {res_ex['map@r']:.4f}, cmc@1 {res_ex['cmc@1']:.4f}); "
            f"IVF4096,Flat nprobe=32 {t_map:.1f} s (map@r {res_ap['map@r']:.4f}, cmc@1 {res_ap['cmc@1']:.4f}).")
    print(body)
    if a.write: write_section('faiss_million', 'A million-item gallery (issue 6): `python bench/faiss_million.py --write`', body)
