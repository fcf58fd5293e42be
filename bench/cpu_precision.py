"""Mixed precision on the CPU (issue 17): is `learn.to_amp('bf16')` (or 'fp16') faster than float32 on this CPU?

One epoch of `fit` (training + validation) of resnet18 from scratch on digits (by default 256 + 64 images of 32 px, bs 64:
emulated half precision is slow enough that the whole set would take an hour): float32,
`to_amp('bf16')` and `to_amp('fp16')` (CPU autocast through `DeviceMixedPrecision`), median of interleaved rounds, with
fastai's own `to_bf16()` beside them (it autocasts on CUDA only, so on a CPU it trains in float32). The table names the CPU's
capability and its measured bf16 / fp16 matmul speed (`matmul_speedup`): on CPUs without native bf16 `to_amp('bf16')` warns that
it will be slower, which this measures. `--simulate-avx2` runs it in a process whose oneDNN and MKL are limited to AVX2.

Run: `python bench/cpu_precision.py [--rounds 1] [--items 256] [--simulate-avx2] [--write]`."""
import argparse, os, subprocess, sys, warnings
warnings.filterwarnings('ignore')
from common import write_section, epoch_times, table, AVX2_ENV


def learners(dls):
    "float32, to_amp('bf16'), to_amp('fp16') and fastai's to_bf16 on the same data, same seed"
    from fastai.vision.all import vision_learner, resnet18, accuracy, set_seed
    import fastai_metric.all  # noqa: F401  (to_amp)
    def mk(f):
        set_seed(0)
        return f(vision_learner(dls, resnet18, pretrained=False, metrics=accuracy))
    return {'float32': mk(lambda l: l), "to_amp('bf16')": mk(lambda l: l.to_amp('bf16')),
            "to_amp('fp16')": mk(lambda l: l.to_amp('fp16')), "fastai to_bf16() (float32 on a CPU)": mk(lambda l: l.to_bf16())}

def main(rounds, items):
    import torch
    from fastai_metric.data import digits_arrays, array_dls
    from fastai_metric.precision import matmul_speedup, cpu_description
    xt, yt, xv, yv = digits_arrays(sz=32)
    dls = array_dls(xt[:items], yt[:items], xv[:items//4], yv[:items//4], bs=64, device=torch.device('cpu'))
    ep = epoch_times(learners(dls), rounds, log=True)
    cpu = (f"{cpu_description()}: bf16 matmul {matmul_speedup(torch.bfloat16):.2g}x float32, fp16 matmul "
           f"{matmul_speedup(torch.float16):.2g}x float32")
    return table(ep, 'float32', f'One epoch of `fit` on {items:,} + {items//4:,} digits (resnet18 from scratch, 32 px, bs 64) on '
                 f'a CPU ({cpu}), median of {rounds} interleaved rounds after a warm-up round', 1.0)

if __name__ == '__main__':
    p = argparse.ArgumentParser()
    p.add_argument('--rounds', type=int, default=1); p.add_argument('--write', action='store_true')
    p.add_argument('--items', type=int, default=256, help='training images (validation: a quarter as many); digits has 1,437')
    p.add_argument('--simulate-avx2', action='store_true'); p.add_argument('--inner', action='store_true')
    a = p.parse_args()
    if a.simulate_avx2 and not a.inner:          # the limits must be set before torch loads: a fresh process
        r = subprocess.run([sys.executable, __file__, '--inner', '--rounds', str(a.rounds), '--items', str(a.items)], env={**os.environ, **AVX2_ENV},
                           capture_output=True, text=True, check=True)
        t = r.stdout[r.stdout.index('**'):].strip() + ' (AVX2 simulated: `--simulate-avx2`)'
    else: t = main(a.rounds, a.items)
    print(t)
    if a.write and not a.inner:
        import torch
        from fastai_metric.precision import matmul_speedup
        kind = 'avx2' if a.simulate_avx2 or matmul_speedup(torch.bfloat16) < 1 else 'bf16'
        write_section(f"cpu_precision_{kind}{'_simulated' if a.simulate_avx2 else ''}",
                      f"Mixed precision on a CPU (issue 17): `python bench/cpu_precision.py{' --simulate-avx2' if a.simulate_avx2 else ''} --write`", t)
