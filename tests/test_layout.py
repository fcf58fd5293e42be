"""The package's layout: importing it leaves fastai as it was (but for the documented patches), no fastai name is shadowed,
notebooks import only lower-numbered ones, and lines stay readable"""
import json, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
CODE = r'''
import importlib, inspect, pkgutil, json, fastai
def ok(name):
    try: importlib.import_module(name); return True
    except Exception: return False
names = [m.name for m in pkgutil.walk_packages(fastai.__path__, 'fastai.') if '_nbdev' not in m.name and ok(m.name)]
def snap():
    out = {}
    for n in names:
        mod = importlib.import_module(n)
        for k, v in vars(mod).items():
            if inspect.isclass(v) and v.__module__.startswith('fastai'):
                for a, f in vars(v).items(): out[f'{v.__module__}.{v.__qualname__}.{a}'] = id(f)
            elif inspect.isfunction(v) and v.__module__.startswith('fastai'): out[f'{n}.{k}'] = id(v)
    return out
before = snap()
import fastai_metric.all
from fastai_metric.patches import PATCHED
after = snap()
changed = sorted(k for k in before if after.get(k) != before[k])
print(json.dumps({'changed': changed, 'patched': PATCHED}))
'''

def test_import_changes_only_the_documented_patches():
    "Importing the library replaces no attribute of any fastai class or module except those `patches` lists"
    r = subprocess.run([sys.executable, '-c', CODE], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    unexpected = [c for c in res['changed'] if not any(c.endswith('.' + p) for p in res['patched'])]
    assert not unexpected, unexpected
    assert len(res['changed']) <= 2 * len(res['patched']), res      # (a class may be reached from two modules)

def test_no_fastai_name_is_shadowed():
    "`from fastai.vision.all import *` then `from fastai_metric.all import *` rebinds none of fastai's names"
    code = ('import fastai.vision.all as fv, fastai_metric.all as fm\n'
            'print([k for k in dir(fm) if not k.startswith("_") and k in dir(fv) and getattr(fm, k) is not getattr(fv, k)])')
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == '[]', r.stdout

def _nb_modules():
    "Number and module of each numbered notebook, and the library modules its code cells import"
    out = {}
    for nb in sorted((ROOT/'nbs').glob('[0-9][0-9]_*.ipynb')):
        src = '\n'.join(''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code')
        mod = re.search(r'#\| default_exp (\w+)', src).group(1)
        out[mod] = (int(nb.name[:2]), set(re.findall(r'fastai_metric\.(\w+)', src)) - {'all', mod})
    return out

def test_notebooks_import_only_lower_numbers():
    mods = _nb_modules()
    bad = [(m, i) for m, (n, imps) in mods.items() for i in imps if i in mods and mods[i][0] > n]
    assert not bad, bad

def test_long_lines():
    "At most 2% of the package's lines exceed 120 characters"
    lines = [l for f in (ROOT/'fastai_metric').glob('*.py') if f.name != '_modidx.py' for l in f.read_text().splitlines()]
    long = [l for l in lines if len(l) > 120]
    assert len(long) <= 0.02 * len(lines), f'{len(long)} of {len(lines)} lines are longer than 120 characters'

def test_notebooks_are_valid():
    "Every notebook passes nbformat's schema (nbconvert, so the docs build, refuses one that does not)"
    import nbformat
    bad = {}
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        try: nbformat.validate(nbformat.read(nb, as_version=4))
        except nbformat.ValidationError as e: bad[nb.name] = str(e).splitlines()[0]
    assert not bad, f'{bad}: run `python tools/exec_nbs.py --tidy nbs/*.ipynb`'
