"""Pose retargeting: the driving skeleton redrawn with the character's proportions, so a child's
picture is not driven by an adult's long legs (the option Wan-Animate's preprocessing offers).

Each bone (OpenPose limb) is scaled by how long it is on the character against the driving video's
first frame where it is seen, both measured in heights of their own picture; a left and right pair
takes the larger ratio, as upstream does, and a bone never seen on one side keeps its length. The
skeleton is then rebuilt from the neck outward, every bone at its driving angle with its new length;
the neck stays where it is in the driving video (upstream also moves the skeleton into the
character's picture: here the picture is fitted to the output size like the pose video).
"""

from __future__ import annotations

import numpy as np

from wan_studio.media.extract.skeleton import LIMBS

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
            moved[child] = moved[parent] + (points[child] - points[parent]) * ratios.get(frozenset((parent, child)), 1.0)
    return moved
