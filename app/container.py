"""The composition root: the one place that picks concrete classes and wires them."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from app.errors import ModelMissing
from app.keys import HomeKeys, key_store, seal_existing
from app.settings import Settings
from capture.importers import DEFAULT_IMPORTERS
from capture.importers.base import Importer
from inference.assistant import Assistant
from inference.llm import LLM, LlamaModel
from inference.models import ModelStore, spec_of
from memory.db import Database
from memory.embed import Embedder, MiniLMEmbedder
from memory.events import Event
from memory.extract import Extractor, SpacyExtractor
from memory.graph import GraphIndex
from memory.heap import release, tune
from memory.keyword import KeywordIndex
from memory.managers import RuleMetaManager, rule_managers
from memory.nlp import Analyzer, SpacyAnalyzer
from memory.retrieval import Retriever
from memory.secrets import rules_of
from memory.stores import Stores
from memory.vectors import VectorIndex
from memory.writepath import IngestReport, MetaManager, TypeManager, WritePath

log = logging.getLogger(__name__)
Progress = Callable[[int], None]
LARGE_IMPORT = 500
"""Events after which the heap an import freed is handed back to the system."""


def load_model(settings: Settings, name: str) -> LlamaModel:
    """A packaged model in llama.cpp, with the settings' context, threads and mlock."""
    from inference.llm import LlamaModel, LoadOptions

    path = ModelStore(settings.models_dir).require(name)
    return LlamaModel(name, path, LoadOptions(settings.llm_context or spec_of(name).context,
                                              settings.llm_threads, settings.llm_mlock))


def quiet_third_parties() -> None:
    """Offline and silent: no hub lookups, no telemetry, no tokenizer fork warnings."""
    for name, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                        ("ANONYMIZED_TELEMETRY", "False"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(name, value)
    logging.getLogger("chromadb").setLevel(logging.ERROR)


@dataclass
class Parts:
    """Replaceable parts; tests register honest fakes here, the defaults are the real ones."""

    embedder: Embedder | None = None
    analyzer: Analyzer | None = None
    extractor: Extractor | None = None
    """Entities and facts for the graph; by default rules over the analyzer's spaCy parse."""
    meta: MetaManager | None = None
    managers: Sequence[TypeManager] | None = None
    importers: Sequence[Importer] = field(default_factory=lambda: DEFAULT_IMPORTERS)
    llm: LLM | None = None
    """The language model, already loaded (tests share the tiny one); by default the
    settings' model, loaded on first use."""


class Memlane:
    """The wired core that the CLI, dashboard, GUI and chat all use."""

    def __init__(self, settings: Settings, parts: Parts | None = None) -> None:
        quiet_third_parties()
        tune()
        parts = parts or Parts()
        settings.home.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.db = Database(settings.db_path)
        self.keys = HomeKeys(settings.home, key_store(settings))
        self.stores = Stores(self.db, self.keys, settings.core_block_limit)
        self.embedder = parts.embedder or MiniLMEmbedder(
            settings.embed_batch_size, settings.embed_precision)
        self.vectors = VectorIndex(settings.chroma_dir, self.db, self.stores, self.embedder)
        self.keyword = KeywordIndex(self.db)
        self.analyzer = analyzer = parts.analyzer or SpacyAnalyzer()
        self.graph = GraphIndex(self.db, self.stores, self.vectors, parts.extractor or (
            SpacyExtractor(analyzer if isinstance(analyzer, SpacyAnalyzer) else SpacyAnalyzer())))
        self.retriever = Retriever(self.stores, self.keyword, self.vectors, self.graph,
                                   settings.rrf_k)
        self.importers = tuple(parts.importers)
        self.redaction_rules = rules_of(settings.redact_patterns)
        self.writepath = WritePath(
            self.db, self.stores, analyzer,
            parts.meta or RuleMetaManager(settings.user_name, settings.resource_min_chars),
            parts.managers or rule_managers(settings.user_name, settings.merge_similarity),
            settings.user_name, settings.batch_size, after_chunk=self._after_chunk,
            rules=self.redaction_rules,
        )
        self._llm: LLM | None = parts.llm
        if not self.keys.record.get("sealed_existing"):
            seal_existing(self)
        self.sync()

    def ingest(self, events: Iterable[Event], progress: Progress | None = None,
               index_progress: Progress | None = None,
               writepath: WritePath | None = None) -> IngestReport:
        """Store events (one transaction), then bring the vector and graph indexes up to date."""
        report = (writepath or self.writepath).ingest(events, progress)
        self.sync(index_progress)
        if report.events >= LARGE_IMPORT:
            release()
        return report

    def remember(self, events: Sequence[Event]) -> IngestReport:
        """Store live events (chat turns). With `managers="llm"` the model files them;
        without a usable model, or by default, the rules do, as for imports."""
        if self.settings.managers == "llm":
            try:
                path = self._model_writepath()
            except ModelMissing as missing:
                log.warning("the model cannot file memories (%s); the rules do", missing)
            else:
                return self.ingest(events, writepath=path)
        return self.ingest(events)

    def forget(self, record_id: str) -> None:
        """Forget a memory everywhere: its store, history, indexes and caches (see
        app/forget.py); an episode takes its event, screenshots and what was made only from
        them along. Chroma's files are scrubbed by `memlane forget`, not here (the vector
        is out of search at once). An unknown id is `RecordNotFound` and changes nothing."""
        from app.forget import Scope, forget
        from app.service import frame_store

        forget(self, frame_store(self), Scope(record_id=record_id), scrub_vectors=False)

    def _model_writepath(self) -> WritePath:
        from inference.managers import CachedLLM, LLMMetaManager, llm_managers

        model = CachedLLM(self.llm(), self.db)
        settings = self.settings
        return WritePath(
            self.db, self.stores, self.analyzer,
            LLMMetaManager(model, settings.user_name, settings.resource_min_chars),
            llm_managers(model, settings.user_name, settings.merge_similarity),
            settings.user_name, settings.batch_size, after_chunk=self._after_chunk,
            rules=self.redaction_rules)

    def sync(self, progress: Progress | None = None) -> None:
        """Bring the derived indexes (vectors, graph) up to date with SQLite."""
        self.vectors.sync(progress)
        self.graph.sync()

    def _after_chunk(self) -> None:
        """While an import goes on: embed on the worker thread, extract for the graph."""
        self.vectors.prefetch()
        self.graph.extract_pending()

    def llm(self, name: str | None = None) -> LLM:
        """The language model, loaded on first use and kept (a follow-up reuses its cache);
        another name loads that model instead. Its size follows the memory budget: whole
        in llama.cpp, or a BitStack prefix resized in place as the budget moves."""
        from app.sizing import follow_budget, load_sized

        name = name or (self._llm.name if self._llm else self.settings.model)
        if self._llm is None or self._llm.name != name or \
                follow_budget(self._llm, self.settings):
            self._llm = None  # the old one's memory goes before the new one loads
            self._llm = load_sized(self.settings, name)
        return self._llm

    def assistant(self, session: str | None = None) -> Assistant:
        """A conversation with the assistant over this memory."""
        return Assistant(self.llm(), self.retriever, self.stores, self.remember,
                         self.settings.user_name, self.settings.prompt_memories,
                         self.settings.answer_tokens, session)

    def close(self) -> None:
        self._llm = None
        self.vectors.close()
        self.db.close()

    def __enter__(self) -> Memlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
