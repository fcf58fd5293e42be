"""Speed of the triplet family, side by side in one run (issue 3):

1. `HardTripletsMiner` + `TripletLossWithMiner`, forward and backward, batch 512 x 512-d, against pytorch-metric-learning's
   `BatchHardMiner` + `TripletMarginLoss` (target: at most 0.5x), and against a per-anchor Python loop (the classic
   `HardTripletsSampler` style);
2. `AllTripletsMiner` + loss at batch 128 against `TripletMarginMiner(type_of_triplets='all')` + `TripletMarginLoss` (target: at
   most 0.5x), and against a per-anchor Python loop;
3. one training epoch of `to_triplet` against the plain learner on digits (target: at most 1.10x).

Both libraries compute the same loss here (Euclidean distances between L2-normalised embeddings, hinge with margin 0.2, mean over
the mined triplets: pml's `MeanReducer`); the script checks that the values agree before timing them.

Run: `python bench/triplet.py [--write]`; `--write` puts the tables in bench/RESULTS.md."""
import argparse, warnings
warnings.filterwarnings('ignore')
from fastai.vision.all import *
from fastai_metric.all import *
from pytorch_metric_learning import losses, miners, reducers
from common import write_section, interleaved, table, epoch_times

NOTE = ('Forward and backward of miner + loss on random embeddings (P classes x K items), median of interleaved rounds; the values agree '
        '(pml\'s `TripletMarginMiner` keeps only triplets within the margin: on these 512-d embeddings that is all of them); '
        'pml = pytorch-metric-learning with `TripletMarginLoss(margin=0.2, reducer=MeanReducer())`.')

def batch(p, k, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(p*k, d, generator=g), torch.arange(p).repeat_interleave(k)

def per_anchor(embs, lbls, f, margin=0.2):
    "The classic per-anchor loop (`HardTripletsSampler` style): each anchor's distance row, then `f(d, pos, neg, margin)` on it"
    e = F.normalize(embs, dim=1); ls = []
    for a in range(len(e)):
        d = (e - e[a]).norm(dim=1)
        pos, neg = (lbls == lbls[a]), (lbls != lbls[a])
        pos[a] = False
        if pos.any() and neg.any(): ls.append(f(d, pos, neg, margin).flatten())
    return torch.cat(ls).mean()

def _hardest(d, pos, neg, m):
    p = torch.where(pos, d.detach(), -1.).argmax(); n = torch.where(neg, d.detach(), float('inf')).argmin()
    return F.relu(d[p] - d[n] + m)

def _every(d, pos, neg, m): return F.relu(d[pos][:,None] - d[neg][None] + m)

loop_hard, loop_all = partial(per_anchor, f=_hardest), partial(per_anchor, f=_every)

def fwd_bwd(f, x, y):
    def run():
        e = x.clone().requires_grad_()
        f(e, y).backward()
    return run

def bench_losses(rounds):
    out = []
    for name, (p, k, d), ours, pml, loop in [
        ('batch-hard, batch 512 (64 classes x 8) x 512-d', (64, 8, 512), TripletLossWithMiner(0.2, HardTripletsMiner()),
         (miners.BatchHardMiner(), losses.TripletMarginLoss(margin=0.2, reducer=reducers.MeanReducer())), loop_hard),
        ('all triplets, batch 128 (16 classes x 8) x 512-d', (16, 8, 512), TripletLossWithMiner(0.2, AllTripletsMiner()),
         (miners.TripletMarginMiner(margin=0.2, type_of_triplets='all'), losses.TripletMarginLoss(margin=0.2, reducer=reducers.MeanReducer())), loop_all)]:
        x, y = batch(p, k, d)
        pml_f = lambda e, l, m=pml[0], L=pml[1]: L(e, l, m(e, l))
        vals = {n: float(f(x, y)) for n, f in [('fastai_metric', ours), ('pml', pml_f), ('loop', loop)]}
        assert abs(vals['fastai_metric'] - vals['pml']) < 1e-4 and abs(vals['fastai_metric'] - vals['loop']) < 1e-4, vals
        secs = interleaved({'pml': fwd_bwd(pml_f, x, y), 'fastai_metric': fwd_bwd(ours, x, y),
                            'per-anchor Python loop': fwd_bwd(loop, x, y)}, rounds)
        out.append(table(secs, 'pml', f"{name}: loss {vals['fastai_metric']:.5f} in all three, median of {rounds} rounds", 0.5))
    return out

def bench_epochs(rounds):
    dls = ImageDataLoaders.from_folder(digits_folder(Path.home()/'.fastai'/'data'/'digits32'), valid='valid', bs=64, num_workers=0)
    def mk(triplet):
        set_seed(0)
        l = vision_learner(dls, resnet18, pretrained=False)
        return l.to_triplet(n_classes=8, n_instances=8, seed=0) if triplet else l
    learns = {'plain (cross-entropy, bs 64)': mk(False), 'to_triplet (batch-hard, 8 x 8)': mk(True)}
    secs = epoch_times(learns, rounds)
    return table(secs, 'plain (cross-entropy, bs 64)', f'One epoch of `fit` on digits (resnet18 from scratch, 1,437 + 360 images of 32 px), median of {rounds} interleaved rounds', 1.10)

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--rounds', type=int, default=20)
    p.add_argument('--epoch-rounds', type=int, default=5)
    p.add_argument('--write', action='store_true')
    a = p.parse_args()
    tabs = bench_losses(a.rounds)
    for t in tabs: print(t, '\n', flush=True)
    te = bench_epochs(a.epoch_rounds)
    print(te, flush=True)
    if a.write: write_section('triplet', 'Triplet family (issue 3): `python bench/triplet.py --write`', NOTE + '\n\n' + '\n\n'.join(tabs + [te]))
