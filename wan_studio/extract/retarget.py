"""Pose retargeting: the driving skeleton redrawn with the character's proportions, so a child's
picture is not driven by an adult's long legs (the option Wan-Animate's preprocessing offers).

Each bone (OpenPose limb) is scaled by how long it is on the character against the driving video's
first frame where it is seen, both measured in heights of their own picture; a left and right pair
takes the larger ratio, as upstream does, and a bone never seen on one side keeps its length. The
skeleton is then rebuilt from the neck outward, every bone at its driving angle with its new length.
Last, as upstream does, the whole motion is moved to where the character stands: in the output
frame (both the picture and the pose video are centre-cropped to it), the first posed frame is
scaled to the character's size and its neck put on the character's neck; every frame moves alike.
"""

from __future__ import annotations

import numpy as np

from wan_studio.extract.skeleton import LIMBS
from wan_studio.media import cover_transform

NECK = 1
PAIRS = (((2, 3), (5, 6)), ((3, 4), (6, 7)), ((8, 9), (11, 12)), ((9, 10), (12, 13)), ((1, 2), (1, 5)),
         ((1, 8), (1, 11)), ((0, 14), (0, 15)), ((14, 16), (15, 17)))


def outward_bones() -> list[tuple[int, int]]:
    """The limbs as (parent, child), walking out from the neck."""
    bones, reached, pending = [], {NECK}, list(LIMBS)
    while pending:
        for a, b in list(pending):
            if a in reached or b in reached:
                parent, child = (a, b) if a in reached else (b, a)
                bones.append((parent, child))
                reached.add(child)
                pending.remove((a, b))
    return bones


def _length(points, seen, bone, height) -> float | None:
    a, b = bone
    if not (seen[a] and seen[b]):
        return None
    return float(np.linalg.norm(points[a] - points[b])) / height


def bone_ratios(character: tuple, driving: list[tuple], character_height: float, driving_height: float) -> dict:
    """(parent, child) -> character length / driving length. `character` and each driving frame
    are (points (18, 2), seen (18,) bools) in OpenPose order."""
    ratios = {}
    for bone in outward_bones():
        mine = _length(*character, bone, character_height)
        theirs = next((length for frame in driving if (length := _length(*frame, bone, driving_height))), None)
        if mine and theirs:
            ratios[frozenset(bone)] = mine / theirs
    for left, right in PAIRS:  # a pair takes the larger ratio; a side never seen takes the other's
        found = [ratios[frozenset(b)] for b in (left, right) if frozenset(b) in ratios]
        if found:
            ratios[frozenset(left)] = ratios[frozenset(right)] = max(found)
    return ratios


def retarget(points: np.ndarray, seen: np.ndarray, ratios: dict) -> np.ndarray:
    """One frame's OpenPose points rebuilt from the neck outward with the bones scaled."""
    if not seen[NECK]:
        return points
    moved = points.astype(float).copy()
    for parent, child in outward_bones():
        if seen[parent] and seen[child]:
            ratio = ratios.get(frozenset((parent, child)), 1.0)
            moved[child] = moved[parent] + (points[child] - points[parent]) * ratio
    return moved


def to_frame(points: np.ndarray, size: tuple[int, int], frame: tuple[int, int]) -> np.ndarray:
    """Points of a `size` picture where they land once it is centre-cropped to `frame` (w, h)."""
    scale, left, top = cover_transform(size, *frame)
    return (np.asarray(points, float) - (left, top)) * scale


def from_frame(points: np.ndarray, size: tuple[int, int], frame: tuple[int, int]) -> np.ndarray:
    scale, left, top = cover_transform(size, *frame)
    return np.asarray(points, float) / scale + (left, top)


def placement(character: tuple, first: tuple) -> tuple[float, np.ndarray]:
    """(scale, shift) that puts the `first` skeleton on the `character`'s, both (points, seen) in the
    same frame: scaled by their summed bone lengths (bones seen on both), necks on each other."""
    (mine, mine_seen), (theirs, theirs_seen) = character, first
    if not (mine_seen[NECK] and theirs_seen[NECK]):
        return 1.0, np.zeros(2)
    both = [bone for bone in LIMBS if all(mine_seen[i] and theirs_seen[i] for i in bone)]
    mine_length = sum(float(np.linalg.norm(mine[a] - mine[b])) for a, b in both)
    theirs_length = sum(float(np.linalg.norm(theirs[a] - theirs[b])) for a, b in both)
    scale = mine_length / theirs_length if mine_length > 0 and theirs_length > 0 else 1.0
    return scale, mine[NECK] - theirs[NECK] * scale
