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
    assert (st['size'], st['rot'], st['flip'], st['crop'], st['epochs'], st['lr']) == (56, 4, True, True, 5, TRAIN['lr'])
    learn = convert(toy_learner(*blobs()))
    heads = [m for m in learn.model.modules() if isinstance(m, ArcMarginProduct)]
    assert len(heads) == 1 and (heads[0].s, heads[0].m) == (16, 0.2)

def test_recipe_settings_and_refusals():
    _, st = parse('cosface s=16 m=0.2 rot=4 aug=strokes size=40', size=28)
    assert (st['size'], st['rot'], st['aug'], st['epochs']) == (40, 4, 'strokes', TRAIN['epochs'])
    with pytest.raises(ValueError, match='Unknown recipe'): parse('arcfase s=16')

def test_recipe_parts_and_losses():
    "Parts joined by ' + ' apply in order; LOSSES train on P×K batches, `tree=alphabets` and `cats=N` use the classes' alphabets"
    import numpy as np
    from fastai_metric.all import PrototypicalLoss, HierarchicalTripletLoss, TripletLossWithMiner
    x, y = blobs(n=256, c=8)
    convert, st = parse('arcface s=16 m=0.2 + add_triplet weight=0.5 rot=4', size=28)
    assert st['rot'] == 4
    learn = convert(toy_learner(x, y))
    assert any(isinstance(m, ArcMarginProduct) for m in learn.model.modules())
    added = [c for c in learn.cbs if isinstance(getattr(c, 'loss', None), TripletLossWithMiner)]
    assert len(added) == 1 and added[0].weight == 0.5               # the second part: ArcFace's loss + 0.5 x triplets
    learn = parse('prototypical P=4 K=8 distance=sqeuclidean')[0](toy_learner(x, y))
    assert isinstance(learn.loss_func.loss, PrototypicalLoss) and learn.loss_func.loss.distance == 'sqeuclidean'
    assert learn.dls.train.bs == 32
    groups = np.arange(8) // 4                                      # two 'alphabets' of four classes
    learn = parse('hierarchical tree=alphabets cats=1 P=2 K=4')[0](toy_learner(x, y), groups)
    loss = learn.loss_func.loss
    assert isinstance(loss, HierarchicalTripletLoss) and loss.given and loss.level[0, 1] < loss.level[0, 4]
    _, yb = learn.dls.train.one_batch()
    assert len(set(groups[yb.cpu().numpy()])) == 1                 # cats=1: every batch from one alphabet
    for r in ('hierarchical tree=alphabets', 'prototypical cats=2'):   # the alphabets missing: a clear error, not a TypeError
        with pytest.raises(ValueError, match='needs the classes'): parse(r)[0](toy_learner(x, y))

def test_class_views_crop_and_conv_net():
    "Rotations and mirror images as classes of their own alphabets; the ConvNet-4 backbone; `crop` and `flip` settings"
    import numpy as np
    from omniglot import class_views, conv_net, ARCHS
    _, st = parse('arcface s=16 rot=4 flip=True crop=True arch=conv4')
    assert (st['rot'], st['flip'], st['crop'], st['arch']) == (4, True, True, 'conv4')
    x, y = np.random.randint(0, 255, (6, 5, 5), dtype=np.uint8), np.array([0, 1, 2, 0, 1, 2])
    valid, groups = np.array([1, 1, 1, 0, 0, 0], bool), np.array([0, 0, 1])
    xv, yv, vv, gv = class_views(x, y, valid, groups, rot=2, flip=True)
    assert len(xv) == 24 and sorted(set(yv)) == list(range(12)) and vv.sum() == 12
    for i in range(24):                                           # item i is a view of image i % 6, of class y·4 + view
        view = i // 6
        assert yv[i] == y[i % 6] * 4 + view and gv[yv[i]] == groups[y[i % 6]] * 4 + view
        im = x[i % 6][:, ::-1] if view >= 2 else x[i % 6]
        assert (xv[i] == np.rot90(im, view % 2)).all()
    assert class_views(x, y, valid, None)[1] is y                   # one view: as it was
    net = conv_net(width=8)
    assert net(torch.randn(2, 3, 28, 28)).shape == (2, 8, 1, 1) and ARCHS['conv4']().__len__() == 5
    with pytest.raises(ValueError, match='no pretrained'): conv_net(pretrained=True)
