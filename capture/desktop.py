"""The X11 desktop the screen is captured from: which window is active (EWMH), how long
the user has been idle, whether the screen is locked. Wayland and a missing display are
told apart and explained, since mss cannot grab either."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import CaptureUnavailable

log = logging.getLogger(__name__)
LOCKERS = frozenset({"xscreensaver", "i3lock", "light-locker", "gnome-screensaver",
                     "xsecurelock", "slock", "xlock", "swaylock", "kscreenlocker_greet"})
"""Applications whose window in front means the screen is locked."""


@dataclass(frozen=True)
class Window:
    """The window in front: its application (WM_CLASS) and title."""

    app: str
    title: str


def display_problem(environ: Mapping[str, str]) -> str | None:
    """Why the screen cannot be captured in this session, in words; None when it can."""
    if environ.get("WAYLAND_DISPLAY") or environ.get("XDG_SESSION_TYPE") == "wayland":
        return ("this is a Wayland session, and Wayland does not let programs read the "
                "screen: log in with an X11 (Xorg) session to use screen capture")
    if not environ.get("DISPLAY"):
        return ("there is no display to capture (DISPLAY is not set): run Memlane in your "
                "desktop session to use screen capture")
    return None


class X11Desktop:
    """One connection to the X server, kept for the life of the capture service."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        problem = display_problem(environ)
        if problem:
            raise CaptureUnavailable(f"Screen capture is off: {problem}.")
        from Xlib import X, display, error

        self._X, self._errors = X, (error.XError, error.ConnectionClosedError)
        try:
            self._display = display.Display(environ["DISPLAY"])
        except (error.DisplayError, error.DisplayConnectionError, OSError) as failed:
            raise CaptureUnavailable(
                f"Screen capture is off: cannot open the display {environ['DISPLAY']!r} "
                f"({failed})") from failed
        self.name = environ["DISPLAY"]
        self._root = self._display.screen().root
        self._atoms = {name: self._display.intern_atom(name) for name in
                       ("_NET_ACTIVE_WINDOW", "_NET_WM_NAME", "UTF8_STRING")}
        self._screensaver = self._display.has_extension("MIT-SCREEN-SAVER")

    def active_window(self) -> Window | None:
        """The window the user is working in: the window manager's active window
        (_NET_ACTIVE_WINDOW), else the one holding the keyboard focus, else the one under
        the pointer. None when there is no window at all."""
        try:
            window = self._active() or self._focused()
            return self._describe(window) if window else None
        except self._errors:  # the window closed while we looked at it
            return None

    def idle_seconds(self) -> float:
        """Seconds since the last keyboard or mouse input (0 when the server cannot tell)."""
        if not self._screensaver:
            return 0.0
        try:
            return self._root.screensaver_query_info().idle / 1000
        except self._errors:
            return 0.0

    def locked(self) -> bool:
        """Whether the screen saver is on or a screen locker is in front."""
        if self._screensaver:
            try:
                if self._root.screensaver_query_info().state == 1:  # ScreenSaverOn
                    return True
            except self._errors:
                pass
        window = self.active_window()
        return bool(window and window.app.lower() in LOCKERS)

    def close(self) -> None:
        try:
            self._display.close()
        except self._errors:
            pass

    def _active(self) -> Any:
        prop = self._root.get_full_property(self._atoms["_NET_ACTIVE_WINDOW"],
                                            self._X.AnyPropertyType)
        if prop is None or not len(prop.value) or not prop.value[0]:
            return None
        return self._display.create_resource_object("window", int(prop.value[0]))

    def _focused(self) -> Any:
        focus = self._display.get_input_focus().focus
        if isinstance(focus, int) or focus in (self._X.NONE, self._X.PointerRoot) or \
                focus == self._root:
            child = self._root.query_pointer().child
            return child if child not in (self._X.NONE, 0) else None
        return focus

    def _describe(self, window: Any) -> Window | None:
        """The application and title of a window or, for an inner window, of the top-level
        window that holds it."""
        while window and window != self._root:
            title = self._title(window)
            klass = window.get_wm_class()
            if title or klass:
                return Window(app=klass[1] if klass else "", title=title)
            window = window.query_tree().parent
        return None

    def _title(self, window: Any) -> str:
        prop = window.get_full_property(self._atoms["_NET_WM_NAME"], self._atoms["UTF8_STRING"])
        if prop is not None and prop.value:
            value = prop.value
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        name = window.get_wm_name()
        return name.decode("latin-1") if isinstance(name, bytes) else (name or "")
