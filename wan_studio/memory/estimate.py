"""Predict a run's peak accelerator memory, peak RAM and time, before anything loads.

    estimate(checkpoint, request, plan, machine) -> Estimate

Memory is the largest of three phases, each = weights on the accelerator in that phase + working
memory of that phase:
- encode: the text encoder (and image encoder) with their activations;
- denoise: the transformer(s) as the plan holds them + the activations of one block
  (tokens = latent frames x (H / vae factor / 2) x (W / vae factor / 2));
- decode: the VAE in fp32 + one decode chunk of the tile (or whole frame) + the output frames.
With no offload every component stays resident in every phase; model offload moves one component
at a time (so a MoE pair has one expert resident); group offload keeps the non-block weights and
two blocks (the one running, the one prefetched); sequential offload keeps about one layer.

Weights come from exact meta-device footprints (footprints.py); the activation, VAE and speed
constants are data (data/calibration.json) with their sources. Time counts the FLOPs of every
transformer forward (2 x linear params x tokens + 4 x tokens^2 x hidden per attention layer, one
forward per step, two with classifier-free guidance) at the device's bf16 throughput times a
utilisation, plus transfers for offload, the VAE decode and (when not yet loaded) the load.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from wan_studio.catalog import Checkpoint
from wan_studio.errors import StudioError
from wan_studio.memory.footprints import Footprint, footprints, transformer_config
from wan_studio.memory.plans import Machine, Plan

CALIBRATION_FILE = Path(__file__).parents[1] / "data" / "calibration.json"
GB = 2**30  # all figures are GiB, like the memory a GPU reports
TEXT_TOKENS = 512
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
QUANT_BYTES = {"none": None, "fp8-storage": 1, "fp8-weight": 1, "fp8-dynamic": 1, "int8-weight": 1}
TRANSFORMERS = ("transformer", "transformer_2")
ENCODERS = ("text_encoder", "image_encoder", "audio_encoder")


@lru_cache(maxsize=1)
def calibration() -> dict:
    return json.loads(CALIBRATION_FILE.read_text())


@dataclass(frozen=True)
class Shape:
    """The parts of a request the estimate reads."""

    mode: str
    width: int
    height: int
    frames: int  # frames of one pass (one clip for S2V)
    steps: int
    guidance: float
    guidance_2: float | None = None
    passes: int = 1  # clips run one after another (S2V)
    skip: float = 0.0  # share of the transformer work the step cache is expected to skip


def shape_of(request) -> Shape:
    if isinstance(request, Shape):
        return request
    from wan_studio.memory import step_cache

    clip = getattr(request, "clip_frames", None)
    passes = getattr(request, "clips", None) or 1
    method, _ = step_cache.method_for(request.checkpoint, request.mode, step_cache.conditioning_of(request))
    return Shape(
        mode=request.mode, width=request.width, height=request.height, frames=clip or request.frames,
        steps=request.steps, guidance=request.guidance, guidance_2=getattr(request, "guidance_2", None),
        passes=int(passes), skip=step_cache.expected_skip(getattr(request, "cache", None) or "off", method),
    )


def shape_for(record: Checkpoint, mode=None, size=None, frames=None, steps=None) -> Shape:
    """The shape of a run at the checkpoint's defaults, with any of mode, "WxH", frames, steps set."""
    mode = mode or record.modes[0]
    if mode not in record.pipelines:
        raise StudioError(f"{record.name} does not do {mode.upper()}; it does {', '.join(record.modes)}.")
    width, height = record.default_size
    if size:
        try:
            width, height = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise StudioError(f"Size must look like 832x480; got {size!r}.")
    return Shape(mode, width, height, frames or record.frames_default, steps or record.steps, record.guidance,
                 record.guidance_2)


@dataclass(frozen=True)
class Estimate:
    peak_gb: float  # accelerator (on CPU: the process's tensors in RAM)
    ram_gb: float
    seconds: float
    breakdown: dict[str, float]  # GB by phase and part
    seconds_breakdown: dict[str, float]
    tokens: int
    exact_weights: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    def budget_gb(self, machine: Machine) -> float:
        cal = calibration()
        reserve = cal["runtime_reserve_gb"][machine.kind]
        return machine.memory_gb * (1 - cal["safety_margin"]) - reserve

    def fits(self, machine: Machine) -> bool:
        return self.peak_gb <= self.budget_gb(machine)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _latent_geometry(record: Checkpoint, shape: Shape) -> tuple[int, int]:
    """(tokens per transformer forward, VAE spatial factor)."""
    vae_factor = 16 if "wan2.2-vae" in record.shared.values() or "tiny-vae-16x" in record.shared.values() else 8
    latent_frames = (shape.frames - 1) // 4 + 1
    if shape.mode in ("animate", "s2v"):
        latent_frames += 1  # the reference image rides along as one more latent frame
    patch = 2
    tokens = latent_frames * math.ceil(shape.height / vae_factor / patch) * math.ceil(shape.width / vae_factor / patch)
    return tokens, vae_factor


def _weights_gb(fp: Footprint, plan: Plan, machine: Machine, is_transformer: bool) -> float:
    if fp.component == "vae":
        return fp.bytes(4) / GB
    compute = DTYPE_BYTES[machine.compute_dtype] if fp.component != "image_encoder" else DTYPE_BYTES[machine.compute_dtype]
    quant = plan.quantization if is_transformer else (
        plan.text_encoder_quantization if fp.component == "text_encoder" else "none")
    return fp.bytes(compute, QUANT_BYTES[quant]) / GB


def _resident_gb(fp: Footprint, full_gb: float, plan: Plan) -> float:
    """Weight GB of a component on the accelerator while it runs, under the plan's offload."""
    if plan.offload in ("none", "model") or fp.component == "vae":
        return full_gb
    fraction_per_param = full_gb / max(fp.params, 1)
    if plan.offload == "group" and fp.blocks:
        return (fp.non_block + 2 * fp.block) * fraction_per_param
    if plan.offload == "group":  # leaf-level: about the largest leaf twice (the text encoder's embedding)
        return min(full_gb, 2 * 0.19 * full_gb)
    # sequential: one leaf at a time
    return min(full_gb, (fp.block or fp.params * 0.19) * fraction_per_param)


def estimate(record: Checkpoint, request, plan: Plan, machine: Machine, loaded: bool = False) -> Estimate:
    """Peak memory, RAM and seconds of running `request` on `record` with `plan` on `machine`."""
    cal = calibration()
    shape = shape_of(request)
    fps = footprints(record)
    cfg = transformer_config(record)
    hidden = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    ffn = cfg["ffn_dim"]
    attention_layers = cfg["num_layers"] + len(cfg.get("vace_layers") or [])
    tokens, _ = _latent_geometry(record, shape)
    act_bytes = DTYPE_BYTES[machine.compute_dtype]

    weights = {name: _weights_gb(fp, plan, machine, name in TRANSFORMERS) for name, fp in fps.items()}
    resident = {name: _resident_gb(fps[name], gb, plan) for name, gb in weights.items()}
    if plan.text_encoder == "cpu" and "text_encoder" in resident:
        resident["text_encoder"] = 0.0
    experts = [n for n in TRANSFORMERS if n in weights]
    everything = plan.offload == "none"

    def others(active: set[str]) -> float:
        """Weights of components that stay resident while `active` runs (only without offload)."""
        if not everything:
            return 0.0
        return sum(gb for name, gb in resident.items() if name not in active)

    breakdown = {}
    # encode
    encoders = [n for n in ENCODERS if n in weights]
    encode_act = cal["activation"]["text_encoder_gb"]
    encode_peak = max((resident[n] for n in encoders), default=0.0) + encode_act + others(set(encoders))
    if everything:
        encode_peak = sum(resident.values()) + encode_act
    # denoise
    act_gb = cal["activation"]["block_fixed_gb"] + act_bytes * tokens * (
        cal["activation"]["hidden_copies"] * hidden + cal["activation"]["ffn_copies"] * ffn) / GB
    latents_gb = 4 * tokens * 4 * 16 * 3 / GB  # fp32 latents, noise prediction, scheduler state
    expert_gb = sum(resident[n] for n in experts) if everything else max(resident[n] for n in experts)
    denoise_peak = expert_gb + act_gb + latents_gb + others(set(experts))
    # decode
    vae_key = next((sid for comp, sid in record.shared.items() if comp == "vae"), "wan2.1-vae")
    per_pixel = cal["vae_decode_bytes_per_pixel"].get(vae_key, cal["vae_decode_bytes_per_pixel"]["wan2.1-vae"])
    if plan.vae_tiling:
        area = min(plan.vae_tile, shape.height) * min(plan.vae_tile, shape.width)
    else:
        area = shape.height * shape.width
    decode_act = per_pixel * area / GB
    frames_out = shape.frames * shape.height * shape.width * 3 * 4 / GB
    decode_peak = resident.get("vae", 0.0) + decode_act + frames_out + others({"vae"})
    overhead = cal["allocator_overhead_gb"][machine.kind]
    breakdown = {
        "weights_" + name: round(gb, 3) for name, gb in weights.items()
    } | {
        "encode_phase": round(encode_peak, 3), "denoise_activations": round(act_gb, 3),
        "denoise_phase": round(denoise_peak, 3), "vae_decode_working": round(decode_act, 3),
        "decode_phase": round(decode_peak, 3), "allocator_overhead": overhead,
    }
    peak = max(encode_peak, denoise_peak, decode_peak) + overhead

    # RAM: whatever the plan keeps off the accelerator, plus loading (from_pretrained reads to RAM first)
    total_weights = sum(weights.values())
    on_cpu = total_weights - (sum(resident.values()) if everything else 0.0)
    if machine.kind == "cpu":
        on_cpu = total_weights + act_gb
    ram = 1.5 + max(on_cpu, max(weights.values()) if not loaded else 0.0) + frames_out

    seconds = _seconds(record, shape, plan, machine, fps, weights, tokens, hidden, attention_layers, loaded)
    notes = []
    if not all(fp.exact for fp in fps.values()):
        notes.append("Some weights are estimated from the catalog's rounded parameter counts.")
    return Estimate(
        round(peak, 2), round(ram, 2), round(sum(seconds.values()), 1), breakdown, seconds, tokens,
        all(fp.exact for fp in fps.values()), tuple(notes),
    )


def _throughput_tflops(machine: Machine) -> float:
    table = calibration()["bf16_tflops"]
    if machine.kind == "zerogpu":
        return table[f"zerogpu-{machine.zerogpu_size or 'large'}"]
    if machine.kind in ("mps", "cpu"):
        return table[machine.kind]
    name = (machine.name or "").upper()
    matches = [key for key in table if key.upper() in name and key not in ("cuda", "mps", "cpu", "source")]
    return table[max(matches, key=len)] if matches else table["cuda"]


def _seconds(record, shape, plan, machine, fps, weights, tokens, hidden, layers, loaded) -> dict[str, float]:
    cal = calibration()
    speed = cal["speed"]
    effective = _throughput_tflops(machine) * 1e12 * cal["mfu"]["value"]
    if plan.quantization in speed and machine.kind in ("cuda", "zerogpu"):
        effective *= speed[plan.quantization]
    elif plan.quantization == "int8-weight":
        effective *= speed["int8-weight"]
    if plan.compile != "none":
        effective *= speed["compile"]

    experts = [n for n in TRANSFORMERS if n in fps]
    linear = fps[experts[0]].castable
    context = TEXT_TOKENS + (257 if "image_encoder" in fps else 0)
    flops_forward = 2 * linear * tokens + 4 * tokens * tokens * hidden * layers + 4 * tokens * context * hidden * layers
    forwards = shape.steps * (2 if shape.guidance > 1 else 1)
    if shape.guidance_2 is not None:  # MoE: low-noise steps use guidance_2; about half the steps each
        forwards = shape.steps / 2 * ((2 if shape.guidance > 1 else 1) + (2 if shape.guidance_2 > 1 else 1))
    forwards *= 1 - shape.skip  # a step cache skips part of the transformer's work
    compute = forwards * flops_forward / effective + forwards * speed["step_overhead_s"][machine.kind]
    transformer_gb = weights[experts[0]]
    transfer = 0.0
    if plan.offload == "model":
        transfer = sum(weights.values()) / speed["pcie_gb_s"]
    elif plan.offload == "group":  # streams overlap the copy of the next block with compute
        per_forward = max(flops_forward / effective, transformer_gb / speed["pcie_gb_s"])
        compute = forwards * per_forward + forwards * speed["step_overhead_s"][machine.kind]
    elif plan.offload == "sequential":
        compute += forwards * transformer_gb / speed["sequential_gb_s"]
    pixels = shape.frames * shape.width * shape.height
    vae_scale = fps["vae"].params / 1.27e8 if "vae" in fps else 1.0  # the constant is for Wan's 127 M VAE
    decode = pixels * speed["vae_flop_per_pixel"] * vae_scale / effective
    encode = 2 * 2 * fps["text_encoder"].params * TEXT_TOKENS / effective if "text_encoder" in fps else 0.0
    result = {
        "denoise": round(compute * shape.passes, 2), "transfers": round(transfer, 2),
        "decode": round(decode * shape.passes, 2), "encode": round(encode, 2),
    }
    if not loaded:
        result["load"] = round(sum(weights.values()) / speed["disk_gb_s"], 2)
    return result


def zerogpu_duration(est: Estimate, margin: float = 1.25, floor_s: int = 30, ceiling_s: int = 1800) -> int:
    """Seconds to reserve on ZeroGPU: the run without loading (weights are loaded at start), plus a margin."""
    run = sum(v for k, v in est.seconds_breakdown.items() if k != "load")
    return int(min(ceiling_s, max(floor_s, math.ceil(run * margin + 10))))
