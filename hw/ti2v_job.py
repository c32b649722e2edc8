#!/usr/bin/env python3
"""A PyTorch job with Wan2.2 TI2V-5B's memory shape, time-scaled: a loading ramp to a steady
level, light GPU work, then a late peak (the VAE decode) for the last part of the run.
Exit 0 when done; on CUDA out-of-memory PyTorch's own error is printed and the exit is 1."""
import argparse
import sys
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--steady-gib", type=float, default=19.0)
p.add_argument("--peak-gib", type=float, default=31.0)
p.add_argument("--seconds", type=float, default=40.0)
p.add_argument("--ramp", type=float, default=0.16, help="fraction of the run spent loading")
p.add_argument("--peak-at", type=float, default=0.87, help="fraction of the run where the peak starts")
p.add_argument("--overrun", type=float, default=1.0, help="multiply the peak's extra memory")
args = p.parse_args()

GIB = 2**30
chunk = 512 * 2**20
held = []
start = time.time()


def hold_until(target_bytes):
    target = int(target_bytes)  # whole bytes: a fractional remainder would allocate 0 forever
    have = sum(t.numel() for t in held)
    while have < target:
        n = min(chunk, target - have)
        t = torch.empty(n, dtype=torch.uint8, device="cuda")
        t.fill_(1)
        held.append(t)
        have += n


try:
    torch.cuda.init()
    a = torch.randn(2048, 2048, device="cuda")
    while True:
        el = (time.time() - start) / args.seconds
        if el >= 1.0:
            break
        if el < args.ramp:
            hold_until(args.steady_gib * GIB * el / args.ramp)
        elif el < args.peak_at:
            hold_until(args.steady_gib * GIB)
        else:
            extra = (args.peak_gib - args.steady_gib) * args.overrun
            hold_until((args.steady_gib + extra) * GIB)
        a = (a @ a) * 1e-3
        torch.cuda.synchronize()
        time.sleep(0.05)
except torch.OutOfMemoryError as e:
    print(f"torch.OutOfMemoryError: {e}", file=sys.stderr)
    sys.exit(1)
print(f"done in {time.time() - start:.1f} s, held {sum(t.numel() for t in held) / GIB:.2f} GiB")
