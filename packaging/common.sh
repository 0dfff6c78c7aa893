# What packaging/install.sh and packaging/uninstall.sh agree on; sourced by both once
# PREFIX is known. The desktop files and the unit go where the desktop and systemd look
# for the user's own (XDG_DATA_HOME, XDG_CONFIG_HOME), whatever the prefix.
DATA_HOME=${XDG_DATA_HOME:-$HOME/.local/share}
CONFIG_HOME=${XDG_CONFIG_HOME:-$HOME/.config}
APP_DIR=$PREFIX/lib/memlane
VENV=$APP_DIR/venv
LINK=$PREFIX/bin/memlane
UNIT=$CONFIG_HOME/systemd/user/memlane.service
LAUNCHER=$DATA_HOME/applications/memlane.desktop
AUTOSTART=$CONFIG_HOME/autostart/memlane.desktop
# ui/assets/memlane.png is 256x256, one of the hicolor theme's sizes.
ICON=$DATA_HOME/icons/hicolor/256x256/apps/memlane.png
# Memlane's data folder when MEMLANE_HOME is not set (app/settings.py: platformdirs'
# user_data_dir("memlane")).
DATA_DIR=${MEMLANE_HOME:-$DATA_HOME/memlane}
DATA_DIR=${DATA_DIR/#\~/$HOME}

say() { printf 'memlane: %s\n' "$*"; }
die() { printf 'memlane: %s\n' "$*" >&2; exit 1; }

# Whether a systemd user manager answers (not in a container, nor over ssh without a
# login session).
user_systemd() {
  command -v systemctl >/dev/null 2>&1 && systemctl --user show-environment >/dev/null 2>&1
}

refresh_launchers() {
  if command -v update-desktop-database >/dev/null 2>&1 && [ -d "$DATA_HOME/applications" ]
  then
    update-desktop-database -q "$DATA_HOME/applications" || true
  fi
  local hicolor=$DATA_HOME/icons/hicolor
  if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$hicolor/icon-theme.cache" ]
  then
    gtk-update-icon-cache -q -f -t "$hicolor" || true
  fi
}
