"""Controls made from a plain video by annotator models (transformers), for VACE and Animate.

- depth: Depth Anything V2, drawn near = bright, one scale for the whole clip (depth.py);
- pose: the main person's skeleton, OpenPose colours on black (people.py finds and follows the
  person with RT-DETR and reads 17 keypoints with ViTPose; skeleton.py draws);
- face: Wan-Animate's face crops of the same person, steadied over time (people.py);
- layout: VACE's layout control, every object's box outline followed through the video (layout.py);
- mask and background: the outline of an object followed through the video by SAM2 (outline.py),
  in white on black, and the video with it blacked out. The object is the one clicked (or boxed) on
  the first frame, or else the main person, found by the detector. The outline is grown a little;
  Animate's replace mode takes the box around it instead (`mask_shape="box"`), as it was trained.

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

from wan_studio.errors import ModelNotAvailable, RequestError

KINDS = ("depth", "pose", "face", "mask", "background", "layout")
# face crops come from the pose keypoints; masks from the segmenter; layout from the detector
MODEL_KIND = {"depth": "depth", "pose": "pose", "face": "pose", "mask": "segmenter", "background": "segmenter",
              "layout": "detector"}
MASK_SHAPES = ("outline", "box")


def annotator_for(kind: str, tiny: bool):
    """The annotator that makes `kind` controls (the Tiny one for the Tiny checkpoints)."""
    from wan_studio import catalog

    return catalog.annotator_for(MODEL_KIND[kind], tiny)


def annotators_used(kinds, tiny: bool, prompted: bool = False) -> list:
    """Every model that making `kinds` loads: each kind's annotator and the detector it reads (pose
    for the person's box; a mask for the main person, unless a click or a box picks the object)."""
    from wan_studio import catalog

    used = {}
    for kind in kinds:
        record = annotator_for(kind, tiny)
        used[record.id] = record
        if record.detector and not (record.kind == "segmenter" and prompted):
            used[record.detector] = catalog.annotator(record.detector)
    return list(used.values())


def controls(kinds, frames: list[Image.Image], tiny: bool, device="cpu", settings=None, field: str = "video",
             name: str = "the video", progress: Callable[[int, int], None] | None = None,
             annotators: dict | None = None, point: tuple[int, int] | None = None,
             box: tuple[int, int, int, int] | None = None, mask_shape: str = "outline",
             character=None, output_size: tuple[int, int] | None = None) -> dict[str, list[Image.Image]]:
    """kind -> control frames for each of `kinds`, made from `frames` (pose and face share one pass).
    `annotators` (kind -> record) overrides the default real / Tiny annotator of a kind. With
    `point` (x, y on the first frame) or `box` (x0, y0, x1, y1 there), mask and background are of
    that object, followed through the video, instead of the main person. With `character` (a
    picture or its path), the pose is fitted to that character's proportions and moved to where
    it stands in the `output_size` frame the run makes (retarget.py)."""
    from wan_studio import catalog, models

    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise RequestError("kind", f"No annotator makes {unknown[0]!r} controls; "
                                   f"these can be made: {', '.join(KINDS)}.")
    if not frames:
        raise RequestError(field, f"{name} has no frames to make a control from.")
    if mask_shape not in MASK_SHAPES:
        raise RequestError("mask_shape", f"A mask is an 'outline' or a 'box'; got {mask_shape!r}.")
    masks_wanted = "mask" in kinds or "background" in kinds
    if masks_wanted:
        _check_prompt(frames[0].size, point, box, name)
    chosen = {kind: (annotators or {}).get(kind) or annotator_for(kind, tiny) for kind in kinds}
    made, people = {}, None
    if "depth" in kinds:
        from wan_studio.extract.depth import depth_frames, depth_maps

        made["depth"] = depth_frames(depth_maps(frames, models.resolve(chosen["depth"], settings), device, progress))
    people_kinds = [kind for kind in kinds if MODEL_KIND[kind] == "pose"]
    if people_kinds:
        from wan_studio.extract.people import People, face_crops

        record = chosen[people_kinds[0]]
        detector = catalog.annotator(record.detector)
        detector_folder, pose_folder = _resolve_all([detector, record], settings)
        finder = People(detector_folder, pose_folder, device, detector.threshold)
        people = finder.follow_main_person(frames, progress)
        if all(person.box is None for person in people):
            raise RequestError(field, f"No person was found in {name}: pose and face controls follow one person; "
                                      "use a video where someone is clearly in view.")
        if "pose" in kinds:
            made["pose"] = _skeletons(frames, people, record.threshold, finder, character, output_size)
        if "face" in kinds:
            made["face"] = face_crops(frames, people, record.threshold)
        del finder  # its models leave the accelerator before the next annotator loads
    if masks_wanted:
        record = chosen.get("mask") or chosen["background"]
        boxes = [person.box for person in people] if people is not None else None
        _masks(made, frames, record, point, box, boxes, mask_shape, device, settings, field, name, progress)
    if "layout" in kinds:
        from wan_studio.extract import layout

        detections = _detections(frames, chosen["layout"], device, settings, progress)
        tracks = layout.tracks_of(detections)
        if not tracks:
            raise RequestError(field, f"No object was found in {name} for a layout control; use a video where things "
                                      "stay in view.")
        width, height = frames[0].size
        made["layout"] = [Image.fromarray(layout.draw(height, width, i, tracks)) for i in range(len(frames))]
    return {kind: made[kind] for kind in kinds}


def _skeletons(frames, people, threshold: float, finder, character, output_size) -> list[Image.Image]:
    """The pose video: each frame's skeleton; with a character picture, fitted to its proportions and
    moved to where it stands in the `output_size` frame (default: the video's own size)."""
    from wan_studio import media
    from wan_studio.extract import retarget, skeleton

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
        mine = (points, confidence >= threshold)
        ratios = retarget.bone_ratios(mine, [pose for pose in poses if pose is not None], picture.height, height)
        poses = [(retarget.retarget(*pose, ratios), pose[1]) if pose is not None else None for pose in poses]
        # then moved to where the character stands in the output frame
        frame = output_size or (width, height)
        first = next(pose for pose in poses if pose is not None)
        scale, shift = retarget.placement((retarget.to_frame(mine[0], picture.size, frame), mine[1]),
                                          (retarget.to_frame(first[0], (width, height), frame), first[1]))
        poses = [(retarget.from_frame(retarget.to_frame(pose[0], (width, height), frame) * scale + shift,
                                      (width, height), frame), pose[1]) if pose is not None else None for pose in poses]
    return [Image.fromarray(skeleton.draw_openpose(height, width, *pose) if pose is not None
                            else np.zeros((height, width, 3), np.uint8)) for pose in poses]


def _check_prompt(size: tuple[int, int], point, box, name: str) -> None:
    width, height = size
    if point is not None and box is not None:
        raise RequestError("box", "Give a point or a box on the object, not both.")
    if point is not None:
        x, y = point
        if not (0 <= x < width and 0 <= y < height):
            raise RequestError("point", f"The point ({x}, {y}) is outside the {width}x{height} frame of {name}.")
    if box is not None:
        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise RequestError("box", f"The box ({x0}, {y0}, {x1}, {y1}) is not a box inside the {width}x{height} "
                                      f"frame of {name}: give x0,y0,x1,y1 with x0 < x1 and y0 < y1.")


def _masks(made: dict, frames, record, point, box, person_boxes, shape, device, settings, field, name,
           progress) -> None:
    """Mask and background of the clicked or boxed object, or of the main person, as SAM2 follows it."""
    from wan_studio import catalog
    from wan_studio.extract.outline import CHUNK, Segmenter, shaped

    if point is not None or box is not None:
        (folder,) = _resolve_all([record], settings)
        prompts = {0: ("point", point) if point is not None else ("box", box)}
    else:
        detector = catalog.annotator(record.detector)
        if person_boxes is None:
            detector_folder, folder = _resolve_all([detector, record], settings)
            person_boxes = _main_person_boxes(frames, detector_folder, detector.threshold, device, progress)
        else:
            (folder,) = _resolve_all([record], settings)
        seen = [i for i, found in enumerate(person_boxes) if found is not None]
        if not seen:
            raise RequestError(field, f"No person was found in {name} to make a mask of; click on the object to "
                                      "follow instead, or use a video where someone is clearly in view.")
        # the followed person's box at their first frame and at every chunk after it: SAM2 starts
        # each chunk from the person the detector follows, so a long video cannot drift to another
        prompts = {i: ("box", person_boxes[i]) for i in range(seen[0], len(frames), CHUNK)}
    outlines = Segmenter(folder, device).outlines(frames, prompts, progress)
    if (point is not None or box is not None) and not outlines[0].any():
        where = f"at ({point[0]}, {point[1]})" if point is not None else "in the box ({}, {}, {}, {})".format(*box)
        raise RequestError("point" if point is not None else "box",
                           f"Nothing was found {where} in the first frame of {name}; click on a person, an "
                           "animal or a thing that is in view there.")
    masks = shaped(outlines, shape)
    made["mask"] = [Image.fromarray(mask).convert("RGB") for mask in masks]
    made["background"] = [
        Image.fromarray(np.where(mask[..., None] > 0, 0, np.asarray(frame.convert("RGB"))).astype(np.uint8))
        for frame, mask in zip(frames, masks)
    ]


def _main_person_boxes(frames, folder, threshold: float, device, progress) -> list:
    """The main person's box in every frame (None before they are found), by the detector alone."""
    from wan_studio.extract.people import CHUNK, Detector, follow

    detector = Detector(folder, device, threshold)
    boxes, box = [], None
    for start in range(0, len(frames), CHUNK):
        for found in detector.people([frame.convert("RGB") for frame in frames[start:start + CHUNK]]):
            box = follow(box, found)
            boxes.append(box)
        if progress is not None:
            progress(min(start + CHUNK, len(frames)), len(frames))
    return boxes


def _detections(frames, record, device, settings, progress) -> list:
    from wan_studio.extract.people import CHUNK, Detector

    (folder,) = _resolve_all([record], settings)
    detector = Detector(folder, device, record.threshold)
    found = []
    for start in range(0, len(frames), CHUNK):
        found += detector.detect([frame.convert("RGB") for frame in frames[start:start + CHUNK]])
        if progress is not None:
            progress(min(start + CHUNK, len(frames)), len(frames))
    return found


def _resolve_all(records, settings) -> list:
    """Every record's folder; when some are missing, one message naming each with its download command."""
    from wan_studio import models

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
            progress: Callable[[int, int], None] | None = None, **options) -> list[Image.Image]:
    """The `kind` control video of `frames` (from the video called `name`), made by `annotator`;
    `options` as controls() takes them (point, box, mask_shape, character)."""
    wanted = MODEL_KIND.get(kind)
    if wanted is not None and annotator.kind != wanted:
        raise RequestError("annotator", f"{annotator.name} makes {annotator.kind} controls, not {kind}.")
    return controls([kind], frames, annotator.is_tiny, device, settings, name=name, progress=progress,
                    annotators={kind: annotator}, **options)[kind]
