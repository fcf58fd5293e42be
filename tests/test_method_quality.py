"""Every head, loss and miner learns (issue 28): each method of `METHODS` (and the semi-hard miner) trains a small conv net on
scikit-learn's digits (16 px, 5 epochs, a few seconds) and must lift MAP@R of the validation images against the training
images well above the same learner untrained. MAP@R, not 1-NN: a random conv net already finds 95% of digits' nearest
neighbours, but ranks a whole class together only after training.

Bars: the lowest of 3 seeds (0, 1, 2; measured 2026-12-04) minus about 0.05; untrained MAP@R is 0.33-0.36."""
import pytest
from fastai.vision.all import *
from fastai_metric.all import *
from fastai_metric.compare import METHODS
from fastai_metric.test_utils import improves, gallery_map_at_r

ALL = dict(METHODS, triplet_semihard=lambda l: l.to_triplet(miner='semihard', n_classes=8, n_instances=8),
           prototypical=lambda l: l.to_metric_loss(PrototypicalLoss(), n_classes=8, n_instances=8))
BARS = {   # method: MAP@R bar (measured over seeds 0-2, after 5 epochs)
    'softmax': 0.72,            # 0.77-0.83
    'l2_constrained': 0.82,     # 0.875-0.885
    'arcface': 0.93,            # 0.981-0.986
    'cosface': 0.93,            # 0.976-0.986
    'sphereface': 0.82,         # 0.873-0.893
    'center_loss': 0.87,        # 0.918-0.940
    'triplet_hard': 0.92,       # 0.967-0.974
    'triplet_all': 0.92,        # 0.972-0.973
    'hard_cluster': 0.55,       # 0.600-0.680
    'hierarchical': 0.89,       # 0.940-0.951
    'arcface_triplet': 0.92,    # 0.974-0.987
    'subcenter_arcface': 0.92,  # 0.974-0.982
    'adaface': 0.93,            # 0.978-0.987
    'triplet_memory': 0.77,     # 0.818-0.854
    'triplet_semihard': 0.93,   # 0.979-0.986
    'prototypical': 0.89,       # 0.939-0.957 (2026-12-05)
}

def small_cnn(pretrained=False, **kwargs):
    "Three conv layers and a pool: `vision_learner` cuts at the pool and adds its usual head"
    return nn.Sequential(ConvLayer(3, 16, stride=2), ConvLayer(16, 32, stride=2), ConvLayer(32, 64), nn.AdaptiveAvgPool2d(1))

@pytest.fixture(scope='module')
def digits16(): return digits_arrays(sz=16)

def test_every_method_has_a_bar(): assert set(BARS) == set(ALL)

@pytest.mark.quality
@pytest.mark.parametrize('method', list(ALL))
def test_method_learns_on_digits(method, digits16):
    set_seed(0, reproducible=True)
    learn = ALL[method](vision_learner(array_dls(*digits16, bs=64), small_cnn, pretrained=False))
    def fit(l):
        with l.no_bar(), l.no_logging(): l.fit_one_cycle(5, 1e-2)
    improves(learn, fit, gallery_map_at_r, bar=BARS[method], gain=0.2)
