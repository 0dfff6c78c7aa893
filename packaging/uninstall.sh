#!/usr/bin/env bash
# Removes what packaging/install.sh installed: the service (stopped first, so capture hands
# what it read to memory), the environment, the command, the launchers and the icon. The
# memory itself stays unless --purge-data is given.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: packaging/uninstall.sh [--prefix DIR] [--purge-data [--yes]]

  --prefix DIR    the prefix Memlane was installed with (default ~/.local)
  --purge-data    also delete the memory: $MEMLANE_HOME (default ~/.local/share/memlane)
                  and the keys that open it; asks first
  --yes           do not ask
EOF
}

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=$HOME/.local
PURGE=no
YES=no
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --purge-data) PURGE=yes; shift ;;
    --yes) YES=yes; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
if [ -d "$PREFIX" ]; then PREFIX=$(cd "$PREFIX" && pwd); fi
# shellcheck source=packaging/common.sh
. "$SRC/packaging/common.sh"

if [ "$PURGE" = yes ] && [ -e "$DATA_DIR" ]; then
  # Never a folder that is not a Memlane memory (MEMLANE_HOME=~ by mistake).
  if [ ! -e "$DATA_DIR/memlane.sqlite3" ] && [ "$(basename "$DATA_DIR")" != memlane ] ||
    [ "$DATA_DIR" = "$HOME" ] || [ "$DATA_DIR" = / ]; then
    die "$DATA_DIR does not look like Memlane's data folder: delete it yourself if it is"
  fi
  if [ "$YES" != yes ]; then
    [ -t 0 ] || die "--purge-data deletes $DATA_DIR: add --yes when there is no terminal to ask"
    read -r -p "Delete Memlane's memory in $DATA_DIR for good? [y/N] " answer
    case $answer in
      [yY]*) ;;
      *) die "nothing removed" ;;
    esac
  fi
fi

if user_systemd; then
  if systemctl --user cat memlane.service >/dev/null 2>&1; then
    # stop waits for capture to hand its text to memory (up to the unit's 60 s)
    systemctl --user disable --now memlane.service || true
    say "stopped and disabled memlane.service"
  fi
else
  say "no systemd user manager answers here: if \`memlane service\` runs, stop it yourself"
fi

remove() {  # files made by install.sh
  local path
  for path in "$@"; do
    if [ -e "$path" ] || [ -L "$path" ]; then
      rm -f "$path"
      say "removed $path"
    fi
  done
}
remove "$UNIT" "$LAUNCHER" "$AUTOSTART" "$ICON"
if [ -L "$LINK" ] && [ "$(readlink "$LINK")" = "$VENV/bin/memlane" ]; then
  remove "$LINK"
fi
if [ -d "$VENV" ]; then
  rm -rf "$VENV"
  say "removed $VENV"
fi
rmdir "$APP_DIR" 2>/dev/null || true
if user_systemd; then
  systemctl --user daemon-reload
  systemctl --user reset-failed memlane.service 2>/dev/null || true
fi
refresh_launchers

if [ "$PURGE" = yes ] && [ -e "$DATA_DIR" ]; then
  # The keys are kept outside the data folder (app/keys.py): key files named
  # "<id>.private" and "<id>.pepper", or the same names in the desktop's keyring.
  id=$(sed -n 's/.*"id": *"\([0-9a-f]*\)".*/\1/p' "$DATA_DIR/keys.json" 2>/dev/null || true)
  if [ -n "$id" ]; then
    key_dir=${MEMLANE_KEY_DIR:-$CONFIG_HOME/memlane/keys}
    key_dir=${key_dir/#\~/$HOME}
    remove "$key_dir/$id.private" "$key_dir/$id.pepper"
    if command -v secret-tool >/dev/null 2>&1; then
      for item in "$id.private" "$id.pepper"; do
        secret-tool clear service memlane username "$item" 2>/dev/null || true
      done
    fi
  fi
  rm -rf "$DATA_DIR"
  say "deleted the memory in $DATA_DIR"
elif [ "$PURGE" = yes ]; then
  say "no memory to delete in $DATA_DIR"
elif [ -e "$DATA_DIR" ]; then
  say "kept the memory in $DATA_DIR (uninstall.sh --purge-data deletes it)"
fi
say "Memlane is uninstalled"
