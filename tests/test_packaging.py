"""packaging/: the systemd user unit and the desktop files pass their validators; the install
script puts a working Memlane into a tmp prefix (HOME and the XDG folders in tmp, no user
systemd), whose unit's command serves the dashboard, captures a virtual screen and stops
cleanly on SIGTERM; the uninstall script removes it all but the memory, which
--purge-data deletes."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.background import display_variables
from app.service import read_status
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
HICOLOR_SIZES = {16, 22, 24, 32, 48, 64, 96, 128, 192, 256, 512}
STOP_SECONDS = 60
"""The unit's TimeoutStopSec."""


@dataclass(frozen=True)
class Install:
    """A Memlane installed by packaging/install.sh for a user whose folders are in tmp."""

    root: Path
    env: dict[str, str]
    output: str

    @property
    def prefix(self) -> Path:
        return self.root / "prefix"

    @property
    def unit(self) -> Path:
        return Path(self.env["XDG_CONFIG_HOME"]) / "systemd/user/memlane.service"

    @property
    def launcher(self) -> Path:
        return Path(self.env["XDG_DATA_HOME"]) / "applications/memlane.desktop"

    @property
    def autostart(self) -> Path:
        return Path(self.env["XDG_CONFIG_HOME"]) / "autostart/memlane.desktop"

    @property
    def icon(self) -> Path:
        return Path(self.env["XDG_DATA_HOME"]) / "icons/hicolor/256x256/apps/memlane.png"

    def files(self) -> list[Path]:
        return [self.unit, self.launcher, self.autostart, self.icon,
                self.prefix / "bin/memlane", self.prefix / "lib/memlane/venv"]

    def script(self, name: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(PACKAGING / name), "--prefix", str(self.prefix),
                               *args], env=self.env, capture_output=True, text=True,
                              timeout=600, stdin=subprocess.DEVNULL)


def user_environment(root: Path) -> dict[str, str]:
    """HOME and the XDG folders under `root`, a runtime folder where no systemd user
    manager (nor D-Bus) answers, so nothing is registered with the developer's own, and
    key files in `root` (never the developer's keyring)."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("DBUS_SESSION_BUS_ADDRESS", "DISPLAY", "WAYLAND_DISPLAY",
                           "NOTIFY_SOCKET", "INVOCATION_ID", "JOURNAL_STREAM", "MEMLANE_HOME")}
    runtime = root / "run"
    runtime.mkdir(parents=True, mode=0o700, exist_ok=True)
    env.update(HOME=str(root / "home"), XDG_DATA_HOME=str(root / "xdg-data"),
               XDG_CONFIG_HOME=str(root / "xdg-config"), XDG_RUNTIME_DIR=str(runtime),
               PYTHON=sys.executable, MEMLANE_KEY_STORE="file",
               MEMLANE_KEY_DIR=str(root / "keys"))
    return env


def install(root: Path) -> Install:
    """Install with the dependencies of the environment running the tests."""
    env = user_environment(root)
    done = Install(root, env, "")
    result = done.script("install.sh", "--no-start",
                         "--site-packages", sysconfig.get_paths()["purelib"])
    assert result.returncode == 0, result.stdout + result.stderr
    return Install(root, env, result.stdout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Install:
    """Installed twice: the second run replaces what the first made."""
    root = tmp_path_factory.mktemp("installed")
    install(root)
    return install(root)


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: run `make test` (it installs it)"
    return found


def verify_unit(unit: Path, env: dict[str, str]) -> str:
    """What `systemd-analyze --user verify` says about a unit: nothing when it is sound.
    It exits 0 on an unknown directive or a bad value too, so its words are the check."""
    tool("systemd-analyze")
    result = subprocess.run(["systemd-analyze", "--user", "verify", str(unit)], env=env,
                            capture_output=True, text=True, timeout=60, cwd=unit.parent)
    return (result.stdout + result.stderr).strip() or \
        ("" if result.returncode == 0 else f"exit {result.returncode}")


def validate_desktop_file(path: Path) -> str:
    tool("desktop-file-validate")
    result = subprocess.run(["desktop-file-validate", str(path)], capture_output=True,
                            text=True, timeout=60)
    return (result.stdout + result.stderr).strip() or \
        ("" if result.returncode == 0 else f"exit {result.returncode}")


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            return page.status == 200
    except OSError:
        return False


def unit_command(unit: Path, port: int) -> tuple[list[str], dict[str, str]]:
    """The unit's ExecStart= (on another port) and its Environment= variables."""
    command: list[str] = []
    environment: dict[str, str] = {}
    for line in unit.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "ExecStart":
            command = shlex.split(value)
        elif key == "Environment":
            environment.update(word.split("=", 1) for word in shlex.split(value))
    assert command[-2:] == ["--port", "8501"]
    return command[:-1] + [str(port)], environment


@pytest.fixture
def notifications(tmp_path: Path) -> Iterator[socket.socket]:
    """A socket standing in for systemd's NOTIFY_SOCKET (Type=notify)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        sock.settimeout(0.5)
        yield sock


def received(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            return messages


def wait_until(check, seconds: float, service: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert service.poll() is None, f"the service ended (exit {service.returncode})"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def stop(service: subprocess.Popen) -> tuple[int, float, str]:
    """SIGTERM, as systemd stops the unit: exit status, seconds it took, its log."""
    began = time.monotonic()
    service.send_signal(signal.SIGTERM)
    try:
        code = service.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        service.kill()
        code = service.wait()
    return code, time.monotonic() - began, service.stderr.read() if service.stderr else ""


# -- the files on their own ----------------------------------------------------------------
@pytest.mark.parametrize("name", ["memlane.desktop", "memlane-autostart.desktop"])
def test_the_desktop_files_pass_desktop_file_validate(name: str) -> None:
    assert validate_desktop_file(PACKAGING / name) == ""


def test_the_icon_is_a_hicolor_size() -> None:
    width, height = png_size(ROOT / "ui/assets/memlane.png")
    assert width == height == 256 and width in HICOLOR_SIZES


def test_the_display_systemd_knows_is_read_from_show_environment() -> None:
    shown = "HOME=/home/ana\nDISPLAY=:1\nXAUTHORITY=/run/user/1000/gdm/Xauthority\n" \
            "LANG=en_GB.UTF-8\nWAYLAND_DISPLAY=$'odd\\nname'\n"
    assert display_variables(shown) == {"DISPLAY": ":1",
                                        "XAUTHORITY": "/run/user/1000/gdm/Xauthority"}


# -- installed into a tmp prefix -----------------------------------------------------------
@pytest.mark.slow
def test_install_puts_every_file_in_place_and_says_how_to_start(installed: Install) -> None:
    for path in installed.files():
        assert path.exists(), path
    venv_memlane = installed.prefix / "lib/memlane/venv/bin/memlane"
    assert (installed.prefix / "bin/memlane").resolve() == venv_memlane.resolve()
    width, height = png_size(installed.icon)
    assert f"/{width}x{height}/" in str(installed.icon) and width in HICOLOR_SIZES
    assert f"Exec={venv_memlane} gui" in installed.launcher.read_text()
    assert f"Exec={venv_memlane} gui" in installed.autostart.read_text()
    assert f"ExecStart={venv_memlane} service" in installed.unit.read_text()
    assert "no systemd user manager answers here" in installed.output
    assert f"{installed.prefix}/bin/memlane service" in installed.output
    # the environment's own Memlane runs, not the checkout's
    where = subprocess.run([str(venv_memlane.with_name("python")), "-c",
                            "import app; print(app.__file__)"], env=installed.env,
                           capture_output=True, text=True, timeout=60, cwd=installed.root)
    assert where.stdout.startswith(str(installed.prefix)), where.stdout + where.stderr


@pytest.mark.slow
def test_the_installed_unit_passes_systemd_analyze_and_a_typo_does_not(
        installed: Install, tmp_path: Path) -> None:
    assert verify_unit(installed.unit, installed.env) == ""
    broken = tmp_path / "memlane.service"
    broken.write_text(installed.unit.read_text().replace("MemoryMax=", "MemoryMaks="))
    assert "Unknown key 'MemoryMaks'" in verify_unit(broken, installed.env)
    for path in (installed.launcher, installed.autostart):
        assert validate_desktop_file(path) == ""


@pytest.mark.slow
def test_the_installed_service_captures_serves_and_stops_cleanly(
        installed: Install, display: str, tmp_path: Path,
        notifications: socket.socket) -> None:
    from capture.xvfb import TextWindow

    port = free_port()
    command, unit_environment = unit_command(installed.unit, port)
    home = tmp_path / "memory"
    env = {**installed.env, **unit_environment, "MEMLANE_HOME": str(home), "DISPLAY": display,
           "MEMLANE_CAPTURE_SKIP_IDLE_SECONDS": "0",
           "NOTIFY_SOCKET": notifications.getsockname()}
    window = TextWindow(display, "Harbour - Notes", ["The Zanzibar pineapple shipment"])
    service = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: answers(port), 240, service)
        wait_until(lambda: (read_status(Settings(home=home)).get("kept") or 0) >= 1, 240,
                   service)
        assert read_status(Settings(home=home))["running"]
    finally:
        code, seconds, log = stop(service)
        window.close()
    assert code == 0, log
    assert seconds < STOP_SECONDS
    messages = received(notifications)
    assert "READY=1" in messages and messages[-1] == "STOPPING=1"
    assert any(m.startswith("STATUS=") and "screen capture is running" in m for m in messages)
    assert not read_status(Settings(home=home))["running"]
    with sqlite3.connect(home / "memlane.sqlite3") as db:  # capture handed its text over
        assert db.execute("SELECT count(*) FROM events WHERE text LIKE '%Zanzibar%'"
                          ).fetchone()[0] >= 1


@pytest.mark.slow
def test_without_a_display_the_service_keeps_the_dashboard_up(
        tmp_path: Path, notifications: socket.socket) -> None:
    port = free_port()
    env = {**user_environment(tmp_path), "MEMLANE_HOME": str(tmp_path / "memory"),
           "NOTIFY_SOCKET": notifications.getsockname()}
    service = subprocess.Popen([sys.executable, "-m", "app.cli", "service", "--port",
                                str(port)], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: answers(port), 240, service)
        time.sleep(1)  # the service goes on after capture said why it is off
    finally:
        code, _, log = stop(service)
    assert code == 0, log
    assert "Screen capture is off" in log and "DISPLAY is not set" in log
    assert "the dashboard is at" in log
    messages = received(notifications)
    assert "READY=1" in messages
    assert any("DISPLAY is not set" in m for m in messages if m.startswith("STATUS="))


@pytest.mark.slow
def test_uninstall_removes_memlane_and_keeps_the_memory_unless_purged(tmp_path: Path) -> None:
    done = install(tmp_path)
    memory = Path(done.env["XDG_DATA_HOME"]) / "memlane"  # the default data folder
    memory.mkdir(parents=True)
    (memory / "memlane.sqlite3").write_bytes(b"a memory")
    (memory / "keys.json").write_text('{\n "id": "0a1b2c",\n "public": "x"\n}')
    keys = Path(done.env["MEMLANE_KEY_DIR"])
    keys.mkdir(parents=True)
    (keys / "0a1b2c.private").write_text("k")
    (keys / "other.private").write_text("another memory's key")

    removed = done.script("uninstall.sh")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not [path for path in done.files() if path.exists() or path.is_symlink()]
    assert (memory / "memlane.sqlite3").exists() and (keys / "0a1b2c.private").exists()
    assert f"kept the memory in {memory}" in removed.stdout

    refused = done.script("uninstall.sh", "--purge-data")  # no terminal to ask, no --yes
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert (memory / "memlane.sqlite3").exists()

    purged = done.script("uninstall.sh", "--purge-data", "--yes")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert not memory.exists() and not (keys / "0a1b2c.private").exists()
    assert (keys / "other.private").exists()

