"""Serving the dashboard: Streamlit on 127.0.0.1 only, with nothing sent anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).with_name("streamlit_app.py")


def command(port: int) -> list[str]:
    """The Streamlit command line: loopback only, no usage statistics, no file watcher,
    no browser opened by the server itself."""
    return [sys.executable, "-m", "streamlit", "run", str(APP),
            "--server.address", "127.0.0.1", "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--global.developmentMode", "false",
            "--client.toolbarMode", "minimal", "--client.showErrorLinks", "false",
            "--theme.base", "light", "--theme.primaryColor", "#2563eb"]


def environment(home: Path | None = None) -> dict[str, str]:
    """The server's environment: offline, no statistics, and the memory home if given."""
    return {**os.environ, **({"MEMLANE_HOME": str(home)} if home else {}),
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "ANONYMIZED_TELEMETRY": "False"}


def serve(port: int) -> None:
    """Serve in the foreground until interrupted."""
    try:
        subprocess.run(command(port), env=environment(), check=False)
    except KeyboardInterrupt:
        pass


def start(port: int, home: Path, log: Path) -> subprocess.Popen:
    """Serve the memory in `home` in the background; the caller stops it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(command(port), env=environment(home), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
