"Losses on embeddings on real data: center loss, margin head + triplet, any pytorch-metric-learning loss, hierarchical triplet"
import pytest
from conftest import fit_quiet, fit_briefly
from fastai.vision.all import *
from fastai_metric.all import *
from fastai_metric.test_utils import export_round_trip
from fastai_metric.metric_learner import ModelWithLosses

@pytest.mark.parametrize('on', [pytest.param('embedding', marks=pytest.mark.quality), 'logits'])   # quality: embedding only
def test_center_loss_on_digits(on, digits_dls, tmp_path):
    learn = vision_learner(digits_dls, resnet18, pretrained=False, metrics=accuracy, path=tmp_path).add_center_loss(0.1, on=on)
    cl = learn.model.loss_modules['center']
    assert cl.centers.shape == (10, 512 if on == 'embedding' else 10)
    c0 = cl.centers.detach().clone()
    fit_quiet(learn, 3) if on == 'embedding' else fit_briefly(learn)   # quality once; the parts' bookkeeping on both
    names, vals = learn.recorder.metric_names[1:-1], learn.recorder.values[-1]
    rec = dict(zip(names[::-1], vals[::-1]))                            # from the right: a short epoch records no train_loss
    assert rec['valid_loss'] == pytest.approx(rec['base_loss'] + 0.1*rec['center_loss'], rel=1e-3)
    if on == 'embedding': assert rec['accuracy'] > 0.8 and knn_accuracy(learn) > 0.8, rec
    assert not torch.equal(c0, cl.centers.detach())                      # trained by the learner's optimiser
    learn2 = export_round_trip(learn, tmp_path)
    assert torch.equal(learn2.model.loss_modules['center'].centers, cl.centers)  # export keeps the centers
    learn.save('m')
    learn3 = vision_learner(digits_dls, resnet18, pretrained=False, path=tmp_path).add_center_loss(0.1, on=on).load('m')
    assert torch.equal(learn3.model.loss_modules['center'].centers, cl.centers)  # and so do save/load

@pytest.mark.quality
def test_arcface_plus_triplet_on_digits(digits_dls, tmp_path):
    learn = vision_learner(digits_dls, resnet18, pretrained=False, metrics=accuracy).to_arcface().add_triplet(1., margin=0.2)
    fit_quiet(learn, 3)
    rec = dict(zip(learn.recorder.metric_names[1:-1], learn.recorder.values[-1]))
    assert {'base_loss', 'triplet_loss'} <= set(rec) and rec['triplet_loss'] > 0
    assert rec['valid_loss'] == pytest.approx(rec['base_loss'] + rec['triplet_loss'], rel=1e-3)
    assert rec['accuracy'] > 0.8 and knn_accuracy(learn) > 0.8, rec
    learn2 = export_round_trip(learn, tmp_path)
    it = learn.dls.valid_ds.items[0]
    assert learn.predict(it)[0] == learn2.predict(it)[0]

def test_pml_multisimilarity_with_miner(digits_dls, tmp_path):
    pml = pytest.importorskip('pytorch_metric_learning')
    from pytorch_metric_learning import losses, miners
    set_seed(0)
    learn = vision_learner(digits_dls, resnet18, pretrained=False).to_metric_loss(
        losses.MultiSimilarityLoss(), miners.MultiSimilarityMiner(), n_classes=8, n_instances=4, seed=0)
    fit_briefly(learn)                                     # how well it learns: the triplet tutorial (3 epochs, cmc@1 0.90)
    export_round_trip(learn, tmp_path)

@pytest.mark.quality
def test_pml_loss_with_parameters(digits_dls, tmp_path):
    pytest.importorskip('pytorch_metric_learning')
    from pytorch_metric_learning import losses
    set_seed(0)
    loss = losses.ArcFaceLoss(num_classes=10, embedding_size=512)
    learn = vision_learner(digits_dls, resnet18, pretrained=False).to_metric_loss(loss, n_classes=8, n_instances=4, seed=0)
    w0 = loss.W.detach().clone()
    fit_quiet(learn, 3, 3e-3)
    assert not torch.equal(w0, loss.W.detach())                          # the loss's weights are trained
    assert knn_accuracy(learn) > 0.8
    learn2 = export_round_trip(learn, tmp_path)
    assert torch.equal(learn2.model.loss_modules['loss'].W, loss.W) and learn2.loss_func.loss is learn2.model.loss_modules['loss']

@pytest.mark.quality
def test_hierarchical_triplet_on_digits(digits_dls):
    set_seed(0)
    learn = vision_learner(digits_dls, resnet18, pretrained=False).to_metric_loss(
        HierarchicalTripletLoss(10, refresh_every=20), n_classes=8, n_instances=4, seed=0)
    fit_quiet(learn, 3, 3e-3)
    htl = learn.model.loss_modules['loss']
    assert htl.n_builds.item() >= 3 and len(htl.level.unique()) > 2
    assert knn_accuracy(learn) > 0.8

def _reg_dls(digits_path):
    return DataBlock(blocks=(ImageBlock, RegressionBlock()), get_items=get_image_files, get_y=lambda p: float(p.parent.name),
                     splitter=GrandparentSplitter(valid_name='valid')).dataloaders(digits_path, bs=32, num_workers=0)

@pytest.mark.parametrize('convert', [lambda l: l.add_center_loss(), lambda l: l.add_triplet(), lambda l: l.to_triplet(),
                                     lambda l: l.to_metric_loss(TripletLossWithMiner())], ids=['center', 'add_triplet', 'triplet', 'metric_loss'])
def test_regression_refused(convert, digits_path):
    learn = vision_learner(_reg_dls(digits_path), resnet18, pretrained=False, n_out=1)
    with pytest.raises(ValueError, match='single-label classification'): convert(learn)
    assert isinstance(learn.model[1][-1], nn.Linear) and not isinstance(learn.model, ModelWithLosses)

def test_too_many_classes_per_batch(digits_dls):
    learn = vision_learner(digits_dls, resnet18, pretrained=False)
    with pytest.raises(ValueError, match='only 10 classes'): learn.to_triplet(n_classes=12)
    assert isinstance(learn.model[1][-1], nn.Linear)

@pytest.mark.parametrize('kind', ['hard', 'all'])
def test_same_loss_and_gradient_as_pml(kind):
    """On random P×K batches our miner + loss give pytorch-metric-learning's value and gradient (mean over the mined triplets).
    pml's TripletMarginMiner(type_of_triplets='all') keeps only triplets within the margin, so every triplet is pml's loss without a miner."""
    pytest.importorskip('pytorch_metric_learning')
    from pytorch_metric_learning import losses, miners, reducers
    ours = TripletLossWithMiner(0.2, HardTripletsMiner() if kind == 'hard' else AllTripletsMiner())
    pm = miners.BatchHardMiner() if kind == 'hard' else lambda e, l: None
    pl = losses.TripletMarginLoss(margin=0.2, reducer=reducers.MeanReducer())
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        p, k = int(torch.randint(2, 9, (1,), generator=g)), int(torch.randint(2, 6, (1,), generator=g))
        x, y = torch.randn(p*k, 32, generator=g), torch.arange(p).repeat_interleave(k)
        x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
        l1 = ours(x1, y); l2 = pl(x2, y, pm(x2, y))
        l1.backward(); l2.backward()
        torch.testing.assert_close(l1, l2, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(x1.grad, x2.grad, atol=1e-5, rtol=1e-3)

def test_pml_default_reducer_and_soft_margin_differ_as_documented():
    """pml's default reducer (AvgNonZeroReducer) averages over the non-zero triplets only: its value is ours × all / non-zero.
    Our soft margin is softplus(d_ap − d_an); pml's smooth_loss=True is softplus(d_ap − d_an + margin)"""
    pytest.importorskip('pytorch_metric_learning')
    from pytorch_metric_learning import losses, reducers
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 16, generator=g), torch.arange(8).repeat_interleave(4)
    a, p, n = AllTripletsMiner()(x, y)
    per = TripletLossWithMiner(0.2, AllTripletsMiner(), reduction='none')(x, y)
    nz = int((per > 0).sum())
    assert 0 < nz < len(per)                                           # some triplets satisfied: the reducers disagree
    ours = TripletLossWithMiner(0.2, AllTripletsMiner())(x, y)
    pml = losses.TripletMarginLoss(margin=0.2)(x, y, (a, p, n))
    assert not torch.isclose(ours, pml)
    torch.testing.assert_close(pml, ours * len(per) / nz, atol=1e-5, rtol=1e-4)
    soft = TripletLossWithMiner(None, AllTripletsMiner())(x, y)
    torch.testing.assert_close(soft, losses.TripletMarginLoss(margin=0., smooth_loss=True, reducer=reducers.MeanReducer())(x, y, (a, p, n)),
                               atol=1e-5, rtol=1e-4)
    assert soft < losses.TripletMarginLoss(margin=0.2, smooth_loss=True, reducer=reducers.MeanReducer())(x, y, (a, p, n))
