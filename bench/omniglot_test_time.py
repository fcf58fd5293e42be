"""Test-time levers of issue 30 on one learner trained without an alphabet (`bench/omniglot_tune.py --export DIR`): where to
take the embedding (the final embedding, the head's linear layer before its ReLU, the head's batch-normed pooled body, layer4,
layer3), one-pixel shifts (`SHIFTS`), and centring (SimpleShot's CL2N: subtract the mean embedding of the training
alphabets' images, then L2-normalise). Scored like `omniglot_tune.py`: 20-way 1-shot episodes within the held-out alphabet
(chosen on these), and Lake's runs for the ablation only.

    python bench/omniglot_tune.py --recipes arcface56 --held Korean --export /tmp/tune
    python bench/omniglot_test_time.py /tmp/tune/tune_small1_Korean_arcface56_s0.pkl --held Korean"""
import argparse
import numpy as np, torch.nn.functional as F
from fastai.vision.all import load_learner
from fastai_metric.all import *
from fastai_metric.compare import embed, body_layer
from fastai_metric.test_utils import shared_data
from omniglot import split_arrays, run_embedder

def layers(learn):
    "The places to embed at: name -> module (None: the learner's embedding)"
    head = learn.model[1]
    return {'final': None, 'linear (before ReLU)': head[4], 'pooled body (batch-normed)': head[2],
            'layer4': body_layer(learn, -1), 'layer3': body_layer(learn, -2)}

def centred(e, mu): return F.normalize(e - mu, dim=1)

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('learner'); p.add_argument('--split', default='small1'); p.add_argument('--held', default='Korean')
    p.add_argument('--size', type=int, default=56); p.add_argument('--crop', action='store_true')
    p.add_argument('--path', default=None); p.add_argument('--episodes', type=int, default=500)
    a = p.parse_args()
    path = a.path or shared_data('omniglot')
    learn, df, runs = load_learner(a.learner), omniglot(a.split, path), omniglot_runs(path)
    x, y, _, _ = split_arrays(a.split, path, a.size, a.crop)
    out = (df.alphabet == a.held).values
    seen = x[np.random.default_rng(0).choice(np.flatnonzero(~out), min(1500, (~out).sum()), replace=False)]
    print('| embedding | shifts | centred | episodes (held out) | runs |\n|---|---|---|---|---|')
    for name, layer in layers(learn).items():
        for shifts in (None, SHIFTS):
            mu, e = (embed(learn, im, layer=layer, shifts=shifts) for im in (seen, x[out]))
            mu, runs_emb = mu.mean(0), run_embedder(learn, a.size, layer, shifts, a.crop)
            for centre in (False, True):
                f = (lambda v: centred(v, mu)) if centre else (lambda v: v)
                err = 1 - few_shot_accuracy(f(e), y[out], n_way=20, k_shot=1, n_episodes=a.episodes, seed=0).accuracy
                runs_err = one_shot_error(lambda fs: f(runs_emb(fs)), runs).error
                print(f"| {name} | {'yes' if shifts else 'no'} | {'yes' if centre else 'no'} | {100*err:.1f} | "
                      f"{100*runs_err:.1f} |", flush=True)
