#!/usr/bin/env python3
"""An MPS client for hardware verification: allocates a fixed amount of device memory with
PyTorch, optionally keeps the GPU busy with bf16 matmuls, and reports what it did as JSON.

Exit status 0 on success; 3 when the allocation fails with CUDA out-of-memory (printed the
way PyTorch prints it), so callers can check that an MPS memory limit is enforced."""
import argparse
import json
import os
import sys
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--alloc-gib", type=float, required=True)
p.add_argument("--seconds", type=float, default=30.0)
p.add_argument("--matmul", action="store_true", help="keep the SMs busy while holding memory")
args = p.parse_args()

torch.cuda.init()
start = time.time()
try:
    block = torch.empty(int(args.alloc_gib * 2**30), dtype=torch.uint8, device="cuda")
    block.fill_(1)
except torch.OutOfMemoryError as e:
    print(str(e), file=sys.stderr)
    print(json.dumps({"pid": os.getpid(), "oom": True, "alloc_gib": args.alloc_gib}))
    sys.exit(3)

if args.matmul:
    a = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(8192, 8192, dtype=torch.bfloat16, device="cuda")
    iters = 0
    while time.time() - start < args.seconds:
        for _ in range(20):
            a = (a @ b) * 1e-4
        torch.cuda.synchronize()
        iters += 20
else:
    iters = 0
    while time.time() - start < args.seconds:
        time.sleep(0.2)

print(json.dumps({
    "pid": os.getpid(),
    "oom": False,
    "alloc_gib": args.alloc_gib,
    "matmul_iters": iters,
    "reserved_bytes": torch.cuda.memory_reserved(),
    "limit_env": os.environ.get("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"),
}))
