"""The browser dashboard: `memlane dashboard` (and `make run`) serves it on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from PIL import Image

from ui.dashboard.pages import PAGES

ICON = Path(__file__).parent.parent / "assets" / "memlane.png"
# the icon is a local image: a material icon or an emoji would be fetched from the web
st.set_page_config(page_title="Memlane", page_icon=Image.open(ICON), layout="wide")
pages = {key: st.Page(run, title=title, icon=icon, url_path=key, default=key == "home")
         for key, (run, title, icon) in PAGES.items()}
st.session_state["pages"] = pages
navigation = st.navigation({
    "Your memory": [pages[k] for k in ("home", "timeline", "search", "memories", "graph",
                                       "chat")],
    "Settings": [pages[k] for k in ("capture", "model", "transfer")],
})
navigation.run()
