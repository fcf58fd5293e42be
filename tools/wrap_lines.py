"""Wrap the long lines (> 120 characters) of the exported cells of notebooks, where it is mechanical and safe:
one-line docstrings become triple-quoted paragraphs, trailing comments move above their line, long string literals are split
into implicitly concatenated pieces, and `> ` description lines of the title cell are wrapped.
`python tools/wrap_lines.py nbs/*.ipynb`; each changed cell must still parse, else it is left as it was."""
import ast, io, json, sys, textwrap, tokenize
from pathlib import Path

W = 120

def _docstring(line):
    ind = len(line) - len(line.lstrip())
    s = line.strip()
    if not (s.startswith('"') and s.endswith('"') and not s.startswith('"""') and s.count('"') == 2 and '\\' not in s): return None
    body = textwrap.wrap(s[1:-1], W - ind - 4, break_on_hyphens=False)
    return [' '*ind + '"""' + body[0]] + [' '*ind + b for b in body[1:-1]] + ([' '*ind + body[-1] + '"""'] if len(body) > 1 else [])

def _tokens(line):
    "The tokens of one line (of a statement that may go on after it)"
    out = []
    try:
        for t in tokenize.generate_tokens(io.StringIO(line.lstrip() + '\n').readline): out.append(t)
    except (tokenize.TokenError, SyntaxError, IndentationError): pass
    ind = len(line) - len(line.lstrip())
    return [t._replace(start=(t.start[0], t.start[1] + ind), end=(t.end[0], t.end[1] + ind)) for t in out] or None

def _comment(line, docment):
    toks = _tokens(line)
    if not toks: return None
    com = [t for t in toks if t.type == tokenize.COMMENT]
    if not com or docment: return None
    code = line[:com[0].start[1]].rstrip()
    if not code.strip(): return None
    ind = len(line) - len(line.lstrip())
    return [' '*ind + com[0].string, code]

def _split_string(line):
    toks = _tokens(line)
    if not toks: return None
    strs = [t for t in toks if t.type == tokenize.STRING and t.start[0] == 1 and t.end[1] > W - 2]
    if not strs: return None
    t = strs[0]
    s, col = t.string, t.start[1]
    q = next(i for i,c in enumerate(s) if c in '"\'')
    pre, quote = s[:q], s[q]
    if s[q:q+3] in ('"""', "'''"): return None
    inner = s[q+1:-1]
    is_f = 'f' in pre.lower()
    room = W - 2 - col - len(pre) - 1          # characters of `inner` that fit on the first line
    depth, cut = 0, None
    for i,c in enumerate(inner):
        if is_f and c == '{': depth += 1
        elif is_f and c == '}': depth -= 1
        elif c == ' ' and depth == 0 and i < room and i > 10: cut = i + 1
    if cut is None or (inner[cut-2:cut] == '\\ '): return None
    a, b = inner[:cut], inner[cut:]
    pb = pre if (not is_f or '{' in b) else pre.replace('f', '').replace('F', '')
    pa = pre if (not is_f or '{' in a) else pre.replace('f', '').replace('F', '')
    first = line[:col] + pa + quote + a + quote
    rest = ' '*col + pb + quote + b + quote + line[t.end[1]:]
    out = [first]
    more = _split_string(rest) if len(rest) > W else None
    return out + (more or [rest])

def wrap_cell(src):
    lines, out, changed = src.split('\n'), [], False
    for line in lines:
        if len(line) <= W: out.append(line); continue
        docment = ', #' in line or ',  #' in line
        prev = next((l for l in reversed(out) if l.strip()), '')
        doc = _docstring(line) if prev.rstrip().endswith(':') and not prev.lstrip().startswith('#') else None
        new = doc or _comment(line, docment) or _split_string(line)
        if new and all(len(l) < len(line) for l in new): out += new; changed = True
        else: out.append(line)
    if not changed: return src
    new = '\n'.join(out)
    try: ast.parse(new.replace('#| export', ''))
    except SyntaxError: return src
    return new if new != src else src

def wrap_title(src):
    out = []
    for line in src.split('\n'):
        if line.startswith('> ') and len(line) > W: out += ['> ' + l for l in textwrap.wrap(line[2:], W - 4)]
        else: out.append(line)
    return '\n'.join(out)

for fn in sys.argv[1:]:
    nb = json.loads(Path(fn).read_text())
    n = 0
    for i,c in enumerate(nb['cells']):
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown' and i < 2: new = wrap_title(src)
        elif c['cell_type'] == 'code' and src.lstrip().startswith(('#| export', '#|export')):
            new = src
            for _ in range(3): new = wrap_cell(new)
        else: continue
        if new != src: c['source'] = new.splitlines(keepends=True); n += 1
    if n:
        Path(fn).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
        print(fn, n, 'cells')
