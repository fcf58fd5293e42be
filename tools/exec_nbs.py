"""Execute notebooks in place and keep tidy outputs: `python tools/exec_nbs.py [--slow] nbs/*.ipynb`.

Each cell's timing metadata is dropped (the notebook schema refuses it). Cells flagged `slow`/`cuda`/`notest` are skipped (as in CI); with `--slow` the `slow` cells run too, so their outputs are kept. Console progress bars (carriage-return redraws) are collapsed to their final
line, so saved outputs keep fastai's results table but not hundreds of redraws; the import-time `torch.jit` deprecation warning is dropped."""
import json, re, sys, time
from pathlib import Path
from nbdev.test import test_nb as run_nb

def _final_lines(text):
    "Terminal rendering of `text`: each line as left by its last carriage return, without blank or bar-only lines"
    out = []
    for line in text.split('\n'):
        line = line.split('\r')[-1].replace('█', '').rstrip()
        if line.strip(): out.append(line)
    return out

_noise = re.compile(r'torch\.jit\.script. is deprecated|^\s*warnings\.warn\(')

def tidy(fn):
    nb = json.loads(Path(fn).read_text())
    for c in nb['cells']:
        # execnb records each cell's timing as `metadata.execution` with a float `total`; the notebook schema wants strings
        # there, and nbconvert (so the docs build) refuses such a notebook: drop it
        c.get('metadata', {}).pop('execution', None)
        if c['cell_type'] != 'code': continue
        outs = []
        for o in c.get('outputs', []):
            if o.get('output_type') == 'stream':
                lines = [l for l in _final_lines(''.join(o['text'])) if not _noise.search(l)]
                if not lines: continue
                o['text'] = [l + '\n' for l in lines]
            outs.append(o)
        c['outputs'] = outs
    Path(fn).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')

if __name__ == '__main__':
    if sys.argv[1:2] == ['--tidy']:                      # tidy saved notebooks without running them
        for fn in sys.argv[2:]: tidy(fn)
        sys.exit()
    ok_all = True
    args = sys.argv[1:]
    skip = ['notest', 'cuda'] + ([] if '--slow' in args else ['slow'])
    for fn in [a for a in args if a != '--slow']:
        fn = str(Path(fn).absolute())
        t = time.time()
        ok, _ = run_nb(fn, skip_flags=skip, save=True)
        if ok: tidy(fn)
        ok_all &= ok
        print(fn, 'OK' if ok else 'FAILED', f'{time.time()-t:.1f}s', flush=True)
    sys.exit(0 if ok_all else 1)
