"""The main person of a video: found in every frame by a person detector (RT-DETR), followed from
frame to frame, and their 17 COCO keypoints (ViTPose); then the face crops Wan-Animate takes.

Following: the largest person in the first frame where anyone is found; after that, in each frame,
the detection that overlaps the previous frame's box most (the largest when none overlaps). A
frame where the detector finds nobody keeps the last box: a missed detection, not a person leaving.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

CHUNK = 8
FACE_SIZE = 512  # Wan-Animate's face encoder reads 512x512 crops
FACE_SMOOTHING = 7  # frames in the moving average of the face box (crops that jitter read as motion)


@dataclass
class Person:
    box: tuple[float, float, float, float] | None  # x0, y0, x1, y1 in pixels; None: nobody yet
    keypoints: np.ndarray | None = None  # (17, 2) pixels
    scores: np.ndarray | None = None  # (17,)


def overlap(a, b) -> float:
    """Intersection over union of two x0, y0, x1, y1 boxes."""
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _area(box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def follow(previous, boxes: list) -> tuple | None:
    """The main person's box in this frame, given the last one (None before anyone was found)."""
    if not boxes:
        return previous
    if previous is not None:
        best = max(boxes, key=lambda box: overlap(previous, box))
        if overlap(previous, best) > 0:
            return tuple(best)
    return tuple(max(boxes, key=_area))


class Detector:
    """An object detector (RT-DETR): every object in each frame, as (x0, y0, x1, y1) box and label."""

    def __init__(self, folder, device, threshold: float):
        import torch
        from transformers import RTDetrForObjectDetection, RTDetrImageProcessorPil

        self.torch, self.device, self.threshold = torch, device, threshold
        self.processor = RTDetrImageProcessorPil.from_pretrained(folder)
        self.model = RTDetrForObjectDetection.from_pretrained(folder).to(device).eval()
        self.person = self.model.config.label2id.get("person", 0)

    def detect(self, frames: list[Image.Image]) -> list[list[tuple[list, int]]]:
        inputs = self.processor(images=frames, return_tensors="pt").to(self.device)
        with self.torch.no_grad():
            outputs = self.model(**inputs)
        sizes = [(frame.height, frame.width) for frame in frames]
        found = self.processor.post_process_object_detection(outputs, threshold=self.threshold, target_sizes=sizes)
        return [[(box.tolist(), int(label)) for box, label in zip(f["boxes"], f["labels"])] for f in found]

    def people(self, frames: list[Image.Image]) -> list[list]:
        """The boxes of the people in each frame."""
        return [[box for box, label in found if label == self.person] for found in self.detect(frames)]


class People:
    """The detector and pose models of a pose annotator, loaded once per extraction."""

    def __init__(self, detector_folder, pose_folder, device, detector_threshold: float):
        from transformers import VitPoseForPoseEstimation, VitPoseImageProcessorPil

        self.detector = Detector(detector_folder, device, detector_threshold)
        self.torch, self.device = self.detector.torch, device
        self.pose_processor = VitPoseImageProcessorPil.from_pretrained(pose_folder)
        self.pose = VitPoseForPoseEstimation.from_pretrained(pose_folder).to(device).eval()

    def _keypoints(self, frames: list[Image.Image], boxes: list[tuple]) -> list[tuple[np.ndarray, np.ndarray]]:
        # ViTPose takes boxes as x, y, width, height
        coco = [[[b[0], b[1], b[2] - b[0], b[3] - b[1]]] for b in boxes]
        inputs = self.pose_processor(images=frames, boxes=coco, return_tensors="pt").to(self.device)
        with self.torch.no_grad():
            outputs = self.pose(**inputs)
        found = self.pose_processor.post_process_pose_estimation(outputs, boxes=coco)
        return [(f[0]["keypoints"].numpy(), f[0]["scores"].numpy()) for f in found]

    def follow_main_person(self, frames: list[Image.Image],
                           progress: Callable[[int, int], None] | None = None) -> list[Person]:
        people, box = [], None
        for start in range(0, len(frames), CHUNK):
            chunk = [frame.convert("RGB") for frame in frames[start:start + CHUNK]]
            boxes = []
            for found in self.detector.people(chunk):
                box = follow(box, found)
                boxes.append(box)
            seen = [i for i, b in enumerate(boxes) if b is not None]
            points = self._keypoints([chunk[i] for i in seen], [boxes[i] for i in seen]) if seen else []
            by_frame = dict(zip(seen, points))
            for i, b in enumerate(boxes):
                keypoints, scores = by_frame.get(i, (None, None))
                people.append(Person(b, keypoints, scores))
            if progress is not None:
                progress(min(start + CHUNK, len(frames)), len(frames))
        return people


# -- faces --------------------------------------------------------------------------------------
NOSE, EYES, EARS = 0, (1, 2), (3, 4)


def face_square(person: Person, threshold: float) -> tuple[float, float, float] | None:
    """Centre x, centre y and side of a square around the face, from the face keypoints (the top
    of the person's box when none is seen): wide enough for the hair and the chin."""
    if person.keypoints is None:
        return None
    points, seen = person.keypoints, person.scores >= threshold
    face = [i for i in (NOSE, *EYES, *EARS) if seen[i]]
    if all(seen[i] for i in EARS):
        width = float(np.linalg.norm(points[EARS[0]] - points[EARS[1]]))
    elif all(seen[i] for i in EYES):
        width = 2.2 * float(np.linalg.norm(points[EYES[0]] - points[EYES[1]]))
    else:
        width = 0.0
    x0, y0, x1, y1 = person.box
    if not face or width <= 1:
        side = 0.3 * (y1 - y0)  # a head is about a seventh of a standing person; take some room
        return (x0 + x1) / 2, y0 + side / 2, side
    centre = points[face].mean(axis=0)
    side = 1.9 * width
    return float(centre[0]), float(centre[1]) + 0.1 * side, side  # eyes sit above the middle of a face


def smoothed(squares: list) -> list:
    """A centred moving average of the squares (frames without one take the nearest that has one)."""
    known = [i for i, s in enumerate(squares) if s is not None]
    if not known:
        return squares
    filled = [squares[min(known, key=lambda k: abs(k - i))] for i in range(len(squares))]
    values = np.asarray(filled, float)
    half = FACE_SMOOTHING // 2
    return [tuple(values[max(0, i - half): i + half + 1].mean(axis=0)) for i in range(len(values))]


def face_crops(frames: list[Image.Image], people: list[Person], threshold: float) -> list[Image.Image]:
    """FACE_SIZE squares around the main person's face in every frame (black outside the frame)."""
    squares = smoothed([face_square(p, threshold) for p in people])
    crops = []
    for frame, square in zip(frames, squares):
        if square is None:  # nobody in the whole video: the caller refuses before this
            crops.append(Image.new("RGB", (FACE_SIZE, FACE_SIZE)))
            continue
        x, y, side = square
        box = tuple(int(round(v)) for v in (x - side / 2, y - side / 2, x + side / 2, y + side / 2))
        crops.append(frame.convert("RGB").crop(box).resize((FACE_SIZE, FACE_SIZE), Image.Resampling.BICUBIC))
    return crops
