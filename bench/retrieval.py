"""Speed and memory of `retrieval_metrics` at scale, side by side in one run (issues 4, 17):

10,000 queries x 50,000 gallery x 128-d (1,000 classes, Gaussian clusters, L2-normalised), cmc@k / precision@k / map@k at 1, 5, 10
plus precision@1, R-precision and MAP@R, against pytorch-metric-learning's `AccuracyCalculator` with faiss-cpu on the same
embeddings (precision@1, R-precision, MAP@R only); target at most 0.7x its time with at most 0.5 GB of extra peak memory. Also a
full-matrix computation (one chunk: the whole 10,000 x 50,000 score matrix), our faiss backend, and each torch kernel forced
(`screen=True`: the bfloat16 screen; `screen='faiss'`: faiss's float32 candidates; `screen=False`: float32 chunks; on a GPU
where there is one) beside the default, which picks one by this CPU
(`fastai_metric.precision.matmul_speedup`). Every result records the CPU it ran on (`cpu_description`).
`--simulate-avx2` runs every process with oneDNN and MKL limited to AVX2 (no native bfloat16), to measure an AVX2-only CPU's
kernels on a machine that has more.

Each method runs in a fresh process (so peak memory is its own): `extra memory` is the growth of the process's peak resident
memory over what it had with the data loaded. Run: `python bench/retrieval.py [--simulate-avx2] [--methods pml,torch,...] [--write]`; the section
written is `retrieval_bf16` or `retrieval_avx2` (the CPU's kind, `_simulated` added under `--simulate-avx2`)."""
import argparse, json, os, resource, subprocess, sys, time, warnings
warnings.filterwarnings('ignore')
import numpy as np, torch
import torch.nn.functional as F
from common import write_section, fresh_process_runs, AVX2_ENV

NQ, NG, D, NC = 10_000, 50_000, 128, 1_000

# 'clustered' (1,000 Gaussian classes) or 'random' (--data): unstructured unit vectors, where a screen's bound vouches for fewer rows
DATA = os.environ.get('FASTAI_METRIC_BENCH_DATA', 'clustered')

def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(NC, D, generator=g)
    ql, gl = torch.arange(NC).repeat(NQ // NC), torch.arange(NC).repeat(NG // NC)
    spread = 1.2 if DATA == 'clustered' else 0.
    q = F.normalize(spread*centers[ql] + torch.randn(NQ, D, generator=g) * (1.2 if spread else 1.), dim=1)
    gal = F.normalize(spread*centers[gl] + torch.randn(NG, D, generator=g) * (1.2 if spread else 1.), dim=1)
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
        kw = dict(torch={}, screen={'screen': True}, faiss_screen={'screen': 'faiss'}, float32={'screen': False},
                  full={'chunk_size': NQ}, faiss={'backend': 'faiss'}, cuda={})[method]
        if method == 'cuda': q, gal = q.cuda(), gal.cuda()                    # searched on the GPU; results come back
        f = lambda: retrieval_metrics(q, ql, gal, gl, topk=(1, 5, 10), **kw)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    secs = []
    for _ in range(3):
        t = time.perf_counter(); res = f(); secs.append(time.perf_counter() - t)
        if not len(secs) - 1: extra = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 2**20   # KiB -> GiB
        if secs[0] > 30: break                                            # a slow kernel (emulated bf16): one call says enough
    from fastai_metric.precision import cpu_description, matmul_speedup
    from fastai_metric.search import kernel_log
    chosen = [('float32' if l['chosen'] is None else l['chosen']) for l in kernel_log] if method == 'torch' else []
    return dict(seconds=min(secs), first=secs[0], calls=len(secs), extra_gb=extra, res={k: float(v) for k, v in res.items()},
                cpu=cpu_description(), speedup=matmul_speedup(), chosen=','.join(sorted(set(chosen))))

METHODS = {'pml': 'pml AccuracyCalculator + faiss-cpu (p@1, R-precision, MAP@R)',
           'torch': 'retrieval_metrics, default (chunked, all metrics; kernel chosen for this CPU)',
           'screen': 'retrieval_metrics(screen=True): bfloat16 screen, exact float32 ranking',
           'faiss_screen': "retrieval_metrics(screen='faiss'): faiss's float32 candidates, exact float32 ranking",
           'float32': 'retrieval_metrics(screen=False): float32 chunks',
           'faiss': "retrieval_metrics(backend='faiss')",
           'full': 'retrieval_metrics, one chunk (full 10,000 x 50,000 matrix)',
           'cuda': 'retrieval_metrics, embeddings on the GPU (default settings)'}

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--one'); p.add_argument('--write', action='store_true'); p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--data', default='clustered', choices=['clustered', 'random'])
    p.add_argument('--simulate-avx2', action='store_true', help='limit oneDNN and MKL to AVX2: no native bfloat16')
    p.add_argument('--methods', default=','.join(m for m in METHODS if m != 'cuda' or torch.cuda.is_available()))
    a = p.parse_args()
    if a.one: print(json.dumps(run(a.one))); sys.exit()
    env = {**(AVX2_ENV if a.simulate_avx2 else {}), 'FASTAI_METRIC_BENCH_DATA': a.data}
    runs = fresh_process_runs(__file__, a.methods.split(','), a.rounds, log=True, env=env, slow=60)
    out = {m: dict(seconds=float(np.median([o['seconds'] for o in v])), extra_gb=max(o['extra_gb'] for o in v), res=v[0]['res'],
                   n=f"{len(v)} x {v[0]['calls']}", first=float(np.median([o['first'] for o in v])),
                   chosen=','.join(sorted({o['chosen'] for o in v if o.get('chosen')}))) for m, v in runs.items()}
    for k in ('precision@1', 'r_precision', 'map@r'):
        for m in set(out) - {'pml'}: assert abs(out[m]['res'][k] - out['pml']['res'][k]) < 1e-4, (m, k, out[m]['res'][k], out['pml']['res'][k])
    rows = ['| | seconds | ratio | first call (s) | extra peak memory (GB) | processes x calls |', '|---|---|---|---|---|---|']
    rows += [f"| {METHODS[m]}{' (chose: ' + o['chosen'] + ')' if o['chosen'] else ''} | {o['seconds']:.2f} | "
             f"{o['seconds']/out['pml']['seconds']:.3f} | {o['first']:.2f} | {o['extra_gb']:.2f} | {o['n']} |" for m, o in out.items()]
    r = next(o['res'] for m, o in out.items() if m != 'pml')
    cpus, sp = {o['cpu'] for v in runs.values() for o in v}, [o['speedup'] for v in runs.values() for o in v]
    native = all(o['speedup'] >= 1 for v in runs.values() for o in v)
    cpu = (f"CPU: {', '.join(sorted(cpus))} (bf16 matmul {min(sp):.2g}-{max(sp):.2g}x float32 by `matmul_speedup`)"
           + (' (AVX2 simulated: `--simulate-avx2`)' if a.simulate_avx2 else ''))
    what = f'{NC:,} classes' if a.data == 'clustered' else 'random unit vectors (no structure)'
    body = (f"{cpu}. **{NQ:,} queries x {NG:,} gallery x {D}-d, {what}: median over {a.rounds} fresh processes (interleaved) of the best of 3 calls "
            "(a kernel slower than 30 s: one call, one process); "
            f"largest extra peak memory** (targets: default at most 0.4x pml's time on CPUs with native bfloat16, 0.8x on AVX2-only ones, never above 1.0x; at most 0.5 GB extra)\n\n"
            + '\n'.join(rows) + '\n\nAll methods agree to 1e-4 on precision@1, R-precision and MAP@R: '
            + ', '.join(f'{k} {r[k]:.4f}' for k in ('precision@1', 'r_precision', 'map@r', 'cmc@5', 'precision@10', 'map@10')) + '.')
    print(body)
    name = 'retrieval_' + ('bf16' if native else 'avx2') + ('_simulated' if a.simulate_avx2 else '') + ('_random' if a.data == 'random' else '')
    kind = 'native bfloat16' if native else 'no native bfloat16' + (' (simulated)' if a.simulate_avx2 else '')
    if a.write: write_section(name, f"Retrieval metrics at scale (issues 4, 17, 31), CPU with {kind}, {a.data} data: "
                                    f"`python bench/retrieval.py{' --simulate-avx2' if a.simulate_avx2 else ''} --data {a.data} --write`", body)
