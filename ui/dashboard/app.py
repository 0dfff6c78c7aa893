"""The browser dashboard: `memlane dashboard` (and `make run`) serves it on 127.0.0.1."""

from __future__ import annotations

import streamlit as st

from ui.dashboard.pages import PAGES

st.set_page_config(page_title="Memlane", page_icon=":material/neurology:", layout="wide")
pages = {key: st.Page(run, title=title, icon=icon, url_path=key, default=key == "home")
         for key, (run, title, icon) in PAGES.items()}
st.session_state["pages"] = pages
navigation = st.navigation({
    "Your memory": [pages[k] for k in ("home", "timeline", "search", "memories", "graph",
                                       "chat")],
    "Settings": [pages[k] for k in ("capture", "model", "transfer")],
})
navigation.run()
