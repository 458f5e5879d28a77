"""Apply a memory plan to a loaded pipeline with the libraries' own switches, and take it off again.

Two parts, because changing the plan of the active checkpoint should reload weights only when it must:
- `convert_weights`: what changes the weights themselves (FP8 storage through diffusers' layerwise
  casting, torchao float8 / int8 quantization, compile). Undoing it means reloading from disk.
- `attach_runtime`: what only hooks or moves modules (offload, VAE tiling and slicing, attention
  backend). `detach_runtime` removes it, so another plan's hooks can go on the same weights.
"""

from __future__ import annotations

from wan_studio.memory.plans import Plan

TRANSFORMERS = ("transformer", "transformer_2")
_TORCHAO_CONFIGS = {
    "fp8-weight": "Float8WeightOnlyConfig",
    "fp8-dynamic": "Float8DynamicActivationFloat8WeightConfig",
    "int8-weight": "Int8WeightOnlyConfig",
}


def transformers_of(pipe) -> list:
    return [m for name in TRANSFORMERS if (m := getattr(pipe, name, None)) is not None]


def _torch_dtype(name: str):
    import torch

    return getattr(torch, name)


# a transformer's embedders, encoders and output projection (diffusers' and our S2V's names): they stay
# in full precision, as the field's FP8 recipes keep them (small, and sensitive); one list for both
# quantizing while loading and after
FULL_PRECISION = ("condition_embedder", "text_embedder", "time_embedder", "time_proj", "proj_out",
                  "patch_embedding", "vace_patch_embedding", "motion_encoder", "audio_encoder")


def quantizable(module, name: str) -> bool:
    """A transformer's Linear layers outside FULL_PRECISION."""
    import torch

    return isinstance(module, torch.nn.Linear) and name.split(".", 1)[0] not in FULL_PRECISION


def _torchao_config(kind: str):
    import torchao.quantization as tq

    config = getattr(tq, _TORCHAO_CONFIGS[kind])
    return config(granularity=tq.PerRow()) if kind == "fp8-dynamic" else config()


def load_quantization(plan: Plan, components: list[str]):
    """diffusers' quantize-while-loading config for the plan's transformers (torchao), or None: each
    shard is quantized as it loads, so RAM never holds the whole model in bf16."""
    if plan.quantization not in _TORCHAO_CONFIGS or not components:
        return None
    from diffusers import PipelineQuantizationConfig, TorchAoConfig

    return PipelineQuantizationConfig(quant_mapping={
        name: TorchAoConfig(_torchao_config(plan.quantization), modules_to_not_convert=list(FULL_PRECISION))
        for name in components})


def quantize(module, kind: str, transformer: bool = True) -> None:
    """torchao weight quantization in place: of a transformer's Linears outside FULL_PRECISION (FP8
    with per-row scales), or of every Linear of another module (the text encoder)."""
    import torchao.quantization as tq

    tq.quantize_(module, _torchao_config(kind), **({"filter_fn": quantizable} if transformer else {}))


def convert_weights(pipe, plan: Plan, device: str, artifacts=None) -> list[str]:
    """Quantize / cast / compile the pipeline's weights for `plan`; returns notes for the recipe.
    `artifacts`: the folder of graphs compiled before (memory/compile.py)."""
    import torch

    notes = []
    compute = _torch_dtype(plan.transformer_dtype)
    for transformer in transformers_of(pipe):
        method = getattr(transformer, "quantization_method", None)
        if method == "gguf":  # already quantized in its file
            if plan.quantization != "none":
                notes.append(f"{plan.quantization} skipped: the transformer's weights come quantized from a GGUF file")
            continue
        if method == "torchao":  # quantized while loading (load_quantization)
            continue
        if getattr(transformer, "stored_in_fp8", None):  # FP8 with its scales from a single file
            if plan.quantization != "none":
                notes.append(f"{plan.quantization} skipped: the transformer's weights come in FP8 from its file")
            continue
        if plan.quantization == "fp8-storage":
            transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute)
        elif plan.quantization != "none":
            quantize(transformer, plan.quantization)
    text_encoder = getattr(pipe, "text_encoder", None)
    if plan.text_encoder_quantization != "none" and text_encoder is not None:
        quantize(text_encoder, plan.text_encoder_quantization, transformer=False)
    if plan.compile == "repeated-blocks":
        from wan_studio.memory.compile import compile_blocks

        notes += compile_blocks(transformers_of(pipe), device, artifacts)
    return notes


def attach_runtime(pipe, plan: Plan, device: str, attention: str | None = None, aoti: dict | None = None) -> list[str]:
    """Offload hooks, VAE tiling/slicing, the attention backend (the device's checked choice,
    memory/attention.py; else the plan's) and ZeroGPU's compiled blocks (`aoti`: the checkpoint's)."""
    notes = []
    backend = attention or plan.attention
    for transformer in transformers_of(pipe):
        if backend != "native":
            try:
                transformer.set_attention_backend(backend)
            except Exception as exc:  # passed its check but refuses this model
                notes.append(f"attention backend {backend} unavailable ({exc}); using SDPA")
                transformer.reset_attention_backend()
        elif getattr(transformer, "_attention_backend_set", False):
            transformer.reset_attention_backend()
        transformer._attention_backend_set = backend != "native"
    vae = getattr(pipe, "vae", None)
    if vae is not None:
        if plan.vae_tiling:
            tile = plan.vae_tile
            vae.enable_tiling(tile_sample_min_height=tile, tile_sample_min_width=tile,
                              tile_sample_stride_height=tile * 3 // 4, tile_sample_stride_width=tile * 3 // 4)
        else:
            vae.disable_tiling()
        vae.enable_slicing() if plan.vae_slicing else vae.disable_slicing()
    _place(pipe, plan, device)
    if plan.compile == "aoti":  # after placing: the compiled blocks read the weights where they are now
        from wan_studio.memory import aoti as compiled_blocks

        notes += compiled_blocks.attach(transformers_of(pipe), plan, aoti)
    return notes


def _place(pipe, plan: Plan, device: str) -> None:
    import torch

    if plan.offload == "none":
        pipe.to(device)
        if plan.text_encoder == "cpu" and getattr(pipe, "text_encoder", None) is not None:
            pipe.text_encoder.to("cpu")
    elif plan.offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    elif plan.offload == "sequential":
        pipe.enable_sequential_cpu_offload(device=device)
    elif plan.offload == "group":
        from diffusers.hooks import apply_group_offloading

        onload = torch.device(device)
        streams = onload.type == "cuda"
        for transformer in transformers_of(pipe):
            transformer.enable_group_offload(
                onload_device=onload, offload_device=torch.device("cpu"), offload_type="block_level",
                num_blocks_per_group=1, use_stream=streams, non_blocking=streams,
            )
        if getattr(pipe, "text_encoder", None) is not None:
            apply_group_offloading(pipe.text_encoder, onload_device=onload, offload_type="leaf_level",
                                   use_stream=streams, non_blocking=streams)
        for name in ("vae", "image_encoder"):  # small: they stay on the accelerator
            module = getattr(pipe, name, None)
            if module is not None:
                module.to(onload)
    else:
        raise ValueError(f"unknown offload '{plan.offload}'")


def detach_runtime(pipe) -> None:
    """Remove offload hooks (accelerate's and diffusers' group offloading) and compiled blocks from every
    component."""
    import torch
    from diffusers.hooks import HookRegistry

    from wan_studio.memory import aoti as compiled_blocks

    pipe.remove_all_hooks()
    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module) and hasattr(module, "_diffusers_hook"):
            registry = HookRegistry.check_if_exists_or_initialize(module)
            for name in ("group_offloading", "layer_execution_tracker", "lazy_prefetch_group_offloading"):
                registry.remove_hook(name, recurse=True)
    compiled_blocks.detach(transformers_of(pipe))  # last: a hook taken off puts back what it wrapped


def vae_tiling_in_use(pipe) -> bool:
    vae = getattr(pipe, "vae", None)
    return bool(getattr(vae, "use_tiling", False))
