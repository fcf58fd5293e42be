"""Speed and memory of `EmbeddingIndex.search` at scale, side by side in one run (issue 16):

an index of 100,000 items x 128-d (1,000 classes, Gaussian clusters, L2-normalised) searched by 1,000 query embeddings for
their 10 nearest items, against a plain faiss `IndexFlatIP` on the same embeddings (both exact cosine), and the index's faiss
backends (exact `Flat`, and `IVF1024,Flat` with nprobe=32: approximate, its recall@10 against the exact answer).

Each method runs in a fresh process (so peak memory is its own): `extra memory` is the growth of the process's peak resident
memory over what it had with the data loaded; `seconds` is the best of 3 searches (the faiss index built before, not timed;
its build time is its own column). Run: `python bench/index.py [--write]`."""
import argparse, json, resource, subprocess, sys, time, warnings
warnings.filterwarnings('ignore')
import numpy as np, torch
import torch.nn.functional as F
from common import write_section, fresh_process_runs

NQ, NG, D, NC, K = 1_000, 100_000, 128, 1_000, 10

def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(NC, D, generator=g)
    q = F.normalize(centers[torch.arange(NQ) % NC] + 1.2*torch.randn(NQ, D, generator=g), dim=1)
    gal = F.normalize(centers[torch.arange(NG) % NC] + 1.2*torch.randn(NG, D, generator=g), dim=1)
    return q, gal

def run(method):
    "Seconds (best of 3), build seconds, extra peak memory and the answers' indices of one method, in this process"
    from fastai_metric.index import EmbeddingIndex
    from fastai_metric.search import Search
    import faiss
    q, gal = data()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    if method == 'faiss_flat_ip':
        ix = faiss.IndexFlatIP(D); ix.add(np.ascontiguousarray(gal.numpy()))
        f = lambda: torch.from_numpy(ix.search(np.ascontiguousarray(q.numpy()), K)[1])
    else:
        sr = dict(exact=Search(), faiss=Search(backend='faiss'),
                  ivf=Search(backend='faiss', faiss_index='IVF1024,Flat', faiss_params='nprobe=32'))[method]
        ix = EmbeddingIndex(gal, search=sr)
        if sr.backend == 'faiss': ix.search(q[:1], K)                  # builds (and keeps) its faiss index
        f = lambda: ix.search(q, K).idxs
    build = time.perf_counter() - t
    secs = []
    for _ in range(3):
        t = time.perf_counter(); idxs = f(); secs.append(time.perf_counter() - t)
    extra = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 2**20    # KiB -> GiB
    return dict(seconds=min(secs), build=build, extra_gb=extra, idxs=idxs.tolist())

METHODS = {'faiss_flat_ip': 'faiss IndexFlatIP (plain faiss-cpu)',
           'exact': 'EmbeddingIndex.search (exact, chunked torch)',
           'faiss': "EmbeddingIndex.search, Search(backend='faiss') (exact Flat)",
           'ivf': "EmbeddingIndex.search, Search(backend='faiss', faiss_index='IVF1024,Flat', faiss_params='nprobe=32')"}

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--one'); p.add_argument('--write', action='store_true'); p.add_argument('--rounds', type=int, default=3)
    a = p.parse_args()
    if a.one: print(json.dumps(run(a.one))); sys.exit()
    runs = fresh_process_runs(__file__, METHODS, a.rounds)
    med = {m: {k: float(np.median([r[k] for r in v])) for k in ('seconds', 'build', 'extra_gb')} for m, v in runs.items()}
    ref = np.array(runs['exact'][0]['idxs'])
    recall = {m: float(np.mean([len(set(a) & set(b)) / K for a, b in zip(np.array(v[0]['idxs']), ref)]))
              for m, v in runs.items()}
    base = med['faiss_flat_ip']['seconds']
    lines = [f"{NQ:,} queries x {NG:,} items x {D}-d (1,000 classes), k={K}, cosine; median over {a.rounds} fresh processes "
             "of each method's best of 3 searches.\n",
             '| method | seconds | ratio to faiss IndexFlatIP | build seconds | extra peak memory (GB) | recall@10 vs exact |',
             '|---|---|---|---|---|---|']
    for m, name in METHODS.items():
        r = med[m]
        lines.append(f"| {name} | {r['seconds']:.3f} | {r['seconds']/base:.2f} | {r['build']:.2f} | {r['extra_gb']:.3f} | "
                     f"{recall[m]:.4f} |")
    body = '\n'.join(lines)
    print(body)
    if a.write: write_section('index', 'Gallery index search (issue 16): `python bench/index.py --write`', body)
