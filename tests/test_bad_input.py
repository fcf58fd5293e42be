"Bad input gets a clear error that names the fix"
import pytest
from fastai.vision.all import *
from fastai_metric.all import *

def _dls(digits_path, y_block, get_y):
    return DataBlock(blocks=(ImageBlock, y_block), get_items=get_image_files, get_y=get_y,
                     splitter=GrandparentSplitter(valid_name='valid')).dataloaders(digits_path, bs=32, num_workers=0)

def test_regression_learner_refused(digits_path):
    dls = _dls(digits_path, RegressionBlock(), lambda p: float(p.parent.name))
    learn = vision_learner(dls, resnet18, pretrained=False, n_out=1)
    with pytest.raises(ValueError, match='regression'): learn.to_arcface()
    assert isinstance(learn.model[1][-1], nn.Linear)          # nothing was changed

def test_multilabel_learner_refused(digits_path):
    dls = _dls(digits_path, MultiCategoryBlock(), lambda p: ['even' if int(p.parent.name)%2==0 else 'odd', 'digit'])
    learn = vision_learner(dls, resnet18, pretrained=False)
    with pytest.raises(ValueError, match='multi-label'): learn.to_cosface()

def test_no_final_linear(digits_dls):
    learn = vision_learner(digits_dls, resnet18, pretrained=False)
    learn.model[1].append(nn.Softmax(dim=1))
    with pytest.raises(ValueError, match='must end in an `nn.Linear`'): learn.to_arcface()
    with pytest.raises(ValueError, match='must end in an `nn.Linear`'): XFaceNet(learn.model, 10)

def test_class_count_mismatch(digits_dls):
    learn = vision_learner(digits_dls, resnet18, pretrained=False, n_out=7)
    with pytest.raises(ValueError, match='has 7 outputs but the data has 10 classes'): learn.to_sphereface()
    with pytest.raises(ValueError, match='n_out=12'): XFaceNet(learn.model, 12)

def test_labels_out_of_range():
    h = ArcMarginProduct(8, 3)
    with pytest.raises(ValueError, match='dls.c'): h(torch.randn(4, 8), tensor([0, 1, 2, 3]))
    with pytest.raises(TypeError, match='integer class indices'): h(torch.randn(2, 8), torch.rand(2, 3))

def test_empty_dataloader(digits_dls):
    learn = vision_learner(digits_dls, resnet18, pretrained=False)
    empty = learn.dls.valid.new(learn.dls.valid_ds.new_empty())
    with pytest.raises(ValueError, match='empty'): get_embeddings(learn, dl=empty)

def test_sphereface_margin_must_be_integer():
    with pytest.raises(ValueError, match='positive integer'): SphereProduct(8, 3, m=2.5)

def test_string_labels_in_retrieval_metrics():
    "Class names instead of class indices: a TypeError that shows how to map them, not torch's"
    q = torch.randn(6, 4)
    with pytest.raises(TypeError, match='np.unique'): retrieval_metrics(q, ['cat', 'dog'] * 3)
    with pytest.raises(TypeError, match="such as 'cat'"): retrieval_metrics(q, [0, 1] * 3, q, np.array(['cat', 'dog'] * 3))

def test_margin_head_after_to_triplet(digits_dls):
    "An embedding learner has no classifier left to convert: say so, not 'build it with vision_learner'"
    learn = vision_learner(digits_dls, resnet18, pretrained=False).to_triplet()
    with pytest.raises(ValueError, match='already outputs its embedding'): learn.to_arcface()
