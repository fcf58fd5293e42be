"""Mutation runs: do the checks notice when training does nothing? (issue 28; kept out of CI: minutes)

    python tools/mutate.py no_training          # fastai's optimisers never step
    python tools/mutate.py triplet_weight       # learn.add_triplet(weight) ignores weight
    python tools/mutate.py no_training --nbs 18_metric_learner tutorial.evaluation --no-tests    # a part

The mutation is a `sitecustomize` on `PYTHONPATH` (`tools/mutations/`): it patches fastai (or the library) as the target module is
imported, in every process, without touching the code. Each check the mutation should break then runs on its own:
- notebook cells that say `# quality check` (no_training) or `# triplet weight check` (triplet_weight): each notebook runs in a
  fresh process, cell by cell, past failing cells (a notebook run would stop at the first one and hide the rest);
- tests marked `@pytest.mark.quality` (no_training) or `@pytest.mark.triplet_weight`.
It prints each check as killed (it failed, as it should), SURVIVED (it passed without the behaviour it checks) or broken (it
failed with another error than an assertion, e.g. a name a failed cell before it would have defined), and exits non-zero if any
check survived or broke."""
import argparse, json, os, re, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKS = {'no_training': ('# quality check', 'quality'), 'triplet_weight': ('# triplet weight check', 'triplet_weight')}

def _env(mutation):
    path = os.pathsep.join([str(ROOT/'tools'/'mutations'), str(ROOT), os.environ.get('PYTHONPATH', '')])
    return {**os.environ, 'FASTAI_METRIC_MUTATION': mutation, 'PYTHONPATH': path, 'MPLBACKEND': 'Agg'}

def run_notebook(fn, marker):
    "In this (mutated) process: run `fn` cell by cell past failures; print one JSON line per cell holding `marker`"
    import sitecustomize
    from fastcore.xtras import working_directory
    from execnb.shell import CaptureShell
    from nbdev.config import get_config
    from nbdev.process import NBProcessor
    from nbdev.test import _skip_cell
    fn = Path(fn).resolve()
    os.environ['IN_TEST'] = '1'
    nb = NBProcessor(fn, rm_directives=False, process=True).nb
    skip = _skip_cell(nb, get_config(fn.parent).tst_flags.split())
    shell = CaptureShell(fn)
    with working_directory(fn.parent):
        for cell in nb.cells:
            if skip(cell): continue
            shell.cell(cell, timeout=900)
            sitecustomize.reapply()                      # the cell may have (re)defined a patched name
            if marker not in cell.source: continue
            e = shell.exc
            line = next(l.strip() for l in cell.source.splitlines() if marker in l)
            status = 'SURVIVED' if e is None else 'killed' if isinstance(e, AssertionError) else 'broken'
            print(json.dumps(dict(check=f'{fn.name} cell {cell.idx_}: {line[:110]}', status=status,
                                  error='' if e is None else f'{type(e).__name__}: {str(e)[:300]}')), flush=True)

def notebook_checks(mutation, names):
    "Results of every marked cell of the notebooks (all, or those named), each notebook in its own mutated process"
    marker = MARKS[mutation][0]
    nbs = [p for p in sorted((ROOT/'nbs').glob('*.ipynb')) if marker in p.read_text()
           and (not names or p.stem in names)]
    def one(p):
        r = subprocess.run([sys.executable, __file__, '--run-notebook', str(p), mutation], capture_output=True, text=True,
                           env=_env(mutation), cwd=ROOT)
        out = [json.loads(l) for l in r.stdout.splitlines() if l.startswith('{"check"')]
        if r.returncode or not out:
            out.append(dict(check=f'{p.name} (the run)', status='broken', error=r.stderr[-1500:]))
        print(f'{p.name}: {len(out)} checks', flush=True)
        return out
    with ThreadPoolExecutor(2) as ex: return [c for res in ex.map(one, nbs) for c in res]

def test_checks(mutation):
    "Results of the tests marked for `mutation`, run under it"
    mark = MARKS[mutation][1]
    r = subprocess.run([sys.executable, '-m', 'pytest', '-m', mark, '-o', 'addopts=', '-p', 'no:cacheprovider', '-q', '-rA',
                        '-n', '2', 'tests'], capture_output=True, text=True, env=_env(mutation), cwd=ROOT)
    out = []
    for l in r.stdout.splitlines():
        m = re.match(r'^(PASSED|FAILED|ERROR) (\S+)(?: - (.*))?', l)
        if m: out.append(dict(check=m[2], status='SURVIVED' if m[1] == 'PASSED' else 'killed' if m[1] == 'FAILED' else
                              'broken', error=m[3] or ''))
    if not out and 'no tests ran' not in r.stdout and r.returncode not in (0, 5):
        out.append(dict(check='pytest (the run)', status='broken', error=(r.stdout + r.stderr)[-1500:]))
    print(f'tests: {len(out)} checks', flush=True)
    return out

if __name__ == '__main__':
    if sys.argv[1:2] == ['--run-notebook']: run_notebook(sys.argv[2], MARKS[sys.argv[3]][0]); sys.exit()
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('mutation', choices=list(MARKS))
    p.add_argument('--nbs', nargs='*', default=None, help='only these notebooks (names without .ipynb)')
    p.add_argument('--no-tests', action='store_true', help='leave out the marked tests in tests/')
    p.add_argument('--no-nbs', action='store_true', help='leave out the notebooks')
    a = p.parse_args()
    res = ([] if a.no_nbs else notebook_checks(a.mutation, a.nbs)) + ([] if a.no_tests else test_checks(a.mutation))
    print(f'\n== {a.mutation}: {len(res)} checks')
    for r in res: print(f"{r['status']:8s} {r['check']}" + (f"\n         {r['error'][:300]}" if r['status'] == 'broken' else ''))
    bad = [r for r in res if r['status'] != 'killed']
    print(f"\n{len(res) - len(bad)} killed, {sum(r['status'] == 'SURVIVED' for r in bad)} survived, "
          f"{sum(r['status'] == 'broken' for r in bad)} broken")
    sys.exit(1 if bad or not res else 0)
