"""What changed between two screen frames: pure functions over numpy images.

A frame is compared with the last one kept for its monitor on a small grayscale copy
(one cell per 8×8 pixels): a cell "changed" when its mean brightness moved by more than a
few levels, so video noise and anti-aliasing flicker do not count. A frame is skipped
when less than 1% of its cells changed (MIRIX keeps a frame below 0.99 similarity), and
OCR reads only the boxes around the changed cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CELL = 8
"""Pixels per side of one cell of the small grayscale copy."""
LEVELS = 6
"""Brightness change (of 255) above which a cell counts as changed."""
MARGIN = 2
"""Cells added around a changed region, so a word cut by the region's edge is read whole."""


@dataclass(frozen=True)
class Box:
    """A rectangle in frame pixels: left, top, right, bottom (right and bottom exclusive)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)

    def overlaps(self, other: Box) -> bool:
        return (self.left < other.right and other.left < self.right
                and self.top < other.bottom and other.top < self.bottom)


def small_gray(rgb: np.ndarray) -> np.ndarray:
    """The frame as one mean brightness per cell (float32), edges beyond a whole cell cut."""
    height, width = (rgb.shape[0] // CELL) * CELL, (rgb.shape[1] // CELL) * CELL
    gray = rgb[:height, :width].astype(np.float32) @ np.array([0.299, 0.587, 0.114],
                                                                dtype=np.float32)
    return gray.reshape(height // CELL, CELL, width // CELL, CELL).mean(axis=(1, 3))


def changed_cells(before: np.ndarray | None, after: np.ndarray) -> np.ndarray:
    """Which cells changed (a boolean grid); every cell when there is nothing before or the
    screen changed size."""
    if before is None or before.shape != after.shape:
        return np.ones(after.shape, dtype=bool)
    return np.abs(after - before) > LEVELS


def difference(before: np.ndarray | None, after: np.ndarray) -> float:
    """The share of cells that changed, from 0.0 (same picture) to 1.0."""
    return float(changed_cells(before, after).mean())


def changed_boxes(before: np.ndarray | None, after: np.ndarray, width: int, height: int,
                  max_boxes: int = 12) -> list[Box]:
    """The regions of a frame that changed, in frame pixels, padded by `MARGIN` cells.

    Neighbouring changes join into one box (a paragraph, not each letter); past
    `max_boxes` regions the whole frame is one box, since many small OCR calls cost more
    than one large one.
    """
    from scipy import ndimage

    mask = changed_cells(before, after)
    if not mask.any():
        return []
    grown = ndimage.binary_dilation(mask, iterations=MARGIN)
    labels, count = ndimage.label(grown)
    if count > max_boxes:
        return [Box(0, 0, width, height)]
    boxes = []
    for rows, cols in ndimage.find_objects(labels):
        boxes.append(Box(cols.start * CELL, rows.start * CELL,
                         width if cols.stop >= mask.shape[1] else cols.stop * CELL,
                         height if rows.stop >= mask.shape[0] else rows.stop * CELL))
    if sum(b.area for b in boxes) > 0.6 * width * height:
        return [Box(0, 0, width, height)]
    return sorted(boxes, key=lambda b: (b.top, b.left))
