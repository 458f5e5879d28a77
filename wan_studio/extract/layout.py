"""VACE's layout control: each object of the video as the outline of its box, in its own colour, on
white (the look of VACE's layout annotators: black or per-label outlines, 2 px, on a white frame).

Objects are what the detector finds, followed from frame to frame: a detection joins the track of
the same label, seen in the last `GAP` frames, whose last box it overlaps most (at least
`MIN_OVERLAP`), else it starts a new one.
Tracks seen in under a quarter of the frames (flicker, passers-by) and beyond the `MAX_OBJECTS`
steadiest are left out; a track's box is kept through the frames where the detector missed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from wan_studio.extract.people import overlap

MIN_OVERLAP = 0.3
GAP = 3  # frames a track may go unseen (missed detections) and still be continued
MAX_OBJECTS = 8
MIN_SHARE = 0.25  # of the frames a track must be seen in
# distinct, dark enough to read on white (label id modulo the palette picks the colour)
PALETTE = ((0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (128, 128, 0), (0, 128, 128), (170, 110, 40), (128, 0, 0))


@dataclass
class Track:
    label: int
    boxes: dict[int, tuple] = field(default_factory=dict)  # frame -> box

    def last(self) -> tuple:
        return self.boxes[max(self.boxes)]


def tracks_of(detections: list[list[tuple[list, int]]]) -> list[Track]:
    """Objects followed through the frames (see the module's note), steadiest first."""
    tracks: list[Track] = []
    for frame, found in enumerate(detections):
        taken = set()
        for box, label in sorted(found, key=lambda item: -(item[0][2] - item[0][0]) * (item[0][3] - item[0][1])):
            candidates = [t for t in tracks if t.label == label and id(t) not in taken and frame - max(t.boxes) <= GAP]
            best = max(candidates, key=lambda t: overlap(t.last(), box), default=None)
            if best is None or overlap(best.last(), box) < MIN_OVERLAP:
                best = Track(label)
                tracks.append(best)
            best.boxes[frame] = tuple(box)
            taken.add(id(best))
    kept = [t for t in tracks if len(t.boxes) >= MIN_SHARE * len(detections)]
    return sorted(kept, key=lambda t: -len(t.boxes))[:MAX_OBJECTS]


def draw(height: int, width: int, frame: int, tracks: list[Track]) -> np.ndarray:
    import cv2

    canvas = np.full((height, width, 3), 255, np.uint8)
    for track in tracks:
        seen = [f for f in track.boxes if f <= frame] or [min(track.boxes)]
        x0, y0, x1, y1 = (int(round(v)) for v in track.boxes[max(seen)])
        cv2.rectangle(canvas, (x0, y0), (x1, y1), PALETTE[track.label % len(PALETTE)], 2)
    return canvas
