"""Run every notebook in `nbs/` as a test, skipping cells flagged with the project's `tst_flags` (slow, cuda, notest).

Each notebook runs in its own process: a notebook re-executes its `@patch` cells, which would otherwise re-patch `Learner` for the
tests that follow with classes defined inside the notebook's namespace."""
import subprocess, sys
from pathlib import Path
import pytest
from nbdev.config import get_config
from fastai_metric.test_utils import shared_data

NBS = Path(__file__).parent.parent/'nbs'
SKIP = get_config(NBS).tst_flags.split()
RUN = '''import sys
from nbdev.test import test_nb as run_notebook
ok, secs = run_notebook(sys.argv[1], skip_flags=sys.argv[2:])
sys.exit(0 if ok else 1)'''

NEEDS = {'tutorial.omniglot.ipynb': 'omniglot'}   # notebooks that need a folder of the team's shared data (`shared_data`)

@pytest.mark.parametrize('nb', sorted(NBS.glob('*.ipynb')), ids=lambda p: p.name)
def test_notebook(nb):
    if nb.name in NEEDS and shared_data(NEEDS[nb.name]) is None:
        pytest.skip(f'needs ../shared/{NEEDS[nb.name]} (or FASTAI_METRIC_SHARED): {nb.name} reads its data from there')
    r = subprocess.run([sys.executable, '-c', RUN, str(nb), *SKIP], capture_output=True, text=True)
    assert r.returncode == 0, f'{nb.name} failed:\n{r.stderr[-6000:]}'
