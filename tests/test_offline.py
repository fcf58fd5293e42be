"""The offline GPU node (issue 27): everything the library and its GPU check import is in a torch image or among the wheels
of `tools/offline_wheels.sh`. The install itself is dry-run by `.ci/run --gpu-dry-run`; this is the cheap check of every run."""
import ast, re, sys
from importlib.metadata import distribution, packages_distributions, PackageNotFoundError
from pathlib import Path
from packaging.requirements import Requirement

ROOT = Path(__file__).parent.parent
IMAGE = ['torch', 'torchvision', 'numpy', 'scipy', 'scikit-learn', 'pandas', 'matplotlib', 'pillow', 'timm', 'pytest']
# what the GPU check runs: the package, the GPU suite and its fixtures, the two benchmarks
CHECKED = [*sorted((ROOT/'fastai_metric').glob('*.py')), ROOT/'tests'/'test_cuda.py', ROOT/'tests'/'conftest.py',
           ROOT/'bench'/'quality.py', ROOT/'bench'/'retrieval.py', ROOT/'bench'/'common.py', ROOT/'bench'/'omniglot.py']
OPTIONAL = {'accelerate'}   # imported only by multi-GPU training (fastai.distributed), skipped on one GPU

def _norm(name): return re.sub(r'[-_.]+', '-', name).lower()

def wheel_requirements():
    "Names pinned in tools/offline_wheels.sh"
    txt = (ROOT/'tools'/'offline_wheels.sh').read_text()
    return {_norm(m) for m in re.findall(r'([A-Za-z][\w.-]*)==[\w.]+', txt)}

def closure(names):
    "The installed distributions `names` need, themselves included (markers evaluated here, extras left out)"
    seen, todo = set(), [_norm(n) for n in names]
    while todo:
        n = todo.pop()
        if n in seen: continue
        seen.add(n)
        try: reqs = distribution(n).requires or []
        except PackageNotFoundError: continue
        for r in map(Requirement, reqs):
            if r.marker is None or r.marker.evaluate({'extra': ''}): todo.append(_norm(r.name))
    return seen

def imported_modules(files):
    "Top-level names of every module the files import, at any depth (imports inside functions too)"
    out = set()
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import): out |= {a.name.split('.')[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level: out.add(node.module.split('.')[0])
    return out

def test_wheels_and_image_cover_every_import():
    "Every third-party module the checked files import comes from the torch image or from the offline wheels"
    have = closure(IMAGE) | wheel_requirements()        # the wheels are installed with --no-deps: only themselves
    dists = packages_distributions()
    local = {'fastai_metric', 'common', 'conftest'}
    third = sorted(m for m in imported_modules(CHECKED) - local if m not in sys.stdlib_module_names)
    missing = {m: dists.get(m) for m in third if not ({_norm(d) for d in dists.get(m, [m])} & (have | OPTIONAL))}
    assert not missing, f'imported but neither in a torch image nor in tools/offline_wheels.sh: {missing}'
    # and the check can fail: a module from neither
    assert not {_norm(d) for d in dists['nbdev']} & have

def test_wheels_leave_out_what_the_image_has():
    "The wheels add nothing a torch image already has (two copies of torch or numpy would shadow the image's)"
    both = set(IMAGE) & wheel_requirements()
    assert not both, both
    assert {'fastai', 'fastcore', 'plum-dispatch', 'opentsne', 'mlxtend'} <= wheel_requirements()
