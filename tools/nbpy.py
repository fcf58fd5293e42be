"""Round-trip a notebook through a plain percent-format script, for editing notebooks with a text editor.

`python tools/nbpy.py to-py nbs/06_losses.ipynb /tmp/06.py` writes cells as `# %%` (code) and `# %% [markdown]` (markdown, each
line behind `# `); `python tools/nbpy.py to-nb /tmp/06.py nbs/06_losses.ipynb` writes them back, keeping the ids and outputs of
code cells whose source did not change. Re-run changed notebooks with `tools/exec_nbs.py` to refresh their outputs."""
import json, sys, uuid
from pathlib import Path

MD, CODE = '# %% [markdown]', '# %%'

def to_py(nb_fn, py_fn):
    nb = json.loads(Path(nb_fn).read_text())
    out = []
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown': out.append(MD + '\n' + '\n'.join(('# ' + l).rstrip() for l in src.split('\n')))
        else: out.append(CODE + '\n' + src)
    Path(py_fn).write_text('\n\n'.join(out) + '\n')

def _cells(text):
    "(cell_type, source) pairs of a percent-format script"
    cells, cur = [], None
    for line in text.split('\n'):
        if line in (MD, CODE):
            if cur: cells.append(cur)
            cur = ['markdown' if line == MD else 'code', []]
        elif cur is not None: cur[1].append(line[2:] if cur[0] == 'markdown' and line.startswith('# ') else
                                            '' if cur[0] == 'markdown' and line == '#' else line)
    if cur: cells.append(cur)
    return [(t, '\n'.join(ls).strip('\n')) for t, ls in cells]

def to_nb(py_fn, nb_fn):
    old = json.loads(Path(nb_fn).read_text()) if Path(nb_fn).exists() else None
    keep = {''.join(c['source']): c for c in (old['cells'] if old else []) if c['cell_type'] == 'code'}
    cells = []
    for t, src in _cells(Path(py_fn).read_text()):
        if t == 'code' and src in keep: cells.append(keep.pop(src)); continue
        c = dict(cell_type=t, id=uuid.uuid4().hex[:8], metadata={}, source=src.splitlines(keepends=True))
        if t == 'code': c.update(execution_count=None, outputs=[])
        cells.append(c)
    meta = old['metadata'] if old else {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}
    nb = dict(cells=cells, metadata=meta, nbformat=4, nbformat_minor=5)
    Path(nb_fn).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')

if __name__ == '__main__':
    cmd, src, dst = sys.argv[1:4]
    {'to-py': to_py, 'to-nb': to_nb}[cmd](src, dst)
