"""Controls made from a plain video by annotator models (transformers), for VACE and Animate.

- depth: Depth Anything V2, drawn near = bright, one scale for the whole clip (depth.py);
- pose: the main person's skeleton, OpenPose colours on black (people.py finds and follows the
  person with RT-DETR and reads 17 keypoints with ViTPose; skeleton.py draws);
- face: Wan-Animate's face crops of the same person, steadied over time (people.py);
- layout: VACE's layout control, every object's box outline followed through the video (layout.py);
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

KINDS = ("depth", "pose", "face", "mask", "background", "layout")
# face crops come from the pose keypoints; masks from the followed person's boxes; layout from the detector
MODEL_KIND = {"depth": "depth", "pose": "pose", "face": "pose", "mask": "pose", "background": "pose", "layout": "detector"}


def annotator_for(kind: str, tiny: bool, point=None):
    """The annotator that makes `kind` (a mask of a clicked object needs only the detector)."""
    from wan_studio import catalog

    model_kind = "detector" if point is not None and kind in ("mask", "background") else MODEL_KIND[kind]
    return catalog.annotator_for(model_kind, tiny)


def controls(kinds, frames: list[Image.Image], tiny: bool, device="cpu", settings=None, field: str = "video",
             name: str = "the video", progress: Callable[[int, int], None] | None = None,
             annotators: dict | None = None, point: tuple[int, int] | None = None,
             character=None) -> dict[str, list[Image.Image]]:
    """kind -> control frames for each of `kinds`, made from `frames` (pose and face share one pass).
    `annotators` (kind -> record) overrides the default real / Tiny annotator of a kind. With
    `point` (x, y on the first frame), mask and background are of the object clicked there, followed
    through the video, instead of the main person. With `character` (a picture or its path), the pose
    is fitted to that character's proportions (retarget.py)."""
    from wan_studio import catalog, models

    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise RequestError("kind", f"No annotator makes {unknown[0]!r} controls; these can be made: {', '.join(KINDS)}.")
    if not frames:
        raise RequestError(field, f"{name} has no frames to make a control from.")
    chosen = {kind: (annotators or {}).get(kind) or annotator_for(kind, tiny, point) for kind in kinds}
    made = {}
    if point is not None and ("mask" in kinds or "background" in kinds):
        _clicked_masks(made, frames, chosen.get("mask") or chosen["background"], point, device, settings, field, name, progress)
        kinds_left = [kind for kind in kinds if kind not in ("mask", "background")]
    else:
        kinds_left = list(kinds)
    if "depth" in kinds:
        from wan_studio.media.extract.depth import depth_frames, depth_maps

        made["depth"] = depth_frames(depth_maps(frames, models.resolve(chosen["depth"], settings), device, progress))
    people_kinds = [kind for kind in kinds_left if MODEL_KIND[kind] == "pose"]
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
            made["pose"] = _skeletons(frames, people, record.threshold, finder, character)
        if "face" in kinds:
            made["face"] = face_crops(frames, people, record.threshold)
        if "mask" in kinds_left or "background" in kinds_left:
            from wan_studio.media.extract.people import person_masks

            _mask_and_background(made, frames, person_masks(frames[0].size, people))
    if "layout" in kinds:
        from wan_studio.media.extract import layout

        detections = _detections(frames, chosen["layout"], device, settings, progress)
        tracks = layout.tracks_of(detections)
        if not tracks:
            raise RequestError(field, f"No object was found in {name} for a layout control; use a video where things "
                                      "stay in view.")
        width, height = frames[0].size
        made["layout"] = [Image.fromarray(layout.draw(height, width, i, tracks)) for i in range(len(frames))]
    return {kind: made[kind] for kind in kinds}


def _skeletons(frames, people, threshold: float, finder, character) -> list[Image.Image]:
    """The pose video: each frame's skeleton, fitted to the character's proportions when one is given."""
    from wan_studio import media
    from wan_studio.media.extract import retarget, skeleton

    width, height = frames[0].size
    poses = []  # OpenPose points and which are seen, per frame (None: nobody yet)
    for person in people:
        if person.keypoints is None:
            poses.append(None)
            continue
        points, confidence = skeleton.openpose_points(person.keypoints, person.scores)
        poses.append((points, confidence >= threshold))
    if character is not None:
        picture = media.load_image(character, field="image")
        (found,) = finder.follow_main_person([picture.convert("RGB")])
        if found.keypoints is None:
            raise RequestError("image", "No person was found in the character picture to fit the pose to; use a "
                                        "picture with the whole figure in view, or leave the pose as it is.")
        points, confidence = skeleton.openpose_points(found.keypoints, found.scores)
        ratios = retarget.bone_ratios((points, confidence >= threshold), [pose for pose in poses if pose is not None],
                                      picture.height, height)
        poses = [(retarget.retarget(*pose, ratios), pose[1]) if pose is not None else None for pose in poses]
    return [Image.fromarray(skeleton.draw_openpose(height, width, *pose) if pose is not None
                            else np.zeros((height, width, 3), np.uint8)) for pose in poses]


def _mask_and_background(made: dict, frames, masks) -> None:
    made["mask"] = [Image.fromarray(mask).convert("RGB") for mask in masks]
    made["background"] = [Image.fromarray(np.where(mask[..., None] > 0, 0, np.asarray(frame.convert("RGB"))).astype(np.uint8))
                          for frame, mask in zip(frames, masks)]


def _detections(frames, record, device, settings, progress) -> list:
    from wan_studio.media.extract.people import CHUNK, Detector

    (folder,) = _resolve_all([record], settings)
    detector = Detector(folder, device, record.threshold)
    found = []
    for start in range(0, len(frames), CHUNK):
        found += detector.detect([frame.convert("RGB") for frame in frames[start:start + CHUNK]])
        if progress is not None:
            progress(min(start + CHUNK, len(frames)), len(frames))
    return found


def _clicked_masks(made: dict, frames, record, point, device, settings, field, name, progress) -> None:
    """Mask and background of the object clicked on the first frame, followed through the video."""
    from wan_studio.media.extract.people import box_masks, clicked_object, follow_object

    width, height = frames[0].size
    x, y = point
    if not (0 <= x < width and 0 <= y < height):
        raise RequestError("point", f"The point ({x}, {y}) is outside the {width}x{height} frame of {name}.")
    detections = _detections(frames, record, device, settings, progress)
    start = clicked_object(detections[0], point)
    if start is None:
        raise RequestError("point", f"Nothing was found at ({x}, {y}) in the first frame of {name}; click on a "
                                    "person, an animal or a thing that is in view there.")
    _mask_and_background(made, frames, box_masks((width, height), follow_object(detections, start)))


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
            progress: Callable[[int, int], None] | None = None, point: tuple[int, int] | None = None,
            character=None) -> list[Image.Image]:
    """The `kind` control video of `frames` (from the video called `name`), made by `annotator`."""
    wanted = annotator_for(kind, annotator.is_tiny, point).kind if kind in KINDS else None
    if wanted is not None and annotator.kind != wanted:
        raise RequestError("annotator", f"{annotator.name} makes {annotator.kind} controls, not {kind}.")
    return controls([kind], frames, annotator.is_tiny, device, settings, name=name, progress=progress,
                    annotators={kind: annotator}, point=point, character=character)[kind]
