"""The screenshot store: kept frames as WebP files under the data folder, with thumbnails,
and their rows in SQLite.

Most kept frames differ from the one before in a few lines, so a frame is stored as a
patch (the changed boxes only, the rest black, which WebP makes almost free) on top of a
key frame stored whole; a key frame starts every `keyframe_every` frames, or when most
of the screen changed. While one window stays in front, a picture is kept at most every
`picture_seconds` (the capture's rule); the frames between are "text" frames, whose text
is kept but not their picture, and the next picture's patch covers all they changed.
Deleting a frame keeps the frames after it whole: the next picture takes over what the
deleted one carried (or becomes a key frame). Pictures are sealed (`memory.sealing`): a copy
of the data folder shows none, and while the memory is locked none can be opened; a frame
deleted then cannot hand its pixels over, so the pictures built on it keep their text only.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import InvalidInput, Locked
from app.files import replace_file
from capture.desktop import Window
from capture.frames import Box
from capture.ocr import Line
from memory.db import Database
from memory.events import content_id
from memory.sealing import Keys, is_sealed
from memory.stores import iso, parse_time

FRAMES = "frames"
"""The folder under the home where pictures live, a folder a day."""
THUMB_WIDTH = 240
PHOTO_BYTES_PER_PIXEL = 0.05
"""A lossless frame larger than this is mostly picture, not text: lossy is tried too."""
FULL_CHANGE = 0.5
"""Past this share of the screen changed, a frame is stored whole (a new key frame)."""


@dataclass(frozen=True)
class Frame:
    """A kept frame as stored: where its files are, what was read on it, what it became."""

    id: str
    monitor: int
    captured_at: datetime
    app: str
    title: str
    width: int
    height: int
    kind: str
    """"key" (a whole picture), "patch" (the boxes that changed since the picture before)
    or "text" (no picture of its own: `FrameStore.picture_of` finds the one shown)."""
    boxes: tuple[Box, ...]
    path: str
    """The picture's path; "" for a text frame."""
    thumb: str
    """The thumbnail's path; "" for a frame without one (one per window and minute)."""
    bytes: int
    lines: tuple[Line, ...]
    text: str
    event_id: str | None
    flushed: bool

    @classmethod
    def of(cls, row: sqlite3.Row) -> Frame:
        return cls(
            id=row["id"], monitor=row["monitor"], captured_at=parse_time(row["captured_at"]),
            app=row["app"], title=row["title"], width=row["width"], height=row["height"],
            kind=row["kind"], boxes=tuple(Box(*b) for b in json.loads(row["boxes"])),
            path=row["path"], thumb=row["thumb"], bytes=row["bytes"],
            lines=tuple(Line(text, Box(*box), score)
                        for text, box, score in json.loads(row["lines"])),
            text=row["text"], event_id=row["event_id"], flushed=bool(row["flushed"]),
        )

    @property
    def has_picture(self) -> bool:
        return self.kind != "text"


def encode(rgb: np.ndarray, quality: int) -> bytes:
    """A frame as WebP. Lossless first: screens are mostly flat colour and sharp text, which
    it keeps exact at a fifth of lossy quality-60's size (14 KB against 69 KB for a page
    of text at 1080p) in less time (lossless "quality" is effort: 100 at method 4 is both
    smaller and faster than 50 here). A frame that is mostly photo or video is stored
    lossy at `quality` instead, when that is smaller."""
    from PIL import Image

    image = Image.fromarray(rgb)
    exact = io.BytesIO()
    image.save(exact, format="WEBP", lossless=True, quality=100, method=4)
    if exact.tell() <= PHOTO_BYTES_PER_PIXEL * rgb.shape[0] * rgb.shape[1]:
        return exact.getvalue()
    lossy = io.BytesIO()
    image.save(lossy, format="WEBP", quality=quality, method=4)
    return min(exact.getvalue(), lossy.getvalue(), key=len)


def decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def thumbnail(rgb: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    image = Image.fromarray(rgb)
    image.thumbnail((THUMB_WIDTH, THUMB_WIDTH * rgb.shape[0] // max(1, rgb.shape[1])))
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=quality, method=4)
    return out.getvalue()


def patch_of(rgb: np.ndarray, boxes: tuple[Box, ...]) -> np.ndarray:
    """The picture with everything outside the boxes black."""
    out = np.zeros_like(rgb)
    for b in boxes:
        out[b.top:b.bottom, b.left:b.right] = rgb[b.top:b.bottom, b.left:b.right]
    return out


class FrameStore:
    """Frames on disk and in SQLite. All writes go through the caller's transaction."""

    def __init__(self, db: Database, home: Path, keys: Keys, quality: int = 60,
                 keyframe_every: int = 120) -> None:
        self.db, self.home, self.keys = db, home, keys
        self.quality, self.keyframe_every = quality, keyframe_every

    # -- writing ----------------------------------------------------------------------------
    def save(self, monitor: int, at: datetime, window: Window | None, rgb: np.ndarray,
             changed: list[Box] | None, lines: list[Line], text: str,
             with_picture: bool = True, with_thumbnail: bool = True) -> Frame:
        """Store a kept frame: its text, and if asked its picture (already blacked out where
        secrets were), whole or as the patch of the boxes that changed since the last
        picture of its monitor, and a thumbnail. Without a picture it is a text frame."""
        height, width = rgb.shape[:2]
        frame_id = self.frame_id(monitor, at)
        folder = Path(FRAMES) / f"{at:%Y-%m-%d}"
        boxes = tuple(dict.fromkeys(changed or ()))
        path = thumb = None
        size = 0
        if not with_picture:
            kind, boxes = "text", ()
        elif self._patchable(monitor, width, height, boxes):
            kind, picture = "patch", patch_of(rgb, boxes)
        else:
            kind, boxes, picture = "key", (), rgb
        if with_picture:
            path = folder / f"{frame_id}.webp"
            size = self._write(path, encode(picture, self.quality))
            if with_thumbnail:
                thumb = folder / f"{frame_id}.thumb.webp"
                size += self._write(thumb, thumbnail(rgb, self.quality))
        self.db.execute(
            "INSERT OR REPLACE INTO frames (id, monitor, captured_at, app, title, width, "
            "height, kind, boxes, path, thumb, bytes, lines, text, event_id, flushed) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0)",
            (frame_id, monitor, iso(at), window.app if window else "",
             window.title if window else "", width, height, kind, _boxes_json(boxes),
             str(path or ""), str(thumb or ""), size, _lines_json(lines), text))
        return self.get(frame_id)

    @staticmethod
    def frame_id(monitor: int, at: datetime) -> str:
        return content_id("frame", monitor, iso(at))

    def _patchable(self, monitor: int, width: int, height: int, boxes: tuple[Box, ...]) -> bool:
        if not boxes or covered(boxes, width, height) > FULL_CHANGE * width * height:
            return False
        last_key = self.db.execute(
            "SELECT captured_at, width, height FROM frames WHERE monitor = ? AND kind = 'key' "
            "ORDER BY captured_at DESC LIMIT 1", (monitor,)).fetchone()
        if last_key is None or (last_key["width"], last_key["height"]) != (width, height):
            return False
        since = self.db.execute(
            "SELECT count(*) FROM frames WHERE monitor = ? AND captured_at > ? AND "
            "kind = 'patch'", (monitor, last_key["captured_at"])).fetchone()[0]
        return since + 1 < self.keyframe_every

    def _write(self, relative: Path, data: bytes) -> int:
        """Seal a picture and write it whole or not at all (a crash leaves no half one)."""
        return replace_file(self.home / relative, self.keys.sealer.seal(data))

    def _read(self, relative: str) -> bytes:
        """A picture's WebP bytes; `Locked` while the memory is locked."""
        data = (self.home / relative).read_bytes()
        return self.keys.opener().open(data) if is_sealed(data) else data

    def seal_existing(self) -> int:
        """Seal the picture files stored before sealing began; how many."""
        sealed = 0
        for name in sorted(self._named_files()):
            path = self.home / name
            with contextlib.suppress(FileNotFoundError):
                data = path.read_bytes()
                if not is_sealed(data):
                    self._write(Path(name), data)
                    sealed += 1
        return sealed

    def stray_files(self) -> dict[str, float]:
        """Picture files no frame names, with when each was written: what a crash left
        between a picture's file and its row (or half a file, `.partial`)."""
        named = self._named_files()
        found = {}
        for path in (self.home / FRAMES).rglob("*"):
            with contextlib.suppress(FileNotFoundError):  # retention deleted it meanwhile
                name = str(path.relative_to(self.home))
                if path.is_file() and name not in named:
                    found[name] = path.stat().st_mtime
        return found

    def missing_files(self) -> set[str]:
        """Picture files a frame names that are not on disk."""
        return {name for name in self._named_files() if not (self.home / name).is_file()}

    def _named_files(self) -> set[str]:
        return {name for row in self.db.execute("SELECT path, thumb FROM frames")
                for name in row if name}

    def sweep(self) -> int:
        """Delete the stray files; only while nothing captures into this home (the
        service's start). How many."""
        strays = self.stray_files()
        for name in strays:
            (self.home / name).unlink(missing_ok=True)
        return len(strays)

    def requeue(self, event_id: str) -> list[Frame]:
        """The frames an event held, pending again (their episode is to be re-made)."""
        frames = [Frame.of(r) for r in self.db.execute(
            "SELECT * FROM frames WHERE event_id = ? ORDER BY captured_at", (event_id,))]
        self.db.execute("UPDATE frames SET flushed = 0, event_id = NULL WHERE event_id = ?",
                        (event_id,))
        return frames

    def mark_flushed(self, frame_ids: list[str], event_id: str | None) -> None:
        """Frames whose text memory now holds, as the event `event_id` (None: no text)."""
        self.db.executemany("UPDATE frames SET flushed = 1, event_id = ? WHERE id = ?",
                                 [(event_id, i) for i in frame_ids])

    # -- reading ----------------------------------------------------------------------------
    def get(self, frame_id: str) -> Frame:
        row = self.db.execute("SELECT * FROM frames WHERE id = ?", (frame_id,)).fetchone()
        if row is None:
            raise InvalidInput(f"no frame has the id {frame_id!r}")
        return Frame.of(row)

    def pending(self) -> list[Frame]:
        """Frames whose text has not been handed to memory yet, oldest first."""
        return [Frame.of(r) for r in self.db.execute(
            "SELECT * FROM frames WHERE flushed = 0 ORDER BY captured_at")]

    def recent(self, limit: int = 50, since: datetime | None = None) -> list[Frame]:
        return [Frame.of(r) for r in self.db.execute(
            "SELECT * FROM frames WHERE captured_at >= ? ORDER BY captured_at DESC LIMIT ?",
            (iso(since) if since else "", limit))]

    def thumbnail_of(self, frame: Frame) -> Frame | None:
        """The frame whose thumbnail shows this one: itself, or the last one before it on
        its monitor that has one (frames between them differ in a few lines)."""
        return frame if frame.thumb else self._last_before(frame, "thumb != ''")

    def picture_of(self, frame: Frame) -> Frame | None:
        """The frame whose picture shows this one: itself, or for a text frame the last one
        before it on its monitor that has a picture (at most the capture's picture interval
        before, unless that one was deleted)."""
        return frame if frame.has_picture else self._last_before(frame, "kind != 'text'")

    def _last_before(self, frame: Frame, having: str) -> Frame | None:
        row = self.db.execute(
            f"SELECT * FROM frames WHERE monitor = ? AND captured_at < ? AND {having} "
            "ORDER BY captured_at DESC LIMIT 1", (frame.monitor, iso(frame.captured_at))
        ).fetchone()
        return Frame.of(row) if row else None

    def for_event(self, event_id: str) -> Frame | None:
        """The first frame of the episode an event holds."""
        row = self.db.execute("SELECT * FROM frames WHERE event_id = ? ORDER BY captured_at "
                              "LIMIT 1", (event_id,)).fetchone()
        return Frame.of(row) if row else None

    def image(self, frame_id: str) -> np.ndarray:
        """The whole picture of a frame: its key frame with each patch up to it pasted on."""
        frame = self.get(frame_id)
        if not frame.has_picture:
            raise InvalidInput(f"frame {frame_id!r} kept its text but no picture: "
                               f"picture_of finds the one that shows it")
        chain = self._chain(frame)
        picture = decode(self._read(chain[0].path)).copy()
        for patch in chain[1:]:
            pixels = decode(self._read(patch.path))
            for b in patch.boxes:
                picture[b.top:b.bottom, b.left:b.right] = pixels[b.top:b.bottom, b.left:b.right]
        return picture

    def _chain(self, frame: Frame) -> list[Frame]:
        rows = self.db.execute(
            "SELECT * FROM frames WHERE monitor = ? AND captured_at <= ? AND kind != 'text' "
            "AND captured_at >= (SELECT max(captured_at) FROM frames WHERE monitor = ? AND "
            "kind = 'key' AND captured_at <= ?) ORDER BY captured_at",
            (frame.monitor, iso(frame.captured_at), frame.monitor, iso(frame.captured_at)))
        return [Frame.of(r) for r in rows]

    def thumbnail_bytes(self, frame: Frame) -> bytes:
        """A frame's thumbnail as WebP; `Locked` while the memory is locked."""
        if not frame.thumb:
            raise InvalidInput(f"frame {frame.id!r} has no thumbnail: thumbnail_of finds the "
                               f"one that shows it")
        return self._read(frame.thumb)

    def total_bytes(self) -> int:
        return int(self.db.execute("SELECT coalesce(sum(bytes), 0) FROM frames").fetchone()[0])

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM frames").fetchone()[0])

    def expired(self, now: datetime, keep_days: float, max_bytes: int) -> list[str]:
        """Frames past the retention policy, oldest first: older than `keep_days`, then
        the oldest of the rest until the total fits in `max_bytes`."""
        cutoff = iso(now - timedelta(days=keep_days))
        rows = self.db.execute("SELECT id, captured_at, bytes FROM frames "
                               "ORDER BY captured_at").fetchall()
        total = sum(r["bytes"] for r in rows)
        out = []
        for row in rows:
            if row["captured_at"] >= cutoff and total <= max_bytes:
                break
            out.append(row["id"])
            total -= row["bytes"]
        return out

    # -- deleting ---------------------------------------------------------------------------
    def delete(self, frame_id: str) -> Frame:
        """Delete a frame's row and files; the picture after it stays whole."""
        frame = self.get(frame_id)
        after = self.db.execute(
            "SELECT * FROM frames WHERE monitor = ? AND captured_at > ? AND kind != 'text' "
            "ORDER BY captured_at LIMIT 1", (frame.monitor, iso(frame.captured_at))).fetchone()
        if frame.has_picture and after is not None and after["kind"] == "patch":
            try:
                self._take_over(frame, Frame.of(after))
            except Locked:
                self._keep_text_only(Frame.of(after))
        self.db.execute("DELETE FROM frames WHERE id = ?", (frame_id,))
        for relative in filter(None, (frame.path, frame.thumb)):
            (self.home / relative).unlink(missing_ok=True)
        return frame

    def _take_over(self, gone: Frame, after: Frame) -> None:
        """Make `after` carry what `gone` carried: whole if `gone` was a key frame, else a
        patch of both frames' boxes."""
        picture = self.image(after.id)
        if gone.kind == "key":
            kind, boxes, data = "key", (), encode(picture, self.quality)
        else:
            boxes = tuple(dict.fromkeys(gone.boxes + after.boxes))
            kind, data = "patch", encode(patch_of(picture, boxes), self.quality)
        size = self._write(Path(after.path), data) + \
            ((self.home / after.thumb).stat().st_size if after.thumb else 0)
        self.db.execute("UPDATE frames SET kind = ?, boxes = ?, bytes = ? WHERE id = ?",
                        (kind, _boxes_json(boxes), size, after.id))


    def _keep_text_only(self, first: Frame) -> None:
        """Make `first` and the patches after it, up to the next key frame, text frames:
        what they were built on is being deleted, and locked it cannot be handed over."""
        rows = self.db.execute(
            "SELECT * FROM frames WHERE monitor = ? AND captured_at >= ? AND kind != 'text' "
            "ORDER BY captured_at", (first.monitor, iso(first.captured_at))).fetchall()
        for row in rows:
            frame = Frame.of(row)
            if frame.kind == "key":
                break
            (self.home / frame.path).unlink(missing_ok=True)
            size = (self.home / frame.thumb).stat().st_size if frame.thumb else 0
            self.db.execute("UPDATE frames SET kind = 'text', boxes = '[]', path = '', "
                            "bytes = ? WHERE id = ?", (size, frame.id))


def covered(boxes: tuple[Box, ...], width: int, height: int) -> int:
    """The pixels the boxes cover together (overlaps counted once)."""
    mask = np.zeros((height, width), dtype=bool)
    for b in boxes:
        mask[b.top:b.bottom, b.left:b.right] = True
    return int(mask.sum())


def _boxes_json(boxes: tuple[Box, ...]) -> str:
    return json.dumps([[b.left, b.top, b.right, b.bottom] for b in boxes])


def _lines_json(lines: list[Line]) -> str:
    payload: list[Any] = [[line.text, [line.box.left, line.box.top, line.box.right,
                                       line.box.bottom], round(line.score, 3)]
                          for line in lines]
    return json.dumps(payload)
