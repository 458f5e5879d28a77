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
transformer forward (linear: 2 x linear params x tokens; attention: 4 x tokens^2 x hidden per layer
plus cross-attention; one forward per step, two with classifier-free guidance, fewer with a step
cache) and of the VAE decode (FLOPs per pixel, counted), each over the GPU's published dense rate
(FP8's for the linear layers only) times a utilisation fitted per GPU family to timed runs
(memory/fit.py), plus transfers for offload, the text encoder and (when not yet loaded) the load.
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
from wan_studio.memory.footprints import Footprint, annotator_footprint, footprints, transformer_config
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
    windows = request.windows() if getattr(request, "long_video", False) else None
    if windows is not None:  # a long video: its windows, each a pass of the native length
        clip, passes = max(windows.lengths), windows.count
    method, _ = step_cache.method_for(request.checkpoint, request.mode_info.step_cache,
                                      step_cache.conditioning_of(request))
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


def latent_geometry(record: Checkpoint, shape: Shape) -> tuple[int, int]:
    """(tokens per transformer forward, VAE spatial factor)."""
    vae_factor = 16 if "wan2.2-vae" in record.shared.values() or "tiny-vae-16x" in record.shared.values() else 8
    latent_frames = (shape.frames - 1) // 4 + 1
    if shape.mode in ("animate", "s2v"):
        latent_frames += 1  # the reference image rides along as one more latent frame
    patch = 2
    rows, cols = shape.height / vae_factor, shape.width / vae_factor
    tokens = latent_frames * math.ceil(rows / patch) * math.ceil(cols / patch)
    if shape.mode == "s2v":  # the motion frames, packed: the newest at full detail, older ones 2x and 4x coarser
        near, middle, far = transformer_config(record).get("framepack_buckets") or (1, 2, 16)
        tokens += (near * math.ceil(rows / 2) * math.ceil(cols / 2)
                   + middle // 2 * math.ceil(rows / 4) * math.ceil(cols / 4)
                   + far // 4 * math.ceil(rows / 8) * math.ceil(cols / 8))
    return tokens, vae_factor


def _file_weights(record: Checkpoint, fps: dict, machine: Machine) -> dict[str, float]:
    """Components loaded from the user's own files (config.json model_files / transformer_files) weigh
    what they hold resident: a GGUF file its size, an FP8 file 1 byte per FP8 block weight
    (models/single_file.py)."""
    from wan_studio.settings import load_settings

    settings = load_settings()
    if record.id not in (settings.transformer_files or {}) and record.id not in (settings.model_files or {}):
        return {}
    from wan_studio.models import single_file

    sizes = {name: single_file.file_gb(record, settings, name, DTYPE_BYTES[machine.compute_dtype])
             for name in TRANSFORMERS if name in fps}
    return {name: gb for name, gb in sizes.items() if gb is not None}


def _weights_gb(fp: Footprint, plan: Plan, machine: Machine, is_transformer: bool) -> float:
    if fp.component == "vae":
        return fp.bytes(4) / GB
    compute = DTYPE_BYTES[machine.compute_dtype]
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


def extraction_gb(request) -> float:
    """Accelerator GiB while annotators make a job's controls from plain videos (before the Wan
    pipeline loads): their weights in fp32, counted as if all were loaded at once, and a working
    allowance. 0 for a job with nothing to make."""
    wanted = request.controls_to_extract() if hasattr(request, "controls_to_extract") else {}
    if not wanted:
        return 0.0
    from wan_studio.extract import annotators_used

    options = request.extraction_options()
    used = annotators_used([kind for kind, _ in wanted.values()], request.checkpoint.is_tiny,
                           prompted=options.get("point") is not None or options.get("box") is not None)
    weights = sum(annotator_footprint(record).params for record in used) * 4 / GB
    return weights + calibration()["annotators"]["working_gb"]


def estimate(record: Checkpoint, request, plan: Plan, machine: Machine, loaded: bool = False) -> Estimate:
    """Peak memory, RAM and seconds of running `request` on `record` with `plan` on `machine`."""
    cal = calibration()
    shape = shape_of(request)
    fps = footprints(record)
    cfg = transformer_config(record)
    hidden = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    ffn = cfg["ffn_dim"]
    attention_layers = cfg["num_layers"] + len(cfg.get("vace_layers") or [])
    tokens, _ = latent_geometry(record, shape)
    act_bytes = DTYPE_BYTES[machine.compute_dtype]

    weights = {name: _weights_gb(fp, plan, machine, name in TRANSFORMERS) for name, fp in fps.items()}
    weights.update(_file_weights(record, fps, machine))
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
    # a reference pass's K/V, kept at every layer for the whole segment (as many reference tokens as generated)
    reference_gb = 0.0
    if record.extra.get("reference_kv_cache"):
        reference_gb = 2 * attention_layers * tokens * hidden * act_bytes / GB
    denoise_peak = expert_gb + act_gb + latents_gb + reference_gb + others(set(experts))
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
        **({"reference_kv_cache": round(reference_gb, 3)} if reference_gb else {}),
        "denoise_phase": round(denoise_peak, 3), "vae_decode_working": round(decode_act, 3),
        "decode_phase": round(decode_peak, 3), "allocator_overhead": overhead,
    }
    extract_peak = extraction_gb(request)  # the engine frees the accelerator for it first (SwapManager.make_room)
    if extract_peak:
        breakdown["extract_phase"] = round(extract_peak, 3)
    peak = max(encode_peak, denoise_peak, decode_peak, extract_peak) + overhead

    # RAM: whatever the plan keeps off the accelerator, plus loading (from_pretrained reads to RAM first)
    total_weights = sum(weights.values())
    on_cpu = total_weights - (sum(resident.values()) if everything else 0.0)
    if machine.kind == "cpu":
        on_cpu = total_weights + act_gb
    ram = 1.5 + max(on_cpu, max(weights.values()) if not loaded else 0.0) + frames_out

    seconds = _seconds(time_terms(record, shape, plan, machine, fps, weights, tokens, hidden, attention_layers, loaded),
                       plan, weights, machine)
    notes = []
    if not all(fp.exact for fp in fps.values()):
        notes.append("Some weights are estimated from the catalog's rounded parameter counts.")
    return Estimate(
        round(peak, 2), round(ram, 2), round(sum(seconds.values()), 1), breakdown, seconds, tokens,
        all(fp.exact for fp in fps.values()), tuple(notes),
    )


def gpu_spec(machine: Machine) -> dict:
    """The machine's entry of the GPU table (data/calibration.json "gpus"): dense rates and bandwidth.

    Found by name ("RTX 4080" in "NVIDIA GeForce RTX 4080 SUPER" -> the longest match); ZeroGPU by
    its size; an unknown CUDA GPU, MPS and CPU by their generic rows."""
    table = calibration()["gpus"]
    if machine.kind == "zerogpu":
        return table[f"ZeroGPU {machine.zerogpu_size or 'large'}"]
    if machine.kind in ("mps", "cpu"):
        return table[machine.kind]
    name = (machine.name or "").upper()
    matches = [key for key in table if key.upper() in name and not key.startswith(("ZeroGPU", "cuda"))]
    return table[max(matches, key=len)] if matches else table["cuda"]


def gpu_named(name: str) -> tuple[str, dict]:
    """A GPU of the table by (part of) its name: "4080", "rtx 4090", "H100"; a clear error otherwise."""
    table = {k: v for k, v in calibration()["gpus"].items()
             if not k.startswith("_") and k not in ("mps", "cpu", "cuda")}
    wanted = " ".join(str(name).lower().replace("nvidia", "").replace("geforce", "").split())
    inside = sorted((key for key in table if key.lower() in wanted), key=len)  # "H100" in "h100 80gb hbm3"
    found = [key for key in table if key.lower() == wanted] or inside[-1:] or [
        key for key in table if wanted and wanted in key.lower()]
    if len(found) != 1:
        known = ", ".join(table)
        raise StudioError(f"Unknown GPU {name!r}" + (f" (could be {', '.join(found)})" if found else "")
                          + f"; known: {known}.")
    return found[0], table[found[0]]


def peak_rates(machine: Machine, plan: Plan) -> dict[str, float]:
    """FLOP/s at full use of the device for the transformer's linear layers, its attention and the VAE.

    FP8 (dynamic activations) speeds the linear layers only, where the GPU has FP8 tensor cores;
    weight-only formats cost a little for dequantising; the attention backend has its own factor;
    the VAE runs in fp32, which PyTorch runs as TF32 (half the bf16 rate) on tensor cores; compiling
    speeds the transformer's forward (linear layers and attention) by its published factor. The
    attention backend's speed is part of the utilisation (`utilisation`)."""
    cal = calibration()
    gpu = gpu_spec(machine)
    bf16 = gpu["bf16_tflops"] * 1e12
    linear = bf16
    if plan.quantization == "fp8-dynamic" and machine.kind in ("cuda", "zerogpu") and gpu.get("fp8_tflops"):
        linear = gpu["fp8_tflops"] * 1e12 * cal["speed"]["fp8_efficiency"]
    elif plan.quantization in cal["speed"]:
        linear *= cal["speed"][plan.quantization]
    attention = bf16
    if plan.compile != "none":  # the published speed-up is of the whole transformer forward
        linear *= cal["speed"]["compile"]
        attention *= cal["speed"]["compile"]
    return {"linear": linear, "attention": attention, "vae": bf16 / 2}


def time_terms(record, shape, plan, machine, fps, weights, tokens, hidden, layers, loaded) -> dict[str, float]:
    """Seconds of each kind of work at full use of the device ("linear", "attention", "vae"; each is
    divided by its utilisation), and the seconds that do not scale with it ("fixed")."""
    cal = calibration()
    speed = cal["speed"]
    peak = peak_rates(machine, plan)
    experts = [n for n in TRANSFORMERS if n in fps]
    context = TEXT_TOKENS + (257 if "image_encoder" in fps else 0)
    forwards = shape.steps * (2 if shape.guidance > 1 else 1)
    if shape.guidance_2 is not None:  # MoE: low-noise steps use guidance_2; about half the steps each
        forwards = shape.steps / 2 * ((2 if shape.guidance > 1 else 1) + (2 if shape.guidance_2 > 1 else 1))
    forwards *= (1 - shape.skip) * shape.passes  # a step cache skips part of the transformer's work
    linear_flops = 2 * fps[experts[0]].castable * tokens
    attention_flops = 4 * tokens * tokens * hidden * layers + 4 * tokens * context * hidden * layers
    vae = next((sid for comp, sid in record.shared.items() if comp == "vae"), "wan2.1-vae")
    per_pixel = cal["vae_decode_flop_per_pixel"].get(vae, cal["vae_decode_flop_per_pixel"]["wan2.1-vae"])
    decoded = shape.frames * shape.passes
    encoded = 0
    if shape.mode == "s2v":  # each clip decodes after the motion frames and re-encodes them for the next
        motion = transformer_config(record).get("motion_frames", 73)
        decoded += motion * (shape.passes - 1)
        encoded = motion * shape.passes
    encode_per_pixel = cal["vae_encode_flop_per_pixel"].get(vae, cal["vae_encode_flop_per_pixel"]["wan2.1-vae"])
    fixed = forwards * speed["step_overhead_s"][machine.kind]
    if plan.offload == "model":
        fixed += sum(weights.values()) / speed["pcie_gb_s"]
    elif plan.offload == "sequential":
        fixed += forwards * weights[experts[0]] / speed["sequential_gb_s"]
    if "text_encoder" in fps:  # the prompt and the negative prompt
        encode_flops = 2 * 2 * fps["text_encoder"].params * TEXT_TOKENS
        cpu = plan.text_encoder == "cpu" or machine.kind == "cpu"
        fixed += encode_flops / (calibration()["gpus"]["cpu"]["bf16_tflops"] * 1e12 if cpu else peak["linear"])
    return {
        "linear": forwards * linear_flops / peak["linear"],
        "attention": forwards * attention_flops / peak["attention"],
        "vae": shape.width * shape.height * (decoded * per_pixel + encoded * encode_per_pixel) / peak["vae"],
        "fixed": fixed, "forwards": forwards, "load": 0.0 if loaded else sum(weights.values()) / speed["disk_gb_s"],
    }


def architecture(machine: Machine) -> str | None:
    """The GPU generation published speed-ups are given for: ampere, ada, hopper or blackwell (None off CUDA)."""
    if machine.kind not in ("cuda", "zerogpu"):
        return None
    capability = machine.capability
    if capability is None and gpu_spec(machine).get("capability"):
        capability = tuple(int(v) for v in str(gpu_spec(machine)["capability"]).split("."))
    major, minor = capability or (0, 0)
    if major >= 10:
        return "blackwell"
    return {9: "hopper", 8: "ada" if minor >= 9 else "ampere"}.get(major)


def attention_factor(machine: Machine, attention: str, family: dict) -> float:
    """How much faster than SDPA a backend's kernel runs the attention: fitted to timed runs where the
    fit has it (`family`), else its authors' published speed-up on this GPU generation (data/calibration.json
    "attention_speed", each cited), else 1."""
    from wan_studio.memory.attention import kernel

    name = kernel(attention)
    if name in family:
        return family[name]
    published = calibration()["attention_speed"].get(name)
    if isinstance(published, dict):
        return (published.get(architecture(machine) or "") or {}).get("factor", 1.0)
    return 1.0


def utilisation(machine: Machine, attention: str = "native", table: dict | None = None) -> dict[str, float]:
    """The share of peak a run reaches, per kind of work: fitted per GPU family to timed runs
    (memory/fit.py; `table` is such a fit, by default the stored one), the attention backend's
    factor included (`attention_factor`)."""
    cal = table or calibration()["utilisation"]
    family = cal["hopper"] if machine.kind == "cuda" and (machine.capability or (0, 0))[0] == 9 else cal["default"]
    factor = attention_factor(machine, attention, family)
    return {"linear": family["linear"], "attention": family["attention"] * factor, "vae": cal["vae"]}


def _seconds(terms: dict, plan: Plan, weights: dict, machine: Machine) -> dict[str, float]:
    speed = calibration()["speed"]
    use = utilisation(machine, plan.attention)
    denoise = terms["linear"] / use["linear"] + terms["attention"] / use["attention"]
    if plan.offload == "group" and terms["forwards"]:  # streams overlap the copy of the next block with compute
        expert = next(weights[n] for n in TRANSFORMERS if n in weights)
        denoise = terms["forwards"] * max(denoise / terms["forwards"], expert / speed["pcie_gb_s"])
    found = {"denoise": round(denoise, 2), "decode": round(terms["vae"] / use["vae"], 2),
             "other": round(terms["fixed"], 2)}
    if terms["load"]:
        found["load"] = round(terms["load"], 2)
    return found


def work_terms(record: Checkpoint, request, plan: Plan, machine: Machine) -> dict[str, float]:
    """`time_terms` of a run with its weights in place (what a fit of the utilisations reads)."""
    shape = shape_of(request)
    fps = footprints(record)
    cfg = transformer_config(record)
    weights = {name: _weights_gb(fp, plan, machine, name in TRANSFORMERS) for name, fp in fps.items()}
    tokens, _ = latent_geometry(record, shape)
    layers = cfg["num_layers"] + len(cfg.get("vace_layers") or [])
    return time_terms(record, shape, plan, machine, fps, weights, tokens,
                      cfg["num_attention_heads"] * cfg["attention_head_dim"], layers, loaded=True)


def zerogpu_duration(est: Estimate, margin: float = 1.25, floor_s: int = 30, ceiling_s: int = 1800,
                     parts: int = 1) -> int:
    """Seconds to reserve on ZeroGPU: the run without loading (weights are loaded at start), plus a margin;
    for one of `parts` equal reservations (a long video's windows, one reservation each)."""
    run = sum(v for k, v in est.seconds_breakdown.items() if k != "load") / parts
    return int(min(ceiling_s, max(floor_s, math.ceil(run * margin + 10))))


# Finishing on ZeroGPU: convolution work at an assumed effective throughput (not measured on a GPU).
FINISHING_TFLOPS = 100.0
UPSCALER_PARAMS = 16.7e6  # Real-ESRGAN's RRDBNet, run at the input's size: the slowest we ship
INTERPOLATOR_PARAMS = 5.7e6  # RIFE 4.25's IFNet; most of it runs at 1/4 to 1/16 of the frame
ENCODE_PIXELS_PER_S = 50e6  # H.264 on the CPU as the frames come: about 1080p at 25 fps (assumed, not measured)


def finishing_seconds(request, margin: float = 1.5, floor_s: int = 30, ceiling_s: int = 1800) -> int:
    """Seconds to reserve on ZeroGPU for a finishing job (upscale, interpolate) on its result: the
    model's work on the result's frames, plus encoding the new result's (an upscale's target size)."""
    video = request.video
    pixels = video.width * video.height * video.frames
    if request.mode == "upscale":
        flops = 2 * UPSCALER_PARAMS * pixels
        width, height = request.output_size
        made = width * height * video.frames
    else:
        flops = 2 * INTERPOLATOR_PARAMS * pixels / 4 * (request.factor - 1)
        made = video.width * video.height * (request.factor * (video.frames - 1) + 1)
    run = flops / (FINISHING_TFLOPS * 1e12) + made / ENCODE_PIXELS_PER_S
    return int(min(ceiling_s, max(floor_s, math.ceil(run * margin + 20))))


def parallel_seconds(est: Estimate, record: Checkpoint, request, plan: Plan, machine: Machine, ranks: int,
                     link_gb_s: float | None = None) -> float:
    """The run's seconds split over `ranks` GPUs with Ulysses: the transformer's work divides by the
    ranks, and each attention layer of each forward adds four all-to-alls (q, k, v and the output),
    each sending (ranks - 1)/ranks of a rank's 1/ranks share of the tokens over the GPUs' link
    (PCIe by default: the calibration's `pcie_gb_s`; with NVLink, its GB/s: backend.gpu_link_gb_s). Decoding, the
    text encoder and loading run on every rank as on one. A model of the split, not measured."""
    if ranks <= 1:
        return est.seconds
    cfg = transformer_config(record)
    tokens, _ = latent_geometry(record, shape_of(request))
    hidden = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    layers = cfg["num_layers"] + len(cfg.get("vace_layers") or [])
    forwards = work_terms(record, request, plan, machine)["forwards"]
    link = (link_gb_s or calibration()["speed"]["pcie_gb_s"]) * 1e9
    bytes_per_forward = 4 * layers * tokens * hidden * 2 * (ranks - 1) / ranks / ranks  # bf16 activations
    denoise = est.seconds_breakdown.get("denoise", 0.0)
    return est.seconds - denoise + denoise / ranks + forwards * bytes_per_forward / link
