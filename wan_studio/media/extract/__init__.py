"""Controls made from a plain video by annotator models (transformers), for VACE and Animate.

- depth: Depth Anything V2, drawn near = bright, one scale for the whole clip (depth.py);
- pose: the main person's skeleton, OpenPose colours on black (people.py finds and follows the
  person with RT-DETR and reads 17 keypoints with ViTPose; skeleton.py draws);
- face: Wan-Animate's face crops of the same person, steadied over time (people.py);
- mask and background: Animate's replace inputs, the person's box (a little larger) in white on
  black, and the video with that box blacked out. Upstream's preprocessing ends with the same
  shape: it fills the bounding box of its dilated SAM2 mask.

Each kind takes RGB frames and gives frames of the same count (pose and depth also the same
size). The models are found or fetched like checkpoints (`wan_studio.models.resolve`: models
folder, HF cache, `python -m wan_studio download ID`, the clear no-Hub error); the Tiny checkpoints
use Tiny random-weight twins built locally. Frames go through the models in chunks, and
`progress(done, total)` is called after each chunk (it may raise to stop between chunks).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from wan_studio.errors import RequestError

KINDS = ("depth", "pose", "face", "mask", "background")
# face crops come from the pose keypoints; masks from the followed person's boxes
MODEL_KIND = {"depth": "depth", "pose": "pose", "face": "pose", "mask": "pose", "background": "pose"}


def annotator_for(kind: str, tiny: bool):
    from wan_studio import catalog

    return catalog.annotator_for(MODEL_KIND[kind], tiny)


def controls(kinds, frames: list[Image.Image], tiny: bool, device="cpu", settings=None, field: str = "video",
             name: str = "the video", progress: Callable[[int, int], None] | None = None,
             annotators: dict | None = None) -> dict[str, list[Image.Image]]:
    """kind -> control frames for each of `kinds`, made from `frames` (pose and face share one pass).
    `annotators` (kind -> record) overrides the default real / Tiny annotator of a kind."""
    from wan_studio import catalog, models

    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise RequestError("kind", f"No annotator makes {unknown[0]!r} controls; these can be made: {', '.join(KINDS)}.")
    if not frames:
        raise RequestError(field, f"{name} has no frames to make a control from.")
    chosen = {kind: (annotators or {}).get(kind) or annotator_for(kind, tiny) for kind in kinds}
    made = {}
    if "depth" in kinds:
        from wan_studio.media.extract.depth import depth_frames, depth_maps

        made["depth"] = depth_frames(depth_maps(frames, models.resolve(chosen["depth"], settings), device, progress))
    people_kinds = [kind for kind in kinds if MODEL_KIND[kind] == "pose"]
    if people_kinds:
        from wan_studio.media.extract import skeleton
        from wan_studio.media.extract.people import People, face_crops

        record = chosen[people_kinds[0]]
        detector = catalog.annotator(record.detector)
        detector_folder, pose_folder = _resolve_all([detector, record], settings)
        finder = People(detector_folder, pose_folder, device, detector.threshold)
        people = finder.follow_main_person(frames, progress)
        if all(person.box is None for person in people):
            raise RequestError(field, f"No person was found in {name}: pose and face controls follow one person; "
                                      "use a video where someone is clearly in view.")
        if "pose" in kinds:
            width, height = frames[0].size
            made["pose"] = [Image.fromarray(skeleton.draw(height, width, p.keypoints, p.scores, record.threshold))
                            for p in people]
        if "face" in kinds:
            made["face"] = face_crops(frames, people, record.threshold)
        if "mask" in kinds or "background" in kinds:
            from wan_studio.media.extract.people import person_masks

            masks = person_masks(frames[0].size, people)
            made["mask"] = [Image.fromarray(mask).convert("RGB") for mask in masks]
            made["background"] = [Image.fromarray(np.where(mask[..., None] > 0, 0, np.asarray(frame.convert("RGB"))).astype(np.uint8))
                                  for frame, mask in zip(frames, masks)]
    return {kind: made[kind] for kind in kinds}


def _resolve_all(records, settings) -> list:
    """Every record's folder; when some are missing, one message naming each with its download command."""
    from wan_studio import models
    from wan_studio.errors import ModelNotAvailable

    folders, problems = [], []
    for record in records:
        try:
            folders.append(models.resolve(record, settings))
        except ModelNotAvailable as exc:
            problems.append(str(exc))
    if problems:
        raise ModelNotAvailable("\n\n".join(problems))
    return folders


def control(kind: str, frames: list[Image.Image], annotator, device="cpu", settings=None, name: str = "the video",
            progress: Callable[[int, int], None] | None = None) -> list[Image.Image]:
    """The `kind` control video of `frames` (from the video called `name`), made by `annotator`."""
    if kind in KINDS and annotator.kind != MODEL_KIND[kind]:
        raise RequestError("annotator", f"{annotator.name} makes {annotator.kind} controls, not {kind}.")
    return controls([kind], frames, annotator.is_tiny, device, settings, name=name, progress=progress,
                    annotators={kind: annotator})[kind]
