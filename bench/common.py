"Helpers shared by the benchmarks: machine description and writing a section of bench/RESULTS.md"
import os, platform, re
from datetime import date
from pathlib import Path
import time
import numpy as np
import torch

RESULTS = Path(__file__).parent/'RESULTS.md'
# `--simulate-avx2`: oneDNN, ATen and MKL limited to AVX2 (no native bfloat16), set before torch loads in a fresh process
AVX2_ENV = dict(ONEDNN_MAX_CPU_ISA='AVX2', ATEN_CPU_CAPABILITY='avx2', MKL_ENABLE_INSTRUCTIONS='AVX2')

def machine():
    "One line describing this machine and the library versions"
    cpu = platform.processor() or platform.machine()
    try: cpu = re.search(r'model name\s*:\s*(.*)', Path('/proc/cpuinfo').read_text()).group(1)
    except Exception: pass
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'
    import fastai
    cap = torch.backends.cpu.get_cpu_capability()        # what torch's CPU kernels use: e.g. AVX2 (no native bf16) or AVX512
    return (f"{cpu} ({cap}), {os.cpu_count()} cores, {dev}; torch {torch.__version__}, fastai {fastai.__version__}, "
            f"{torch.get_num_threads()} torch threads")

def write_section(name, title, body):
    "Replace (or add) the section `name` of RESULTS.md, between its markers, with `title`, the date and machine, then `body`"
    start, end = f'<!-- {name} -->', f'<!-- /{name} -->'
    txt = RESULTS.read_text() if RESULTS.exists() else '# Benchmark results\n\nWritten by the scripts in `bench/`; each section says when and where it ran.\n'
    block = f"{start}\n## {title}\n\n_{date.today().isoformat()}, {machine()}_\n\n{body.strip()}\n{end}"
    txt = re.sub(re.escape(start) + '.*?' + re.escape(end), lambda m: block, txt, flags=re.S) if start in txt else txt.rstrip() + '\n\n' + block + '\n'
    RESULTS.write_text(txt)

def interleaved(fs, rounds, warmup=1, log=False):
    "Median seconds of each function in `fs`, run round by round in a rotating order so machine drift hits all alike"
    names, ts = list(fs), {n: [] for n in fs}
    for r in range(warmup + rounds):
        k = r % len(names)
        for n in names[k:] + names[:k]:
            t = time.perf_counter(); fs[n]()
            if r >= warmup: ts[n].append(time.perf_counter() - t)
            if log: print(r, n, f'{time.perf_counter() - t:.1f} s', flush=True)
    return {n: float(np.median(v)) for n,v in ts.items()}

def table(rows, base, title, target, extra=None):
    "Markdown table of seconds and ratios to `rows[base]`, with an optional extra column `extra` (name, dict)"
    head = '| | seconds | ratio |' + (f' {extra[0]} |' if extra else '')
    out = [f"**{title}** (target: at most {target}x)\n", head, '|---' * (4 if extra else 3) + '|']
    for k,v in rows.items():
        e = extra[1].get(k) if extra else None
        out.append(f"| {k} | {v:.4f} | {v/rows[base]:.3f} |" + ((f' {e:.4f} |' if e is not None else ' |') if extra else ''))
    return '\n'.join(out)

def epoch_times(learns, rounds, log=False):
    "Median seconds of one quiet `fit` epoch of each learner in the dict `learns`, interleaved"
    def fit1(l):
        with l.no_bar(), l.no_logging(): l.fit(1, 1e-3)
    return interleaved({n: (lambda l=l: fit1(l)) for n,l in learns.items()}, rounds, log=log)

def fresh_process_runs(script, methods, rounds, log=False, env=None, slow=None):
    """Method: the results of `script --one method` (JSON on its last line), each in a fresh process (`env` added), rounds
    interleaved; a method slower than `slow` seconds in the first round is not run again"""
    import json, os, subprocess, sys
    runs = {m: [] for m in methods}
    for rnd in range(rounds):                              # whole processes, in a rotating order: drift hits all alike
        ms = list(methods)[rnd % len(methods):] + list(methods)[:rnd % len(methods)]
        for m in ms:
            if rnd and slow and runs[m][0]['seconds'] > slow: continue
            r = subprocess.run([sys.executable, script, '--one', m], capture_output=True, text=True, check=True, env={**os.environ, **(env or {})})
            runs[m].append(json.loads(r.stdout.strip().splitlines()[-1]))
            if log: print(rnd, m, runs[m][-1]['seconds'], runs[m][-1]['extra_gb'], flush=True)
    return runs
