"""Shared fixtures. Under pytest-xdist (`pytest -n auto`, the default in pyproject.toml) each worker and the notebooks it runs use
one torch thread: the workers share the cores instead of fighting over them, and the numbers do not depend on the core count."""
import os, warnings
if os.environ.get('PYTEST_XDIST_WORKER'): os.environ['OMP_NUM_THREADS'] = '1'   # before torch starts; notebook processes inherit it
import pytest
from fastai.vision.all import *
from fastai_metric.all import *
from fastai_metric.test_utils import finite_record
if os.environ.get('PYTEST_XDIST_WORKER'): torch.set_num_threads(1)

warnings.filterwarnings('ignore', message='.*torch.jit.script.*')
warnings.filterwarnings('ignore', message='.*load_learner.*')

@pytest.fixture(scope='session')
def digits_path(tmp_path_factory):
    "scikit-learn's digits (8×8) as a 16-px image folder, written once per test session"
    return digits_folder(tmp_path_factory.mktemp("digits"), sz=16)

@pytest.fixture
def digits_dls(digits_path):
    set_seed(42, reproducible=True)
    return ImageDataLoaders.from_folder(digits_path, valid='valid', bs=64, num_workers=0)

def fit_quiet(learn, epochs, lr=1e-2):
    "`fit_one_cycle` without output; every recorded loss and metric must be finite"
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, lr)
    finite_record(learn)
    return learn

def fit_briefly(learn, pct=0.25, lr=3e-3):
    "A quarter of an epoch (and the whole validation): for tests of plumbing whose training quality is measured elsewhere"
    w0 = [p.detach().clone() for p in learn.model.parameters()]
    with learn.no_bar(), learn.no_logging(): learn.fit(1, lr, cbs=ShortEpochCallback(pct, short_valid=False))
    assert any(not torch.equal(a, p) for a,p in zip(w0, learn.model.parameters())), 'nothing trained'
    finite_record(learn)
    return learn

def pytest_pycollect_makeitem(collector, name, obj):
    "Collect only the test functions a test module defines, not fastai's `test_set`, fastcore's `test_eq`, ... that star imports bring"
    mod = getattr(collector, 'module', None)
    if mod is not None and callable(obj) and getattr(obj, '__module__', mod.__name__) != mod.__name__: return []
