"""Build the docs site from the notebooks and docs/ without Quarto: `python tools/docs.py` writes _site/ (mkdocs-material +
mkdocs-jupyter, the `docs` extra), in strict mode: a broken link, a page missing from the navigation or a notebook that fails
to render stops the build.

The notebooks are staged in _docs_src/ as nbdev's own docs show them: cells marked `#| hide` left out, nbdev's `#|` directive
lines removed, and the code of `show_doc` cells hidden (their output, the signature with its docments, stays). Tutorials come
first, then one API page per numbered notebook in the module order; the hand-written pages of docs/ (home, guides) lead, and
bench/RESULTS.md is the Benchmarks page. `--serve` serves the site on localhost:8000 after building it. With Quarto installed,
`nbdev-docs` still builds nbdev's own site from nbs/."""
import json, os, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS, PAGES, STAGE, SITE = ROOT/'nbs', ROOT/'docs', ROOT/'_docs_src', ROOT/'_site'
GUIDES = ['index.md', 'get-started.md', 'which-method.md', 'heads.md', 'losses.md', 'evaluation.md', 'scaling.md',
          'development.md']
TUTORIALS = ['tutorial.digits', 'tutorial.classifier', 'tutorial.triplet', 'tutorial.evaluation', 'tutorial.search',
             'tutorial.omniglot']
SHOW_DOC = re.compile(r'^\s*(show_doc\(.*\)\s*)+$', re.S)

def title(nb):
    "The notebook's first heading"
    for c in nb['cells']:
        m = re.search(r'^#\s+(.+)$', ''.join(c['source']), re.M) if c['cell_type'] == 'markdown' else None
        if m: return m.group(1).strip()
    raise ValueError('a notebook without a `# Title` heading')

def staged(nb):
    "`nb` as the docs show it: hidden cells out, directives removed, `show_doc` code hidden"
    cells = []
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'code':
            lines = src.splitlines()
            if any(re.match(r'#\|\s*hide\s*$', l) for l in lines): continue
            src = '\n'.join(l for l in lines if not l.startswith('#|')).strip('\n')
            if not src and not c.get('outputs'): continue
            c = {**c, 'source': src, 'metadata': {**c.get('metadata', {})}}
            if SHOW_DOC.match(src): c['metadata']['tags'] = c['metadata'].get('tags', []) + ['hide_input']
            c['metadata'].pop('execution', None)
        cells.append(c)
    return {**nb, 'cells': cells}

def stage():
    "Stage the pages and notebooks in _docs_src/; return the navigation"
    shutil.rmtree(STAGE, ignore_errors=True)
    (STAGE/'tutorials').mkdir(parents=True); (STAGE/'api').mkdir()
    missing = [g for g in GUIDES if not (PAGES/g).exists()]
    extra = sorted(p.name for p in PAGES.glob('*.md') if p.name not in GUIDES)
    if missing or extra: sys.exit(f'docs/: missing pages {missing}, pages not in tools/docs.py GUIDES {extra}')
    for p in PAGES.iterdir():
        if p.is_file(): shutil.copy(p, STAGE/p.name)
    shutil.copy(ROOT/'bench'/'RESULTS.md', STAGE/'benchmarks.md')
    nav_t, nav_api = [], []
    tutorials = sorted(NBS.glob('tutorial.*.ipynb'))
    unknown = [p.stem for p in tutorials if p.stem not in TUTORIALS]
    if unknown: sys.exit(f'tutorials not placed in tools/docs.py TUTORIALS: {unknown}')
    for name in TUTORIALS:
        nb = json.loads((NBS/f'{name}.ipynb').read_text())
        (STAGE/'tutorials'/f'{name}.ipynb').write_text(json.dumps(staged(nb)))
        nav_t.append({title(nb).removeprefix('Tutorial: '): f'tutorials/{name}.ipynb'})
    for p in sorted(NBS.glob('[0-9][0-9]_*.ipynb')):
        nb = json.loads(p.read_text())
        (STAGE/'api'/p.name).write_text(json.dumps(staged(nb)))
        nav_api.append({title(nb): f'api/{p.name}'})
    titles = {g: re.search(r'^#\s+(.+)$', (PAGES/g).read_text(), re.M).group(1) for g in GUIDES}
    return [{'Home': 'index.md'}, {'Guide': [{titles[g]: g} for g in GUIDES[1:]]}, {'Tutorials': nav_t},
            {'API': nav_api}, {'Benchmarks': 'benchmarks.md'}]

def build(serve=False):
    import yaml
    cfg = yaml.safe_load((ROOT/'mkdocs.yml').read_text())
    cfg['nav'] = stage()
    gen = ROOT/'.mkdocs.gen.yml'
    gen.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    r = subprocess.run([sys.executable, '-m', 'mkdocs', 'serve' if serve else 'build', '--strict', '-f', str(gen)], cwd=ROOT,
                       env={**os.environ, 'NO_MKDOCS_2_WARNING': '1'})
    if r.returncode: sys.exit(r.returncode)
    print(f'site: {SITE}')

if __name__ == '__main__': build('--serve' in sys.argv[1:])
