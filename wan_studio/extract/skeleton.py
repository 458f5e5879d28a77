"""Pose skeletons drawn the way Wan-Animate's and VACE's pose controls look: the OpenPose 18-point
body in its standard colours on black (limbs as ellipses at 60 % of their colour, joints as
full-colour dots, widths growing with the frame: max(min(H, W) // 200 - 1, 1) as in Wan-Animate's
preprocessing). Our keypoints are COCO's 17 (ViTPose in transformers has no whole-body model), so
the toes and hands that Wan-Animate's whole-body skeleton adds are not drawn.
"""

from __future__ import annotations

import math

import numpy as np

# OpenPose point i from COCO-17 points: the mean of the two (the neck is the shoulders' middle)
OPENPOSE_FROM_COCO = ((0, 0), (5, 6), (6, 6), (8, 8), (10, 10), (5, 5), (7, 7), (9, 9), (12, 12), (14, 14),
                      (16, 16), (11, 11), (13, 13), (15, 15), (2, 2), (1, 1), (4, 4), (3, 3))
# limbs between OpenPose points; limb k and point k share the k-th colour of the standard palette
LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
         (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
COLOURS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
           (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
           (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))


def openpose_points(keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO-17 (17, 2) points and scores -> OpenPose-18 points and scores."""
    pairs = np.asarray(OPENPOSE_FROM_COCO)
    points = (keypoints[pairs[:, 0]] + keypoints[pairs[:, 1]]) / 2
    confidence = np.minimum(scores[pairs[:, 0]], scores[pairs[:, 1]])
    return points, confidence


def stroke_width(height: int, width: int) -> int:
    return max(min(height, width) // 200 - 1, 1)


def draw(height: int, width: int, keypoints: np.ndarray | None, scores: np.ndarray | None,
         threshold: float) -> np.ndarray:
    """One skeleton frame (H, W, 3) uint8 from COCO-17 keypoints; a frame without a person is black."""
    if keypoints is None:
        return np.zeros((height, width, 3), np.uint8)
    points, confidence = openpose_points(np.asarray(keypoints, float), np.asarray(scores, float))
    return draw_openpose(height, width, points, confidence >= threshold)


def draw_openpose(height: int, width: int, points: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """One skeleton frame from OpenPose-18 points and which of them are seen."""
    import cv2

    canvas = np.zeros((height, width, 3), np.uint8)
    size = stroke_width(height, width)
    for k, (a, b) in enumerate(LIMBS):
        if not (seen[a] and seen[b]):
            continue
        (xa, ya), (xb, yb) = points[a], points[b]
        length = math.hypot(xa - xb, ya - yb)
        angle = math.degrees(math.atan2(ya - yb, xa - xb))
        centre = (int(round((xa + xb) / 2)), int(round((ya + yb) / 2)))
        polygon = cv2.ellipse2Poly(centre, (int(round(length / 2)), size), int(round(angle)), 0, 360, 1)
        cv2.fillConvexPoly(canvas, polygon, tuple(int(c * 0.6) for c in COLOURS[k]))
    for i, (x, y) in enumerate(points):
        if seen[i]:
            cv2.circle(canvas, (int(round(x)), int(round(y))), size, COLOURS[i], thickness=-1)
    return canvas
