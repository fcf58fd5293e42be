"""Choosing a one-shot recipe without the runs (issue 30): train on a minimal background set with one alphabet held out, and
score 20-way 1-shot episodes drawn within the held-out alphabet (`few_shot_accuracy`): characters the model never saw, as in
Lake's runs, but from the background set only. Lake's 20 runs are measured by `bench/omniglot.py` once a recipe is fixed.

A recipe is a string as in `bench/omniglot.py` (`parse`): a method and its arguments, then training settings, e.g.
    "arcface s=16 m=0.2"   "arcface s=16 m=0.2 rot=4 aug=strokes size=40 epochs=20"   "softmax rot=4"

    python bench/omniglot_tune.py --split small1 --recipes "arcface s=16 m=0.2" "arcface s=16 m=0.2 rot=4" [--folds 2]
    python bench/omniglot_tune.py --write            # the table so far into bench/RESULTS.md (section omniglot_tune)
Rows go to bench/omniglot_tune_table.csv (same recipe, split and held-out alphabet: replaced). Folds: the split's alphabets with
at least 20 characters, largest first (small1: Korean 40, Latin 26, Balinese 24, Greek 24, Early_Aramaic 22; small2:
Japanese_(katakana) 47, Sanskrit 42, Latin 26, Greek 24; Tagalog's 17 are too few for 20-way episodes)."""
import argparse, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from fastai_metric.all import *
from fastai_metric.compare import embed, body_layer
from fastai_metric.few_shot import omniglot_items
from fastai_metric.test_utils import shared_data
from omniglot import train_recipe, split_arrays, parse, RECIPES
from common import write_section

HERE = Path(__file__).parent
TABLE = HERE/'omniglot_tune_table.csv'

def folds(split, path, n):
    "The held-out alphabets: those with at least 20 characters, largest first"
    counts = omniglot(split, path).groupby('alphabet').character.nunique().sort_values(ascending=False, kind='stable')
    return list(counts[counts >= 20].index[:n])

def validate(recipe, split, held, path, seed, n_episodes, export=None):
    """Train `recipe` without the alphabet `held`; 20-way 1-shot episode error within it, final embedding and layer3
    (`export`: a folder to keep the learner in, `learn.export`)"""
    df = omniglot(split, path)
    size, crop = (parse(recipe)[1][k] for k in ('size', 'crop'))
    x, y, classes, valid = split_arrays(split, path, size, crop)
    out = (df.alphabet == held).values
    if df[out].character.nunique() < 20:
        raise ValueError(f"{held!r} has {df[out].character.nunique()} characters in {split}: hold out an alphabet with at "
                         f"least 20 for 20-way episodes ({', '.join(folds(split, path, 99))})")
    keep = np.flatnonzero(~out)
    kept, y_in = np.unique(y[keep], return_inverse=True)
    start = time.time()
    learn, spe, st = train_recipe(recipe, x[keep], y_in, valid[keep], seed, alphabet_tree(classes[kept])[0])
    minutes = (time.time() - start) / 60
    if export:
        Path(export).mkdir(parents=True, exist_ok=True)
        learn.export(Path(export).resolve()/f"tune_{split}_{held}_{recipe.replace(' ', '_').replace('/', '-')}_s{seed}.pkl")
    res = {}
    for name, layer, shifts in (('error', None, None), ('error_layer3', lambda l: body_layer(l, -2), None),
                                ('error_tta', None, SHIFTS)):
        e = embed(learn, x[out], layer=layer, shifts=shifts)
        res[name] = 1 - few_shot_accuracy(e, y[out], n_way=20, k_shot=1, n_episodes=n_episodes, seed=0).accuracy
    # the same network on Lake's runs, for the ablation only: settings are chosen on the columns above
    runs = omniglot_runs(path)
    load = omniglot_items(size, crop)
    res.update(runs=one_shot_error(learn, runs, load=load).error,
               runs_tta=one_shot_error(learn, runs, load=load, shifts=SHIFTS).error)
    row = dict(recipe=recipe, split=split, held_out=held, seed=seed, **res, minutes=minutes, sec_per_epoch=spe,
               cpu=cpu_description())
    print(' '.join(f'{k}={v:.4f}' if isinstance(v, float) else f'{k}={v}' for k, v in row.items()), flush=True)
    return row

# the levers of issue 30 tried after the recipe was first fixed (rows below), in words
LEVERS = """**Further levers (issue 30), after the recipe was fixed.** Screened at 28 px with rotations as classes, 15 epochs, Korean
held out, one seed (ArcFace s=16 m=0.2: 17.5): sub-center ArcFace (k=3) 16.4, AdaFace (s=16) 17.3, ArcFace + batch-hard triplet
(`+ add_triplet`) 17.5, `PrototypicalLoss` on P×K = 8×16 batches 16.5 (32×4: 19.3), resnet34 16.3 (1.7× the time per epoch),
`HierarchicalTripletLoss(tree=alphabets)` 58.1 (with batches from 2 alphabets, `cats=2`: 57.0), batch-hard triplets with
cross-batch memory 45.8; the ImageNet EfficientNet-Lite0 fine-tuned at 56 px (`pretrained=True lr_mult=1`, 10 epochs) 26.1.
The three within about a point of the best went on to the recipe's 56 px: sub-center ArcFace 12.4 (ArcFace 12.4 with seed 0,
14.1 with seed 1: seeds alone move it 1.6 points), `PrototypicalLoss` 16.1, resnet34 for the 6 epochs its time allows 15.7
(resnet18 in 6 epochs: 14.2). A second fold, Latin held out, for the two best: ArcFace 13.5, sub-center ArcFace 11.2, so over
the two folds (seed 0) sub-center ArcFace leads by 1.2 points, less than the seeds' spread: it is the candidate (`subcenter` in
`RECIPES`); measured on small1's runs with 3 seeds it made 12.75% (TTA 12.0%) against ArcFace's 12.3%, so `best` stays
ArcFace. The seed-1 ArcFace row's time is left out (it ran beside another training).

**Third round: the input, the backbone and test time.** At 56 px, with the recipe of the time (`arcface56`: 12.4 on Korean,
13.5 on Latin): characters cropped to the square around their ink (`crop=True`, `crop_ink`) 12.3 and 11.9; mirror images as
classes too (`flip=True`: 8 views a character, 5 epochs for the same steps) 11.6 on Korean; both 11.3 and 9.0, 2.8 points
ahead over the two folds, more than the seeds' 1.6: the new `best`. ConvNet-4 (`arch=conv4`, the few-shot literature's four
conv blocks) transfers better than resnet18 at 28 px (16.1 against 17.5, in 2.2 minutes; 128 channels 15.4) but not at 56 px
(15.0), and 30 epochs hurt it too (19.2). Test time, on `arcface56` without Korean (`bench/omniglot_test_time.py`): the final
embedding 12.4 beats the head's linear layer before its ReLU (13.3), the batch-normed pooled body (13.3), layer4 (13.8) and
layer3 (19.0); centring on the training alphabets' mean embedding (SimpleShot's CL2N) changes nothing (12.4; with shifts 12.1
against 12.2) and hurts layer3 (20.8)."""

def pct(v): return '–' if v != v else f'{100*v:.1f}'

def markdown(t):
    t = t.assign(**{c: t.get(c, np.nan) for c in ('runs', 'runs_tta')})
    g = t.groupby(['split', 'recipe'], sort=False)
    s = g.agg(error=('error', 'mean'), layer3=('error_layer3', 'mean'), tta=('error_tta', 'mean'), folds=('held_out', 'nunique'),
              seeds=('seed', 'nunique'),
              runs=('runs', 'mean'), runs_tta=('runs_tta', 'mean'),
              held=('held_out', lambda h: ', '.join(sorted(set(h)))), minutes=('minutes', 'mean')).reset_index()
    out = []
    for split, d in s.groupby('split', sort=False):
        out += [f'**{split}**: 20-way 1-shot episode error % on held-out alphabets (mean over them): final embedding, layer3, and '
                'the final embedding averaged over one-pixel shifts (`SHIFTS`)\n',
                '| recipe | held out | seeds | final | layer3 | final, shifted (TTA) | runs: final | runs: TTA | minutes / training |',
                '|---|---|---|---|---|---|---|---|---|']
        out += [f"| `{r.recipe}` | {r.held} | {r.seeds} | {100*r.error:.1f} | {100*r.layer3:.1f} | {pct(r.tta)} | "
                f"{pct(r.runs)} | "
                f"{pct(r.runs_tta)} | {r.minutes:.1f} |" for r in d.itertuples()]
        out.append('')
    return '\n'.join(out)

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--recipes', nargs='*', default=[]); p.add_argument('--split', nargs='+', default=['small1'])
    p.add_argument('--folds', type=int, default=1, help='held-out alphabets per recipe (largest first)')
    p.add_argument('--held', nargs='*', default=None, help='these held-out alphabets instead of --folds')
    p.add_argument('--seed', type=int, default=0); p.add_argument('--episodes', type=int, default=500)
    p.add_argument('--path', default=None); p.add_argument('--write', action='store_true')
    p.add_argument('--export', default=None, help='folder to export each trained learner to (learn.export)')
    a = p.parse_args()
    path = a.path or shared_data('omniglot')
    t = pd.read_csv(TABLE) if TABLE.exists() else pd.DataFrame()
    for split in a.split:
        for held in a.held or folds(split, path, a.folds):
            for r in a.recipes:
                row = validate(r, split, held, path, a.seed, a.episodes, a.export)
                if len(t): t = t[~((t.recipe == r) & (t.split == split) & (t.held_out == held) & (t.seed == a.seed))]
                t = pd.concat([t, pd.DataFrame([row])], ignore_index=True)
                t.to_csv(TABLE, index=False)
    if len(t):
        body = ("Each recipe trained on a minimal background set without one alphabet, scored on 20-way 1-shot episodes within "
                f"that alphabet (500 episodes, cosine, nearest example); one seed. CPU: {t.cpu.iloc[-1]}. Settings were chosen on "
                "the episodes' *final* column only. The *runs* columns are the same network (trained without the held-out "
                "alphabet) on Lake's 20 runs, measured for the ablation after training and never used to choose; rows without "
                "them ran before the column existed. Minutes include other jobs on the same cores for some rows. The recipe "
                f"kept, `best` in `bench/omniglot.py`: `{RECIPES['best']}`.\n\n" + LEVERS + "\n\n" + markdown(t))
        print(body)
        if a.write: write_section('omniglot_tune', 'One-shot recipes chosen on held-out background alphabets (issue 30): '
                                                  '`python bench/omniglot_tune.py`', body)
