"""Tuning the one-line recipe on Fashion-MNIST (issue 5): the hard protocols (unseen classes, unknown-class detection) for
recipe variants, each scored with several features of the same trained network:
- `emb`:  the input of the last layer (what `get_embeddings` returns, 512-d);
- `pool`: the pooled body features (the output of fastai's `AdaptiveConcatPool2d`, before the head);
- `l2`, `l3`: resnet's layer2 / layer3 feature maps pooled (`get_embeddings(learn, layer=learn.model[0][-3 or -2])`);
- `multi`: layers 2, 3 and 4 pooled, each normalised, concatenated.

A recipe is a string: a method and its arguments, then training settings, e.g.
    "arcface s=16 m=0.2"  "cosface lr=1e-3 epochs=5 aug=1"  "triplet miner='hard' memory=1024 margin=0.1"  "softmax"
(`lr`, `epochs`, `bs`, `aug` are training settings; everything else goes to `learn.to_<method>(...)`; `triplet` gets P×K batches.)

Run: python bench/tune.py --per-class 1000 --recipes "arcface" "arcface aug=1" ... [--write]
Rows are added to bench/tune_table.csv (same recipe and size: replaced); --write puts the whole table in bench/RESULTS.md."""
import argparse, ast, time
from pathlib import Path
import numpy as np, pandas as pd, torch
import torch.nn.functional as F
from fastai.vision.all import aug_transforms, AdaptiveConcatPool2d, Hook, get_model, nn
from fastai_metric.all import *
from fastai_metric.embeddings import pooled_output
from fastai_metric.compare import METHODS, pk_kwargs, train_method, embed, body_layer
from quality import FASHION, per_class
from common import write_section

PROTOS = {k: v for k, v in FASHION.items() if k != 'closed'}
TRAIN = ('lr', 'epochs', 'bs', 'aug')

def parse(recipe):
    "`(conversion, training kwargs)` of a recipe string"
    name, *args = recipe.split()
    kw = {k: ast.literal_eval(v) for k, v in (a.split('=', 1) for a in args)}
    train = {k: kw.pop(k) for k in TRAIN if k in kw}
    if train.pop('aug', 0): train['batch_tfms'] = aug_transforms(size=28, max_rotate=0, max_warp=0, max_zoom=1.1)
    if name in METHODS and not kw: return name, train
    if name == 'triplet': return (lambda l: l.to_triplet(**{**pk_kwargs(l), **kw})), train
    return (lambda l: getattr(l, f'to_{name}')(**kw)), train

def features(learn, x):
    "L2-normalised features of the images `x` from one pass: `emb`, `pool` (body pooled, before the head), `l2`, `l3` (layer2, layer3 pooled), `multi` (layers 2-4)"
    mods = {'pool': next(m for m in get_model(learn.model).modules() if isinstance(m, AdaptiveConcatPool2d)),
            'l2': body_layer(learn, -3), 'l3': body_layer(learn, -2), 'l4': body_layer(learn, -1)}
    store = {k: [] for k in mods}
    hooks = [Hook(m, lambda m, i, o, k=k: store[k].append(pooled_output(m, i, o).float().cpu())) for k, m in mods.items()]
    try: e = embed(learn, x)
    finally:
        for h in hooks: h.remove()
    f = {k: F.normalize(torch.cat(v), dim=1) for k, v in store.items()}
    return {'emb': e, 'pool': f['pool'], 'l2': f['l2'], 'l3': f['l3'], 'multi': F.normalize(torch.cat([f['l2'], f['l3'], f['l4']], 1), dim=1)}

def pixels(x): return {'emb': embed(None, x)}

def scores(kind, known, data, feats):
    "Metrics of each feature kind under protocol `kind`: `feats(x)` gives {kind: features}"
    xtr, ytr, xte, yte = data
    if kind == 'closed':
        g, q = feats(xtr), feats(xte)
        return {f: {'1nn_accuracy': r['cmc@1'], 'map@r': r['map@r']} for f in q for r in [retrieval_metrics(q[f], yte, g[f], ytr, topk=(1,))]}
    if kind == 'unseen':
        m = ~np.isin(yte, known)
        return {f: {k: r[k] for k in ('cmc@1', 'map@r')} for f, q in feats(xte[m]).items()
                for r in [retrieval_metrics(q, yte[m], topk=(1,))]}
    g, q = feats(xtr[np.isin(ytr, known)]), feats(xte)
    return {f: {'auroc': open_set_auroc(g[f], q[f], ~np.isin(yte, known))} for f in q}

def run(recipe, data, protos, seed=0, **defaults):
    "Rows (one per protocol and feature) of `recipe` trained under every protocol of `protos`"
    rows = []
    for pname, (kind, known) in protos.items():
        xtr, ytr, xte, yte = data
        known = np.unique(ytr).tolist() if known is None else known
        if recipe == 'pixels': res, secs = scores(kind, known, data, pixels), 0.
        else:
            conv, train = parse(recipe)
            kn, kt = np.isin(ytr, known), np.isin(yte, known)
            learn, secs = train_method(conv, xtr[kn], ytr[kn], xte[kt], yte[kt], seed=seed, **{**defaults, **train})
            res = scores(kind, known, data, lambda x: features(learn, x))
        for f, r in res.items(): rows.append(dict(recipe=recipe, feature=f, protocol=pname, sec_per_epoch=secs, **r))
        print(pname, {f: {k: round(v, 4) for k, v in r.items()} for f, r in res.items()}, flush=True)
    return rows

def summary(t):
    "One row per size, recipe and feature: closed-set 1-NN accuracy and MAP@R, MAP@R on both unseen splits, unknown-class AUROC"
    t = t.copy()
    t['protocol'] = t.protocol.map(lambda p: p + (' 1-NN' if p == 'closed' else ''))
    t['value'] = t['1nn_accuracy'].fillna(t['map@r']).fillna(t['auroc']) if '1nn_accuracy' in t else t['map@r'].fillna(t['auroc'])
    if '1nn_accuracy' in t: t = pd.concat([t, t[t.protocol == 'closed 1-NN'].assign(protocol='closed MAP@R', value=lambda d: d['map@r'])])
    cols = [c for c in ['closed 1-NN', 'closed MAP@R', *PROTOS] if c in set(t.protocol)]
    out = t.pivot_table(index=['n_train', 'recipe', 'feature'], columns='protocol', values='value', sort=False)[cols]
    secs = t.groupby(['n_train', 'recipe']).sec_per_epoch.mean().rename('sec/epoch')     # mean over the protocols run
    return out.join(secs, on=['n_train', 'recipe']).reset_index()

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--recipes', nargs='*', default=[], help='none: only print (and --write) the table'); p.add_argument('--per-class', type=int, default=1000)
    p.add_argument('--epochs', type=int, default=3); p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--seed', type=int, default=0); p.add_argument('--write', action='store_true')
    p.add_argument('--protocols', nargs='+', default=list(PROTOS), help=f"of {list(FASHION)}")
    p.add_argument('--note', default='', help='Markdown put before the table in RESULTS.md (what the runs show)')
    a = p.parse_args()
    xtr, ytr, xte, yte = fashion_mnist()
    xtr, ytr = per_class(xtr, ytr, a.per_class)
    n_train = a.per_class or 6000
    csv = Path(__file__).parent/'tune_table.csv'
    for r in a.recipes:
        start = time.time()
        rows = pd.DataFrame(run(r, (xtr, ytr, xte, yte), {k: FASHION[k] for k in a.protocols}, a.seed,
                                epochs=a.epochs, lr=a.lr)).assign(n_train=n_train)
        old = pd.read_csv(csv) if csv.exists() else rows.iloc[:0]
        old = old[~((old.recipe == r) & (old.n_train == n_train) & old.protocol.isin(a.protocols))]
        pd.concat([old, rows]).to_csv(csv, index=False)
        print(f'{r}: {time.time() - start:.0f} s', flush=True)
    s = summary(pd.read_csv(csv))
    print(s.to_string())
    if a.write:
        body = ("Tuning runs (`python bench/tune.py`): resnet18 from scratch at 28 px, fit_one_cycle; `n_train` training images per "
                "class (6000 = all), defaults 3 epochs, lr 3e-3, batch 128, seed 0 unless the recipe says otherwise. `feature`: `emb` "
                "= the 512-d embedding (input of the last layer), `pool` = the pooled body features before the head, `l2`/`l3` = "
                "resnet's layer2/layer3 pooled (`get_embeddings(learn, layer=learn.model[0][-3/-2])`), `multi` = layers 2-4. Values: MAP@R "
                "on the unseen classes (leave-one-out), AUROC for unknown classes; closed set: 1-NN accuracy and MAP@R, gallery = the "
                "training images. `sec/epoch`: seconds per training epoch, mean over the protocols run (their training sets differ: "
                "6 of 10 classes for unseen {0,2,4,6} and unknown, 5 for unseen {5..9}, all 10 for closed).\n\n" + (a.note.strip() + '\n\n' if a.note else '')
                + '| ' + ' | '.join(s.columns) + ' |\n|' + '---|' * len(s.columns) + '\n'
                + '\n'.join('| ' + ' | '.join(('' if np.isnan(v) else f'{v:.3f}') if isinstance(v, float) else str(v) for v in row) + ' |' for row in s.itertuples(index=False)))
        write_section('tuning', 'Tuning the recipe (issue 5): `python bench/tune.py`', body)
