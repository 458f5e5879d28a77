"""Tiny random-weight Wan models, one per architecture, built locally and saved in diffusers format.

They exist so every mode runs end to end on a CPU (CI, laptops) and in tests. Each is built once
from a small config after a fixed seed, saved with `save_pretrained` into the tiny-models folder,
and from then on loaded through exactly the same `from_pretrained` path as the real checkpoints.
The tokenizer is the real UMT5-XXL one of the Wan checkpoints, shipped in the package
(wan_studio/data/umt5-xxl/), so prompt limits, padding and truncation behave as with the real
models and nothing is downloaded. Output is noise: the weights are random.

Components that real checkpoints share (text encoder, VAE, image encoder) are built from the same
seed for every tiny checkpoint, so sharing them between tiny checkpoints is as valid as between
real ones.
"""

from __future__ import annotations

import json
import lzma
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

from filelock import FileLock

from wan_studio.catalog import Annotator, Checkpoint, raw_record

# Bump when a tiny config changes so stale folders are rebuilt.
TINY_FORMAT_VERSION = 5  # 5: the real UMT5-XXL tokenizer replaced a byte-level toy one
TEXT_DIM = 32
CLIP_DIM = 4
CLIP_TOKENS = 4 * 4 + 1  # 4x4 patches of the 4-pixel tiny CLIP, plus the class token
MARKER = ".wan_studio_tiny.json"


def _seeded(seed: int = 0):
    import torch

    torch.manual_seed(seed)


UMT5_TOKENIZER = Path(__file__).resolve().parent.parent / "data" / "umt5-xxl"
# the pieces of that tokenizer, len(make_tokenizer()) (tests/test_tokenizer.py checks): the Tiny text
# encoder's vocabulary, which a Tiny plan's estimate needs without reading 256k pieces
UMT5_VOCAB_SIZE = 256_300


@lru_cache(maxsize=1)
def make_tokenizer():
    """The real UMT5-XXL tokenizer (256k pieces, `</s>` appended), loaded the way a checkpoint's
    `tokenizer/` folder is. Made once per process (about 2 s) and shared: never change its settings."""
    return load_tokenizer()


def load_tokenizer():
    """A tokenizer of its own (make_tokenizer's, read again)."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="umt5-tokenizer-") as folder:
        for source in UMT5_TOKENIZER.glob("*.json"):
            shutil.copy(source, folder)
        packed = (UMT5_TOKENIZER / "tokenizer.json.xz").read_bytes()
        (Path(folder) / "tokenizer.json").write_bytes(lzma.decompress(packed))
        return AutoTokenizer.from_pretrained(folder)


def make_text_encoder(vocab_size: int):
    from transformers import UMT5Config, UMT5EncoderModel

    _seeded()
    config = UMT5Config(
        vocab_size=vocab_size, d_model=TEXT_DIM, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, relative_attention_max_distance=16,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )
    return UMT5EncoderModel(config).eval()


def make_vae(sixteen_x: bool = False):
    from diffusers import AutoencoderKLWan

    _seeded()
    if not sixteen_x:
        return AutoencoderKLWan(
            base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
        )
    # Wan 2.2 VAE layout: 16x16 spatial (patchified 2x2 + 8x), 48 latent channels
    return AutoencoderKLWan(
        base_dim=3, z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
        latents_mean=[0.0] * 48, latents_std=[1.0] * 48, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
        scale_factor_spatial=16, scale_factor_temporal=4, temperal_downsample=[False, True, True],
    )


def make_image_encoder():
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    _seeded()
    config = CLIPVisionConfig(
        hidden_size=CLIP_DIM, projection_dim=CLIP_DIM, num_hidden_layers=2, num_attention_heads=2,
        image_size=4, intermediate_size=16, patch_size=1,
    )
    return CLIPVisionModel(config).eval(), CLIPImageProcessor(crop_size=4, size=4)


def make_scheduler(flow_shift: float):
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=flow_shift)


def _transformer_kwargs(**overrides) -> dict:
    kwargs = dict(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
        text_dim=TEXT_DIM, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=32,
    )
    kwargs.update(overrides)
    return kwargs


def make_transformer(kind: str, seed: int = 0):
    import diffusers

    _seeded(seed)
    if kind in ("dense", "moe"):
        return diffusers.WanTransformer3DModel(**_transformer_kwargs())
    if kind == "i2v":
        return diffusers.WanTransformer3DModel(**_transformer_kwargs(in_channels=36, image_dim=CLIP_DIM))
    if kind == "i2v-moe":  # Wan 2.2 I2V-A14B: image latents only, no CLIP tokens
        return diffusers.WanTransformer3DModel(**_transformer_kwargs(in_channels=36))
    if kind == "flf2v":
        # like FLF2V-14B: the first and last frames' CLIP tokens side by side, with a learned position
        return diffusers.WanTransformer3DModel(
            **_transformer_kwargs(in_channels=36, image_dim=CLIP_DIM, pos_embed_seq_len=2 * CLIP_TOKENS)
        )
    if kind == "ti2v":
        return diffusers.WanTransformer3DModel(**_transformer_kwargs(in_channels=48, out_channels=48))
    if kind == "vace":
        return diffusers.WanVACETransformer3DModel(**_transformer_kwargs(vace_layers=[0], vace_in_channels=96))
    if kind == "animate":
        # a face adapter after every 2nd block, so the 2-layer model has one like the real one has eight
        # and a toy motion encoder reading 16x16 face crops (the real one reads 512x512)
        return diffusers.WanAnimateTransformer3DModel(
            **_transformer_kwargs(in_channels=36, image_dim=CLIP_DIM), inject_face_latents_blocks=2,
            motion_encoder_size=16, motion_encoder_channel_sizes={"4": 8, "8": 8, "16": 8}, motion_style_dim=16,
            motion_dim=4, motion_encoder_dim=16, face_encoder_hidden_dim=16, face_encoder_num_heads=2,
        )
    raise ValueError(f"no tiny architecture '{kind}'")


AUDIO_DIM = 16  # hidden size of the tiny wav2vec2
AUDIO_LAYERS = 2


def make_audio_encoder():
    """A tiny wav2vec2 (same layout as wav2vec2-large-xlsr-53: layer-norm conv stack, stable layer norm)
    and its feature extractor, made locally. 16 kHz in, 50 states per second out, like the real one."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    _seeded()
    config = Wav2Vec2Config(
        vocab_size=8, hidden_size=AUDIO_DIM, num_hidden_layers=AUDIO_LAYERS, num_attention_heads=2,
        intermediate_size=32, conv_dim=(8,) * 7, feat_extract_norm="layer", do_stable_layer_norm=True,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, mask_time_prob=0.0,
    )
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )
    return Wav2Vec2Model(config).eval(), extractor


def make_s2v_transformer(motion_frames: int, seed: int = 0):
    from wan_studio.models.s2v_transformer import WanS2VTransformer3DModel

    _seeded(seed)
    return WanS2VTransformer3DModel(
        num_attention_heads=2, attention_head_dim=12, text_dim=TEXT_DIM, freq_dim=32, ffn_dim=32, num_layers=2,
        audio_dim=AUDIO_DIM, num_audio_layers=AUDIO_LAYERS + 1, audio_inject_layers=(0, 1), motion_frames=motion_frames,
    )


def build_s2v_pipeline(record: Checkpoint):
    from wan_studio.models.s2v_pipeline import WanS2VPipeline

    tokenizer = make_tokenizer()
    audio_encoder, feature_extractor = make_audio_encoder()
    return WanS2VPipeline(
        tokenizer=tokenizer, text_encoder=make_text_encoder(len(tokenizer)), vae=make_vae(),
        scheduler=make_scheduler(next(iter(record.flow_shift.values()))),
        transformer=make_s2v_transformer(raw_record(record.id)["s2v"]["motion_frames"]),
        audio_encoder=audio_encoder, feature_extractor=feature_extractor,
    )


def make_animate2_image_encoder():
    """Animate-2's CLIP vision tower: its projection into the transformer is fixed at ViT-H's 1280
    wide (diffusers' MLPProj), and its input at 224 pixels, so the tiny one keeps both and is one
    thin layer deep."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    _seeded()
    config = CLIPVisionConfig(hidden_size=1280, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                              image_size=224, patch_size=32)
    return CLIPVisionModel(config).eval()


def make_animate2_transformer(seed: int = 0):
    import diffusers

    _seeded(seed)
    return diffusers.WanAnimate2Transformer3DModel(
        patch_size=(1, 2, 2), text_len=16, in_dim=36, dim=24, ffn_dim=32, freq_dim=64, text_dim=TEXT_DIM, out_dim=16,
        num_heads=2, num_layers=2, cross_attn_norm=True, use_img_emb=True,
    )


def build_animate2_pipeline(record: Checkpoint):
    """Animate-2 samples with a scheduler whose step takes the run's generator (not UniPC): flow
    DPM-Solver++, as its base release."""
    from diffusers import DPMSolverMultistepScheduler

    from wan_studio.models.animate2_pipeline import WanAnimate2Pipeline

    tokenizer = make_tokenizer()
    return WanAnimate2Pipeline(
        tokenizer=tokenizer, text_encoder=make_text_encoder(len(tokenizer)), vae=make_vae(),
        image_encoder=make_animate2_image_encoder(), transformer=make_animate2_transformer(),
        scheduler=DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                              flow_shift=next(iter(record.flow_shift.values()))),
    )


def build_pipeline(record: Checkpoint):
    """The tiny pipeline object for a catalog record (not yet saved)."""
    import diffusers

    kind = record.tiny
    if kind == "s2v":
        return build_s2v_pipeline(record)
    if kind == "animate2":
        return build_animate2_pipeline(record)
    tokenizer = make_tokenizer()
    components = dict(
        tokenizer=tokenizer,
        text_encoder=make_text_encoder(len(tokenizer)),
        vae=make_vae(sixteen_x=kind == "ti2v"),
        scheduler=make_scheduler(next(iter(record.flow_shift.values()))),
        transformer=make_transformer(kind),
    )
    if "image_encoder" in record.shared:
        components["image_encoder"], components["image_processor"] = make_image_encoder()
    cls_name = record.pipelines[record.modes[0]]
    if cls_name in ("WanPipeline", "WanImageToVideoPipeline", "WanVACEPipeline"):
        components["transformer_2"] = make_transformer(kind, seed=1) if record.is_moe else None
        components["boundary_ratio"] = record.boundary_ratio
    if cls_name in ("WanPipeline", "WanImageToVideoPipeline"):
        components["expand_timesteps"] = record.expand_timesteps
    return getattr(diffusers, cls_name)(**components)


def tiny_model_dir(record: Checkpoint, root: Path) -> Path:
    return Path(root) / record.id


def is_built(folder: Path) -> bool:
    marker = folder / MARKER
    try:
        return json.loads(marker.read_text()).get("version") == TINY_FORMAT_VERSION
    except (OSError, ValueError):
        return False


def build_annotator(record):
    """A Tiny annotator (model + its image processor), saved like the real one's repo."""
    if record.kind == "depth":
        from transformers import (
            DepthAnythingConfig,
            DepthAnythingForDepthEstimation,
            Dinov2Config,
            DPTImageProcessorPil,
        )

        _seeded()
        backbone = Dinov2Config(hidden_size=16, num_hidden_layers=4, num_attention_heads=2, intermediate_size=32,
                                image_size=28, patch_size=14, out_features=["stage1", "stage2", "stage3", "stage4"],
                                reshape_hidden_states=False)
        model = DepthAnythingForDepthEstimation(DepthAnythingConfig(
            backbone_config=backbone, reassemble_hidden_size=16, neck_hidden_sizes=[8, 8, 16, 16],
            fusion_hidden_size=8, head_hidden_size=8, patch_size=14, depth_estimation_type="relative")).eval()
        # the real processor's settings at a toy size (518 -> 56)
        processor = DPTImageProcessorPil(do_resize=True, size={"height": 56, "width": 56}, keep_aspect_ratio=True,
                                         ensure_multiple_of=14, resample=3, do_pad=False,
                                         image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
        return model, processor
    if record.kind == "detector":
        from transformers import RTDetrConfig, RTDetrForObjectDetection, RTDetrImageProcessorPil, RTDetrResNetConfig

        _seeded()
        backbone = RTDetrResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 16, 16], depths=[1, 1, 1, 1],
                                      layer_type="basic", out_features=["stage2", "stage3", "stage4"])
        model = RTDetrForObjectDetection(RTDetrConfig(
            backbone_config=backbone, encoder_hidden_dim=16, encoder_in_channels=[16, 16, 16],
            feat_strides=[8, 16, 32], encoder_layers=1, encoder_ffn_dim=32, encoder_attention_heads=2, d_model=16,
            num_queries=20, decoder_layers=1, decoder_ffn_dim=32, decoder_attention_heads=2, decoder_n_points=2,
            num_feature_levels=3, decoder_in_channels=[16, 16, 16], num_labels=2, id2label={0: "person", 1: "other"},
            label2id={"person": 0, "other": 1}, num_denoising=0, anchor_image_size=None)).eval()
        return model, RTDetrImageProcessorPil(size={"height": 64, "width": 64})  # 640 on the real one
    if record.kind == "pose":
        from transformers import (
            VitPoseBackboneConfig,
            VitPoseConfig,
            VitPoseForPoseEstimation,
            VitPoseImageProcessorPil,
        )

        _seeded()
        backbone = VitPoseBackboneConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2,
                                         image_size=[64, 48], patch_size=[16, 16], out_features=["stage2"],
                                         out_indices=[2])
        model = VitPoseForPoseEstimation(VitPoseConfig(backbone_config=backbone, num_labels=17, use_simple_decoder=True,
                                                       scale_factor=4)).eval()
        return model, VitPoseImageProcessorPil(size={"height": 64, "width": 48})  # 256x192 on the real one
    if record.kind == "segmenter":
        return (_tiny_sam2(),)
    if record.kind == "interpolator":
        from wan_studio.models import rife

        return (rife.TinyWeights(),)
    if record.kind == "upscaler":
        from wan_studio.models import upscaler

        return (upscaler.TinyWeights(),)
    raise ValueError(f"no tiny annotator for {record.kind!r}")


def _tiny_sam2():
    """SAM2's video model at a 64 px input (1024 on the real one). Its memory attention reads 64
    channels and splits each object pointer into 64-wide tokens, so those widths stay."""
    from transformers import Sam2VideoConfig, Sam2VideoModel

    _seeded()
    size, width = 64, 128
    backbone = dict(model_type="sam2_hiera_det_model", hidden_size=8, num_attention_heads=1, image_size=[size, size],
                    blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[8, 16, 32, 64],
                    num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[2, 2, 2, 2],
                    global_attention_blocks=[3], window_positional_embedding_background_size=[2, 2])
    vision = dict(model_type="sam2_vision_model", backbone_config=backbone, backbone_channel_list=[64, 32, 16, 8],
                  backbone_feature_sizes=[[size // 4] * 2, [size // 8] * 2, [size // 16] * 2], fpn_hidden_size=width)
    return Sam2VideoModel(Sam2VideoConfig(
        vision_config=vision, image_size=size, num_maskmem=3,
        prompt_encoder_config=dict(hidden_size=width, image_size=size, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=width, mlp_dim=64, num_hidden_layers=1, num_attention_heads=2,
                                 iou_head_hidden_dim=32),
        memory_attention_hidden_size=width, memory_attention_num_layers=1, memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[size // 16] * 2, memory_encoder_hidden_size=width,
        memory_encoder_output_channels=64, mask_downsampler_embed_dim=width, memory_fuser_embed_dim=width,
        memory_fuser_intermediate_dim=64)).eval()


class _SavedTogether:
    """A model and its processor saved into one folder, as their Hub repos hold them."""

    def __init__(self, *parts):
        self.parts = parts

    def save_pretrained(self, folder):
        for part in self.parts:
            part.save_pretrained(folder)


def ensure_tiny_model(record: Checkpoint, root: Path) -> Path:
    """Build and save the tiny checkpoint once; return its folder. One process builds it while the
    others wait (a pool's workers, a split job's ranks), so none loads a folder being replaced."""
    folder = tiny_model_dir(record, root)
    if is_built(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder.parent / f".{record.id}.lock")):
        if is_built(folder):  # another process built it while this one waited
            return folder
        staging = Path(tempfile.mkdtemp(prefix=f".{record.id}-", dir=folder.parent))
        try:
            if isinstance(record, Annotator):
                built = _SavedTogether(*build_annotator(record))
            else:
                built = build_pipeline(record)
            built.save_pretrained(staging)
            (staging / MARKER).write_text(json.dumps({"version": TINY_FORMAT_VERSION, "id": record.id}))
            if folder.exists():  # a broken one (a build cut short), or of an older format
                shutil.rmtree(folder, ignore_errors=True)
            os.replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder
