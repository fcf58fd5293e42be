"""Every speed ratio named in the issues, in one go (issue 5): runs each speed benchmark in turn and updates bench/RESULTS.md.

- heads.py     (issue 2): epoch time of each margin head against the plain classifier, the head alone, get_embeddings against
                get_preds, plot_tsne (openTSNE) against scikit-learn's TSNE;
- triplet.py   (issue 3): batch-hard and all-triplets loss against pytorch-metric-learning, to_triplet epoch against plain;
- retrieval.py (issue 4): retrieval_metrics at 10,000 x 50,000 x 128-d against pytorch-metric-learning + faiss, and memory.

Run: `python bench/speed.py [--write] [--quick]` (--quick: fewer rounds, for a look; the committed figures use the defaults).
Each benchmark compares side by side in one run and prints its ratios; this script prints them all again at the end."""
import argparse, re, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).parent
# (quick arguments, full arguments): epoch timings on 2 shared cores need 9 interleaved rounds for a stable median
BENCHES = {'heads.py': (['--rounds', '2', '--tsne-n', '5000'], ['--rounds', '9']),
           'triplet.py': (['--rounds', '5', '--epoch-rounds', '2'], ['--rounds', '30', '--epoch-rounds', '9']),
           'retrieval.py': (['--rounds', '2'], [])}

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--write', action='store_true'); p.add_argument('--quick', action='store_true')
    a = p.parse_args()
    tables = {}
    for script, (quick, full) in BENCHES.items():
        cmd = [sys.executable, str(HERE/script), *(quick if a.quick else full), *(['--write'] if a.write else [])]
        print(f"== {' '.join(cmd[1:])}", flush=True)
        t = time.time()
        out = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True)
        if out.returncode: sys.exit(f"{script} failed:\n{out.stderr[-3000:]}")
        tables[script] = [l for l in out.stdout.splitlines() if l.startswith('|') or l.startswith('**')]
        print(f"   {time.time() - t:.0f} s", flush=True)
    print('\n# All speed figures\n')
    for script, lines in tables.items(): print(f'## {script}', *lines, '', sep='\n')
