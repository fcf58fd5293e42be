"""Mutations of the library's behaviour for `tools/mutate.py`: on `PYTHONPATH`, this `sitecustomize` patches the module a
mutation targets as soon as it is imported (a lazy import hook), in the process and in every process it starts. The code
under test is not touched. `FASTAI_METRIC_MUTATION` names the mutation:

- `no_training`: fastai's optimisers never step, so training runs and records losses but no weight changes;
- `triplet_weight`: `learn.add_triplet(weight)` ignores `weight` (adds the triplet loss with weight 1).

`reapply()` patches again what a notebook has just (re)defined (notebooks re-run their own `@patch` cells)."""
import importlib.abc, importlib.util, os, sys

MUTATION = os.environ.get('FASTAI_METRIC_MUTATION')

def _no_step(self, *args, **kwargs): return None

def _no_training():
    import fastai.optimizer as fo
    fo.Optimizer.step = fo.OptimWrapper.step = _no_step

def _triplet_weight():
    from fastai.learner import Learner
    add = Learner.__dict__.get('add_triplet')
    if add is None or getattr(add, 'mutated', False): return
    def add_triplet(self, weight=1., *args, **kwargs): return add(self, 1., *args, **kwargs)
    add_triplet.mutated = True
    Learner.add_triplet = add_triplet

MUTATIONS = {'no_training': ('fastai.optimizer', _no_training), 'triplet_weight': ('fastai_metric.loss_terms', _triplet_weight)}

def reapply():
    "Patch again after a notebook cell, which may have defined the patched name anew (a notebook imports no module of its own)"
    if MUTATION and 'fastai.learner' in sys.modules: MUTATIONS[MUTATION][1]()

class _AfterImport(importlib.abc.MetaPathFinder):
    "Runs the mutation right after its target module is executed"
    def __init__(self, target, patch): self.target,self.patch = target,patch
    def find_spec(self, name, path, target=None):
        if name != self.target: return None
        sys.meta_path.remove(self)
        try: spec = importlib.util.find_spec(name)
        finally: sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None: return spec
        exec_module = spec.loader.exec_module
        def run(module): exec_module(module); self.patch()
        spec.loader.exec_module = run
        return spec

if MUTATION:
    if MUTATION not in MUTATIONS: raise SystemExit(f'FASTAI_METRIC_MUTATION={MUTATION!r}: choose one of {list(MUTATIONS)}')
    sys.meta_path.insert(0, _AfterImport(*MUTATIONS[MUTATION]))
