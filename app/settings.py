"""One typed settings object, built once at the edge and passed down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from app.errors import InvalidInput

SETTINGS_FILE = "settings.json"
"""Settings changed in the dashboard, in the data folder; the environment still wins."""


def data_dir() -> Path:
    """Where Memlane keeps everything: `MEMLANE_HOME`, else the platform's user data dir."""
    home = os.environ.get("MEMLANE_HOME")
    if home:
        return Path(home).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("memlane", appauthor=False))


def default_key_dir() -> Path:
    """Key files live with the user's configuration, away from the data they open."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("memlane", appauthor=False)) / "keys"


class Settings(BaseSettings):
    """Every knob Memlane has; read from `MEMLANE_*` environment variables.

    Frozen: parts receive it and never change it.
    """

    model_config = SettingsConfigDict(env_prefix="MEMLANE_", frozen=True, extra="forbid")

    home: Path = Field(default_factory=data_dir)
    user_name: str = "user"
    """How the owner of this memory appears as an actor; their statements update the core block."""
    core_block_limit: int = 5000
    batch_size: int = 20
    """Events flushed to the memory managers at a time (MIRIX flushes every 20)."""
    embed_batch_size: int = 32
    embed_precision: Literal["auto", "float32", "bfloat16"] = "auto"
    """bfloat16 is ~3x faster on CPUs that have it natively; "auto" uses it there."""
    merge_similarity: float = 0.85
    """Token overlap above which a derived memory merges into an existing one."""
    resource_min_chars: int = 600
    """Texts at least this long are also kept as a resource (document)."""
    max_import_bytes: int = 200 * 2**20
    search_k: int = 10
    rrf_k: int = 10
    """Reciprocal-rank fusion constant; 10 beat the textbook 60 by 5 points of recall@10 on
    LoCoMo (bench.locomo_retrieval)."""

    key_store: Literal["auto", "keyring", "file"] = "auto"
    """Where the key that opens vault secrets and screenshots is kept, never in the data
    folder: the OS keyring ("auto" uses it when the desktop has one), or a file in
    `key_dir`."""
    key_dir: Path = Field(default_factory=default_key_dir)
    """The folder of key files, outside the data folder."""

    model: str = "qwen2.5-coder-1.5b"
    """The packaged language model the assistant answers with (`memlane models` lists them)."""
    llm_threads: int = 0
    """CPU threads for the model; 0 uses every core."""
    llm_context: int = 0
    """Context length in tokens; 0 uses the model's registered one."""
    llm_mlock: bool = False
    """Pin the model's weights in RAM instead of paging them in from flash."""
    model_budget: str = "auto"
    """Memory the model may use: a number of MB, or "auto" to follow free memory (leaving
    `model_headroom_mb` to everything else, never below `model_floor_mb`)."""
    model_headroom_mb: float = Field(1024.0, ge=0)
    model_floor_mb: float = Field(256.0, gt=0)
    model_speed_mb: float = Field(0.0, ge=0)
    """MiB of a BitStack model's budget spent keeping rebuilt weights in memory (LLM in a
    flash's DRAM cache) instead of on more blocks: faster answers, less exact ones. 0 spends
    it all on blocks; the kept weights give way first when the budget shrinks."""

    @field_validator("model_budget")
    @classmethod
    def _budget(cls, value: str) -> str:
        from inference.budget import parse_budget

        try:
            parse_budget(value)
        except InvalidInput as bad:
            raise ValueError(str(bad)) from None
        return value.strip().lower()
    managers: Literal["rules", "llm"] = "rules"
    """Who files chat turns into the stores: the rules, or the local model (slower, reads
    meaning). Imports always use the rules: the model would take hours on a large file."""
    answer_tokens: int = 400
    prompt_memories: int = 10
    """Memories shown to the model per question."""

    capture_interval: float = Field(5.0, gt=0)
    """Seconds between looks at each monitor."""
    capture_monitor_intervals: dict[int, float] = {}
    """Per-monitor intervals (mss numbers monitors from 1), e.g. {2: 30}."""
    capture_min_change: float = Field(0.01, ge=0, le=1)
    """A frame is kept when at least this share of the screen changed (MIRIX: 1%)."""
    capture_skip_idle_seconds: float = Field(300.0, ge=0)
    """No capture after this long without keyboard or mouse input (0: capture anyway)."""
    capture_skip_locked: bool = True
    capture_churn_seconds: float = Field(15.0, ge=0)
    """While the whole screen changes on every look (video, fast scrolling), it is read at
    most this often; 0 reads every change."""
    capture_picture_seconds: float = Field(30.0, ge=0)
    """While one window stays in front, a screenshot is kept at most this often (the text
    on screen is still read at every look); 0 keeps the screenshot of every kept frame."""
    capture_excluded_apps: tuple[str, ...] = (
        "keepassxc", "keepass", "keepass2", "1password", "bitwarden", "lastpass", "enpass",
        "dashlane", "proton pass", "seahorse", "kwalletmanager5", "kwalletmanager")
    """Applications (WM_CLASS, case-insensitive, or its start) never captured."""
    capture_excluded_titles: tuple[str, ...] = (
        r"private browsing", r"\bincognito\b", r"\binprivate\b", r"\bprivate window\b",
        r"\bpassword manager\b")
    """Window-title patterns (regular expressions, case-insensitive) never captured."""
    redact_patterns: tuple[str, ...] = ()
    """Your own redaction rules: regular expressions (case-insensitive) for text that must
    never be stored, cut out of chat, notes and screens like the built-in secrets."""
    capture_vault_secrets: bool = False
    """Keep secrets read off the screen in the knowledge vault (else they go nowhere)."""
    capture_episode_seconds: float = Field(60.0, gt=0)
    """Frames of one window become one screen episode in memory for at most this long."""
    capture_flush_seconds: float = Field(60.0, gt=0)
    """Seconds between hand-overs of captured text to memory (also every `batch_size`)."""
    capture_on_start: bool = True
    """Whether `memlane start` (and so `make run`) starts the capture service."""
    frame_quality: int = Field(60, ge=1, le=100)
    """WebP quality of thumbnails, and of frames that are mostly photo or video (frames of
    text and flat colour are stored lossless, which is smaller for them)."""
    frame_keyframe_every: int = Field(120, ge=1)
    frames_keep_days: float = Field(30.0, gt=0)
    frames_max_mb: float = Field(2000.0, gt=0)
    """Stored frames past this total size are deleted oldest first (and past the age)."""

    mcp_writes: bool = False
    """Whether other assistants may add notes through `memlane mcp` (read-only when off)."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Given values first, then `MEMLANE_*` variables, then the data folder's
        settings.json (what the user chose in the dashboard)."""
        home = init_settings().get("home") or env_settings().get("home") or data_dir()
        return (init_settings, env_settings,
                JsonConfigSettingsSource(settings_cls, json_file=Path(home) / SETTINGS_FILE))

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def db_path(self) -> Path:
        return self.home / "memlane.sqlite3"

    @property
    def capture_dir(self) -> Path:
        """The capture service's pid file, status and pause flag."""
        return self.home / "capture"

    @property
    def chroma_dir(self) -> Path:
        return self.home / "chroma"


def save_settings(settings: Settings, changes: dict[str, object]) -> Settings:
    """Keep changed settings in the data folder's settings.json, after checking them
    together: a bad value is an `InvalidInput` naming it, and nothing is written. The new
    settings are returned; running services take them when they restart."""
    import json

    path = settings.home / SETTINGS_FILE
    saved = json.loads(path.read_text()) if path.exists() else {}
    merged = {**saved, **changes}
    try:
        updated = Settings(**{**settings.model_dump(), **merged})
    except ValidationError as bad:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: "
                             f"{e['msg'].removeprefix('Value error, ')}" for e in bad.errors())
        raise InvalidInput(f"not saved: {problems}") from None
    from capture.privacy import Exclusions
    from memory.secrets import rules_of

    Exclusions(updated.capture_excluded_apps, updated.capture_excluded_titles)  # patterns
    rules_of(updated.redact_patterns)
    from app.files import replace_file

    replace_file(path, json.dumps(merged, indent=1, default=str))
    return updated
