"""Live machine figures for the stats panel: CPU, RAM, GPU utilisation, VRAM, temperature, power.

Policy:
- `take_sample()` never raises. A figure that cannot be read is None and reads "n/a".
- NVML (`pynvml`) is initialised lazily on the first sample and kept; a missing library, a driver
  error or a machine without GPUs gives a sample with no GPUs.
- Torch figures are read only when torch is already imported: stats never import torch (it takes
  seconds and hundreds of MB), and never touch CUDA unless it is already initialised, because
  the main process of a ZeroGPU Space must not initialise CUDA.
- Nothing starts at import. `get_sampler().start()` starts the one background sampler of this
  process; the UI polls `latest()` / `history()` on a timer.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field

log = logging.getLogger(__name__)

GB = 2**30  # the studio's GB is GiB, as in backend.py


@dataclass
class GpuSample:
    index: int
    name: str | None = None
    util_percent: float | None = None
    memory_used_gb: float | None = None
    memory_total_gb: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None


@dataclass
class Sample:
    time: float  # epoch seconds
    cpu_percent: float | None = None
    ram_used_gb: float | None = None
    ram_total_gb: float | None = None
    process_rss_gb: float | None = None
    gpus: list[GpuSample] = field(default_factory=list)
    torch_allocated_gb: float | None = None
    torch_reserved_gb: float | None = None
    torch_peak_allocated_gb: float | None = None
    mps_current_gb: float | None = None
    mps_driver_gb: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


# --- sampling ----------------------------------------------------------------------------------


def take_sample(nvml=None) -> Sample:
    """One reading of every figure. `nvml` replaces the `pynvml` module (tests pass a fake)."""
    sample = Sample(time=time.time())
    _read_host(sample)
    sample.gpus = _read_gpus(nvml)
    _read_torch(sample)
    return sample


def _read_host(sample: Sample) -> None:
    try:
        import psutil
    except ImportError:
        return
    try:
        sample.cpu_percent = psutil.cpu_percent(interval=None)  # since the previous call
        memory = psutil.virtual_memory()
        sample.ram_total_gb = memory.total / GB
        sample.ram_used_gb = (memory.total - memory.available) / GB
        sample.process_rss_gb = _this_process().memory_info().rss / GB
    except Exception as exc:  # psutil.Error, OSError...: stats must never break the page
        log.debug("psutil reading failed: %s", exc)


_process = None  # psutil.Process of this pid; rebuilt after a fork


def _this_process():
    global _process
    import psutil

    if _process is None or _process.pid != os.getpid():
        _process = psutil.Process()
    return _process


class _NvmlSession:
    """An NVML module initialised once. `ready` is None until tried, then True or False."""

    def __init__(self, module):
        self.module = module
        self.ready: bool | None = None
        self.lock = threading.Lock()

    def ensure(self) -> bool:
        with self.lock:
            if self.ready is None:
                try:
                    self.module.nvmlInit()
                    self.ready = True
                except Exception as exc:  # NVMLError, or a library that fails to load
                    log.info("NVML unavailable, no GPU figures: %s", exc)
                    self.ready = False
            return self.ready


_default_nvml: _NvmlSession | None = None
_injected_nvml: dict[int, _NvmlSession] = {}  # id(module) -> session; the session keeps it alive
_nvml_lock = threading.Lock()


def _nvml_session(module) -> _NvmlSession | None:
    global _default_nvml
    with _nvml_lock:
        if module is not None:
            return _injected_nvml.setdefault(id(module), _NvmlSession(module))
        if _default_nvml is None:
            try:
                import pynvml
            except ImportError:
                return None
            _default_nvml = _NvmlSession(pynvml)
        return _default_nvml


def _read_gpus(module) -> list[GpuSample]:
    session = _nvml_session(module)
    if session is None or not session.ensure():
        return []
    nvml = session.module
    try:
        count = nvml.nvmlDeviceGetCount()
    except Exception as exc:  # NVMLError; a driver gone away must not break the stats panel
        log.debug("NVML device count failed: %s", exc)
        return []
    gpus = []
    for index in range(count):
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as exc:
            log.debug("NVML handle %d failed: %s", index, exc)
            continue
        gpus.append(_read_gpu(nvml, index, handle))
    return gpus


def _read_gpu(nvml, index: int, handle) -> GpuSample:
    def read(call, *args):
        try:
            return call(handle, *args)
        except Exception as exc:  # each figure may be unsupported on its own (e.g. power on laptops)
            log.debug("NVML %s failed on GPU %d: %s", getattr(call, "__name__", call), index, exc)
            return None

    gpu = GpuSample(index=index)
    name = read(nvml.nvmlDeviceGetName)
    gpu.name = name.decode(errors="replace") if isinstance(name, bytes) else name
    util = read(nvml.nvmlDeviceGetUtilizationRates)
    gpu.util_percent = _number(getattr(util, "gpu", None))
    memory = read(nvml.nvmlDeviceGetMemoryInfo)
    gpu.memory_used_gb = _scaled(getattr(memory, "used", None), GB)
    gpu.memory_total_gb = _scaled(getattr(memory, "total", None), GB)
    gpu.temperature_c = _number(read(nvml.nvmlDeviceGetTemperature, nvml.NVML_TEMPERATURE_GPU))
    gpu.power_w = _scaled(read(nvml.nvmlDeviceGetPowerUsage), 1000)  # NVML reports milliwatts
    return gpu


def _read_torch(sample: Sample) -> None:
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        # is_initialized() is False until something used CUDA; asking for memory would start it
        if torch.cuda.is_initialized():
            sample.torch_allocated_gb = torch.cuda.memory_allocated() / GB
            sample.torch_reserved_gb = torch.cuda.memory_reserved() / GB
            sample.torch_peak_allocated_gb = torch.cuda.max_memory_allocated() / GB
    except Exception as exc:  # torch half-imported by another thread, or a CUDA error
        log.debug("torch CUDA figures failed: %s", exc)
    try:
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            sample.mps_current_gb = torch.mps.current_allocated_memory() / GB
            sample.mps_driver_gb = torch.mps.driver_allocated_memory() / GB
    except Exception as exc:
        log.debug("torch MPS figures failed: %s", exc)


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _scaled(value, unit: float) -> float | None:
    number = _number(value)
    return None if number is None else number / unit


# --- formatting --------------------------------------------------------------------------------

NA = "n/a"


def format_sample(sample: Sample | None) -> dict[str, str]:
    """Label -> human string for the UI. Missing figures (or no sample yet) read "n/a"."""
    sample = sample or Sample(time=0.0)
    out = {
        "CPU": _percent(sample.cpu_percent),
        "RAM": _used_of(sample.ram_used_gb, sample.ram_total_gb),
        "Process": _gb(sample.process_rss_gb),
    }
    gpus = list(sample.gpus or [])
    if not gpus:
        out["GPU"] = NA
    elif len(gpus) == 1:
        out["GPU"] = gpus[0].name or NA
    else:
        out["GPU"] = ", ".join(f"{gpu.index}: {gpu.name or NA}" for gpu in gpus)
    for gpu in gpus:
        i = gpu.index
        out[f"GPU {i} util"] = _percent(gpu.util_percent)
        out[f"VRAM {i}"] = _used_of(gpu.memory_used_gb, gpu.memory_total_gb)
        out[f"Temp {i}"] = _with_unit(gpu.temperature_c, "°C")
        out[f"Power {i}"] = _with_unit(gpu.power_w, "W")
    out["Torch allocated"] = _gb(sample.torch_allocated_gb)
    out["Torch reserved"] = _gb(sample.torch_reserved_gb)
    out["Torch peak"] = _gb(sample.torch_peak_allocated_gb)
    out["MPS allocated"] = _gb(sample.mps_current_gb)
    out["MPS driver"] = _gb(sample.mps_driver_gb)
    return out


def _percent(value) -> str:
    return NA if _number(value) is None else f"{value:.0f}%"


def _gb(value) -> str:
    return NA if _number(value) is None else f"{value:.1f} GB"


def _with_unit(value, unit: str) -> str:
    return NA if _number(value) is None else f"{value:.0f} {unit}"


def _used_of(used, total) -> str:
    if _number(used) is None:
        return NA
    if _number(total) is None:
        return _gb(used)
    return f"{used:.1f} / {total:.1f} GB"


# --- background sampler ------------------------------------------------------------------------


class StatsSampler:
    """Samples on a daemon thread into a bounded history. One lock guards the history and the thread."""

    def __init__(self, maxlen: int = 600, nvml=None):
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, got {maxlen}")
        self._samples: deque[Sample] = deque(maxlen=maxlen)
        self._nvml = nvml
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def maxlen(self) -> int:
        return self._samples.maxlen

    @property
    def running(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def start(self, interval_s: float = 1.0) -> None:
        """Start sampling every `interval_s` seconds. Does nothing if already running."""
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(interval_s, self._stop), name="wan-studio-stats", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def latest(self) -> Sample | None:
        with self._lock:
            return self._samples[-1] if self._samples else None

    def history(self, seconds: float | None = None) -> list[Sample]:
        """Samples oldest first; only those of the last `seconds` when given."""
        with self._lock:
            samples = list(self._samples)
        if seconds is None:
            return samples
        since = time.time() - seconds
        return [s for s in samples if s.time >= since]

    def _run(self, interval_s: float, stop: threading.Event) -> None:
        while not stop.is_set():
            sample = take_sample(self._nvml)
            with self._lock:
                self._samples.append(sample)
            stop.wait(interval_s)


_sampler: StatsSampler | None = None
_sampler_lock = threading.Lock()


def get_sampler() -> StatsSampler:
    """The process-wide sampler (created on first call, not started)."""
    global _sampler
    with _sampler_lock:
        if _sampler is None:
            _sampler = StatsSampler()
        return _sampler
