"The named recipes of `bench/omniglot.py` (issue 30): `--methods best` must train what RESULTS says it trains"
import sys
from pathlib import Path
import pytest, torch
sys.path.insert(0, str(Path(__file__).parents[1]/'bench'))
from omniglot import parse, RECIPES, TRAIN
from fastai_metric.heads import ArcMarginProduct
from fastai_metric.test_utils import toy_learner, blobs

def test_best_is_arcface_with_its_settings():
    convert, st = parse('best', size=28, epochs=15)     # the command line's defaults lose to the recipe's own settings
    assert (st['size'], st['rot'], st['epochs'], st['lr']) == (56, 4, 10, TRAIN['lr'])
    learn = convert(toy_learner(*blobs()))
    heads = [m for m in learn.model.modules() if isinstance(m, ArcMarginProduct)]
    assert len(heads) == 1 and (heads[0].s, heads[0].m) == (16, 0.2)

def test_recipe_settings_and_refusals():
    _, st = parse('cosface s=16 m=0.2 rot=4 aug=strokes size=40', size=28)
    assert (st['size'], st['rot'], st['aug'], st['epochs']) == (40, 4, 'strokes', TRAIN['epochs'])
    with pytest.raises(ValueError, match='Unknown recipe'): parse('arcfase s=16')
