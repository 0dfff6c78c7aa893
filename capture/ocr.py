"""Reading text off the screen: RapidOCR (its models ship in the wheel), tesseract when
RapidOCR is missing. Both return lines with their boxes in frame pixels."""

from __future__ import annotations

import csv
import io
import logging
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from app.errors import CaptureUnavailable
from capture.frames import Box

log = logging.getLogger(__name__)
MIN_SCORE = 0.5


@dataclass(frozen=True)
class Line:
    """A line of text read off the screen, and where it was."""

    text: str
    box: Box
    score: float = 1.0


class OCR(Protocol):
    name: str

    def read(self, rgb: np.ndarray) -> list[Line]:
        """The lines of text in an image (RGB, height × width × 3, uint8)."""
        ...


class RapidOCREngine:
    """PP-OCR detection and recognition in onnxruntime. Screens are upright, so the angle
    classifier is skipped; text is found on a copy at most `detect_side` pixels wide (screen
    text is large and sharp) and read at full size."""

    name = "rapidocr"

    def __init__(self, threads: int = 1, detect_side: int = 960) -> None:
        from rapidocr import RapidOCR

        logging.getLogger("RapidOCR").setLevel(logging.ERROR)
        self._engine = RapidOCR(params={
            "Global.log_level": "error", "Global.use_cls": False,
            "Det.limit_side_len": detect_side, "Det.limit_type": "max",
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        })

    def read(self, rgb: np.ndarray) -> list[Line]:
        result = self._engine(np.ascontiguousarray(rgb[:, :, ::-1]))  # it wants BGR
        if result.boxes is None or result.txts is None:
            return []
        lines = []
        for corners, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
            xs, ys = [p[0] for p in corners], [p[1] for p in corners]
            if text.strip() and score >= MIN_SCORE:
                lines.append(Line(text.strip(), Box(int(min(xs)), int(min(ys)),
                                                    int(max(xs)) + 1, int(max(ys)) + 1),
                                  float(score)))
        return lines


class TesseractEngine:
    """The `tesseract` program (Debian `tesseract-ocr`), words grouped into its lines."""

    name = "tesseract"

    def __init__(self, program: str = "tesseract") -> None:
        found = shutil.which(program)
        if not found:
            raise CaptureUnavailable(f"{program} is not installed: run `make run`")
        self.program = found

    def read(self, rgb: np.ndarray) -> list[Line]:
        from PIL import Image

        png = io.BytesIO()
        Image.fromarray(rgb).save(png, format="PNG")
        done = subprocess.run([self.program, "stdin", "stdout", "--psm", "11", "tsv"],
                              input=png.getvalue(), capture_output=True, check=False,
                              timeout=60)
        if done.returncode != 0:
            raise CaptureUnavailable(f"tesseract failed: {done.stderr.decode(errors='replace')}")
        words: dict[tuple[str, str, str], list[dict[str, str]]] = {}
        rows = csv.DictReader(io.StringIO(done.stdout.decode()), delimiter="\t",
                              quoting=csv.QUOTE_NONE)
        for row in rows:
            if row.get("level") == "5" and row["text"].strip() and float(row["conf"]) >= 0:
                words.setdefault((row["block_num"], row["par_num"], row["line_num"]),
                                 []).append(row)
        return [_tesseract_line(group) for group in words.values()]


def _tesseract_line(words: Sequence[dict[str, str]]) -> Line:
    left = min(int(w["left"]) for w in words)
    top = min(int(w["top"]) for w in words)
    right = max(int(w["left"]) + int(w["width"]) for w in words)
    bottom = max(int(w["top"]) + int(w["height"]) for w in words)
    score = sum(float(w["conf"]) for w in words) / len(words) / 100
    return Line(" ".join(w["text"] for w in words), Box(left, top, right, bottom), score)


def default_ocr() -> OCR:
    """RapidOCR, else tesseract; neither is a clear error naming the fix."""
    try:
        return RapidOCREngine()
    except ImportError:
        log.warning("RapidOCR is not installed; reading the screen with tesseract")
    try:
        return TesseractEngine()
    except CaptureUnavailable as missing:
        raise CaptureUnavailable("no OCR engine: neither RapidOCR nor tesseract is "
                                 "installed; run `make run`") from missing


def read_regions(ocr: OCR, rgb: np.ndarray, boxes: Sequence[Box]) -> list[Line]:
    """OCR only the given regions of a frame; the lines come back in frame pixels."""
    lines = []
    for box in boxes:
        crop = rgb[box.top:box.bottom, box.left:box.right]
        if crop.shape[0] < 8 or crop.shape[1] < 8:
            continue
        for line in ocr.read(crop):
            b = line.box
            lines.append(Line(line.text, Box(b.left + box.left, b.top + box.top,
                                             b.right + box.left, b.bottom + box.top),
                              line.score))
    return sorted(lines, key=lambda line: (line.box.top, line.box.left))
