"Helpers shared by the benchmarks: machine description and writing a section of bench/RESULTS.md"
import os, platform, re
from datetime import date
from pathlib import Path
import torch

RESULTS = Path(__file__).parent/'RESULTS.md'

def machine():
    "One line describing this machine and the library versions"
    cpu = platform.processor() or platform.machine()
    try: cpu = re.search(r'model name\s*:\s*(.*)', Path('/proc/cpuinfo').read_text()).group(1)
    except Exception: pass
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'
    import fastai
    return f"{cpu}, {os.cpu_count()} cores, {dev}; torch {torch.__version__}, fastai {fastai.__version__}, {torch.get_num_threads()} torch threads"

def write_section(name, title, body):
    "Replace (or add) the section `name` of RESULTS.md, between its markers, with `title`, the date and machine, then `body`"
    start, end = f'<!-- {name} -->', f'<!-- /{name} -->'
    txt = RESULTS.read_text() if RESULTS.exists() else '# Benchmark results\n\nWritten by the scripts in `bench/`; each section says when and where it ran.\n'
    block = f"{start}\n## {title}\n\n_{date.today().isoformat()}, {machine()}_\n\n{body.strip()}\n{end}"
    txt = re.sub(re.escape(start) + '.*?' + re.escape(end), lambda m: block, txt, flags=re.S) if start in txt else txt.rstrip() + '\n\n' + block + '\n'
    RESULTS.write_text(txt)
