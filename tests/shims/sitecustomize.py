"""Test-only: tests/test_parallel.py puts this folder on PYTHONPATH for the rank processes it
starts, never the product. diffusers places rank r on accelerator r % torch.accelerator.device_count(),
which divides by zero on a machine without one; counting the CPU as one device lets its context
parallelism run over gloo here, the way it runs over NCCL on GPUs."""

import torch

if torch.accelerator.device_count() == 0:
    torch.accelerator.device_count = lambda: 1
