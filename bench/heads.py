"""Speed of the foundation, side by side in one run (issue 2):

1. one training epoch with each margin head against the plain learner on the same data (target: at most 1.05x);
2. `get_embeddings` against `learn.get_preds` on the same DataLoader (target: at most 1.05x);
3. `plot_tsne` on 10,000 points against `sklearn.manifold.TSNE` on the same points (target: at most 0.5x).

Run: `python bench/heads.py [--write]`; `--write` puts the tables in bench/RESULTS.md."""
import argparse, time, warnings
warnings.filterwarnings('ignore')
import numpy as np
from fastai.vision.all import *
from fastai_metric.all import *
from sklearn.manifold import TSNE, trustworthiness
from openTSNE import TSNE as OpenTSNE
from fastai_metric.tsne import tsne_2d
from common import write_section, interleaved, table, epoch_times

NOTE = ('Single runs on these 2-core machines vary by up to ±20%; the ratios below come from runs interleaved in a rotating order, so drift hits every column alike. '
        'Even so, epoch medians of the same code differ by about ±6% from one run to the next (measured 2026-11-24: ArcFace 0.94x in one run, 1.05x in the next), '
        'so the second table times what a head adds directly.')

HEADS = {'plain': lambda l: l, 'arcface': Learner.to_arcface, 'cosface': Learner.to_cosface,
         'sphereface': Learner.to_sphereface, 'l2': Learner.to_l2_constrained}

def learner(dls, name):
    set_seed(0)
    return HEADS[name](vision_learner(dls, resnet18, pretrained=False, metrics=accuracy))

def bench_epochs(dls, rounds):
    "One `fit` epoch (training and validation) per head"
    return epoch_times({n: learner(dls, n) for n in HEADS}, rounds)

def bench_head_steps(rounds=200, bs=64, d=512, c=10):
    "Forward + backward of the final layer alone, per batch: what a head can add to a training step, free of the epoch's noise"
    x, y = torch.randn(bs, d), torch.randint(0, c, (bs,))
    heads = {'plain': nn.Linear(d, c), 'arcface': ArcMarginProduct(d, c), 'cosface': AddMarginProduct(d, c),
             'sphereface': SphereProduct(d, c), 'l2': L2ConstrainedLinear(d, c)}
    def step(h):
        xx = x.clone().requires_grad_()
        F.cross_entropy(h(xx, y) if isinstance(h, MetricHead) else h(xx), y).backward()
    return interleaved({n: partial(step, h) for n,h in heads.items()}, rounds)

def bench_embeddings(dls, rounds):
    "`get_preds` and `get_embeddings` on the same (unshuffled training) DataLoader"
    learn = learner(dls, 'arcface')
    dl = learn.dls.train.new(shuffle=False, drop_last=False)
    with learn.no_bar():
        return interleaved({'get_preds': lambda: learn.get_preds(dl=dl), 'get_embeddings': lambda: get_embeddings(learn, dl=dl)}, rounds)

def clustered_learner(n=10_000, d=128, n_cls=10, seed=0):
    "A learner whose embeddings are `n` points of `n_cls` Gaussian clusters in `d` dimensions"
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(n_cls, d, generator=g)*2).repeat_interleave(n//n_cls, 0) + torch.randn(n, d, generator=g)
    y = torch.arange(n_cls).repeat_interleave(n//n_cls)
    tl = TfmdLists(range(n), lambda i: (x[i], y[i]))
    dls = DataLoaders.from_dsets(tl, tl, bs=1024)
    return Learner(dls, nn.Sequential(nn.Identity(), nn.Linear(d, n_cls)), loss_func=CrossEntropyLossFlat()), x

def bench_tsne(n):
    "Seconds of each t-SNE on the same `n` points, and the trustworthiness (10 neighbours, 2,000-point sample) of its map"
    learn, x = clustered_learner(n)
    pts = F.normalize(x, dim=1).numpy()     # plot_tsne normalises by default: the others get the same points
    sub = np.random.RandomState(0).choice(n, min(n, 2000), replace=False)
    maps = {'sklearn TSNE (defaults)': lambda: TSNE(random_state=42).fit_transform(pts),
            'sklearn TSNE (n_jobs=-1, max_iter=750 as openTSNE)': lambda: TSNE(random_state=42, n_jobs=-1, max_iter=750).fit_transform(pts),
            'openTSNE defaults (n_jobs=-1)': lambda: np.asarray(OpenTSNE(n_jobs=-1, random_state=42).fit(pts)),
            'tsne_2d (the map plot_tsne draws)': lambda: tsne_2d(pts)}
    secs, trust = {}, {}
    for k,f in maps.items():
        t = time.perf_counter(); xy = f(); secs[k] = time.perf_counter() - t
        trust[k] = trustworthiness(pts[sub], xy[sub], n_neighbors=10)
    t = time.perf_counter()
    with learn.no_bar(): plot_tsne(learn, n_max=n)
    secs['plot_tsne (embed + map + plot)'] = time.perf_counter() - t
    plt.close('all')
    return secs, trust

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--tsne-n', type=int, default=10_000)
    p.add_argument('--write', action='store_true')
    a = p.parse_args()
    dls = ImageDataLoaders.from_folder(digits_folder(Path.home()/'.fastai'/'data'/'digits32'), valid='valid', bs=64, num_workers=0)
    ep = bench_epochs(dls, a.rounds)
    t1 = table(ep, 'plain', f'One epoch of `fit` (training + validation) on digits (1,437 + 360 images of 32 px, resnet18 from scratch, bs 64), median of {a.rounds} interleaved rounds', 1.05)
    print(t1, flush=True)
    hs = bench_head_steps()
    step = ep['plain'] / len(dls.train)
    t1b = '\n'.join([f"**The final layer alone, forward + backward of one batch (64 x 512-d, 10 classes), median of 200 interleaved rounds**, "
                      f"against a whole training step of the plain learner ({1000*step:.0f} ms: one epoch / {len(dls.train)} batches)\n",
                      '| | ms | added to a training step |', '|---|---|---|'] +
                     [f"| {k} | {1000*v:.3f} | {100*(v - hs['plain'])/step:+.2f}% |" for k,v in hs.items()])
    print(t1b, flush=True)
    em = bench_embeddings(dls, 3*a.rounds)
    t2 = table(em, 'get_preds', f'Embedding the 1,437 training images (same DataLoader), median of {3*a.rounds} interleaved rounds', 1.05)
    print(t2, flush=True)
    secs, trust = bench_tsne(a.tsne_n)
    t3 = table(secs, 'sklearn TSNE (defaults)', f't-SNE of {a.tsne_n:,} points (128-d, 10 Gaussian clusters, L2-normalised), one run each', 0.5,
               ('trustworthiness', trust))
    print(t3, flush=True)
    if a.write: write_section('heads', 'Foundation (issue 2): `python bench/heads.py --write`', NOTE + '\n\n' + '\n\n'.join([t1, t1b, t2, t3]))
