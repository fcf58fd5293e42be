import warnings
import pytest
from fastai.vision.all import *
from fastai_metric.all import *

warnings.filterwarnings('ignore', message='.*torch.jit.script.*')
warnings.filterwarnings('ignore', message='.*load_learner.*')

@pytest.fixture(scope='session')
def digits_path(tmp_path_factory):
    "scikit-learn's digits as a 32-px image folder, written once per test session"
    return digits_folder(tmp_path_factory.mktemp('digits'), sz=32)

@pytest.fixture
def digits_dls(digits_path):
    set_seed(42, reproducible=True)
    return ImageDataLoaders.from_folder(digits_path, valid='valid', bs=64, num_workers=0)

def fit_quiet(learn, epochs, lr=1e-2):
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, lr)
    return learn

def pytest_pycollect_makeitem(collector, name, obj):
    "Collect only the test functions a test module defines, not fastai's `test_set`, fastcore's `test_eq`, ... that star imports bring"
    mod = getattr(collector, 'module', None)
    if mod is not None and callable(obj) and getattr(obj, '__module__', mod.__name__) != mod.__name__: return []
