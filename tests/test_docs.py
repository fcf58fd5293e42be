"""The docs site as a reader sees it (issue 31): three pages of the built site (`python tools/docs.py`, run by CI before the
tests) opened in headless Chromium, checked for their title, a plot and an API signature, and photographed into
_site/screenshots/. Skipped where the site is not built or Chromium is absent (CI has both: `.ci/run`)."""
import html, re, shutil, subprocess
from pathlib import Path
import pytest

SITE = Path(__file__).parent.parent/'_site'
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync']
PAGES = {   # page: (title, what must be rendered in it)
    'index.html': ('fastai_metric', 'Which one-liner for which problem'),
    'tutorials/tutorial.evaluation/index.html': ('Tutorial: evaluating retrieval and unknown classes', 'img'),
    'api/09_heads/index.html': ('Margin heads', 'def ArcMarginProduct('),
}
pytestmark = [pytest.mark.skipif(not (SITE/'index.html').exists(), reason='the docs site is not built: python tools/docs.py'),
              pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian's chromium package)")]

def _chromium(tmp_path, *args):
    r = subprocess.run([CHROMIUM, *FLAGS, f'--user-data-dir={tmp_path/"profile"}', *args], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout

@pytest.mark.parametrize('page', list(PAGES))
def test_page_renders(page, tmp_path):
    url = (SITE/page).resolve().as_uri()
    dom = _chromium(tmp_path, '--virtual-time-budget=5000', '--dump-dom', url)
    title, must = PAGES[page]
    assert re.search(rf'<h1[^>]*>\s*{re.escape(title)}', dom), f'{page}: no <h1> {title}'
    if must == 'img':                                        # a plot the notebook saved: an inline PNG
        assert re.search(r'<img[^>]+src="data:image/png;base64,', dom), f'{page}: no plot image'
    else: assert must in html.unescape(re.sub(r'<[^>]+>', '', dom)), f'{page}: {must!r} not rendered'
    shots = SITE/'screenshots'; shots.mkdir(exist_ok=True)
    shot = shots/(page.replace('/index.html', '').replace('/', '_').replace('.html', '') + '.png')
    _chromium(tmp_path, '--window-size=1280,3200', f'--screenshot={shot}', url)   # tall enough for the first plot
    assert shot.stat().st_size > 20_000, f'{shot}: an empty picture'
