"""Numbered, named schema migrations; SQLite is the source of truth for every index."""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_stores",
        """
        CREATE TABLE events (
            id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            actor TEXT NOT NULL,
            text TEXT NOT NULL,
            metadata TEXT NOT NULL DEFAULT '{}',
            ingested_at TEXT NOT NULL
        );
        CREATE INDEX events_source ON events(source);

        CREATE TABLE core (
            label TEXT PRIMARY KEY,
            value TEXT NOT NULL DEFAULT '',
            char_limit INTEGER NOT NULL,
            updated_at TEXT NOT NULL
        );

        CREATE TABLE episodic (
            id TEXT PRIMARY KEY,
            occurred_at TEXT,
            actor TEXT NOT NULL,
            event_type TEXT NOT NULL,
            summary TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE semantic (
            id TEXT PRIMARY KEY,
            occurred_at TEXT,
            name TEXT NOT NULL,
            summary TEXT NOT NULL,
            details TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE procedural (
            id TEXT PRIMARY KEY,
            occurred_at TEXT,
            entry_type TEXT NOT NULL,
            summary TEXT NOT NULL,
            steps TEXT NOT NULL DEFAULT '[]',
            source TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE resource (
            id TEXT PRIMARY KEY,
            occurred_at TEXT,
            title TEXT NOT NULL,
            summary TEXT NOT NULL,
            resource_type TEXT NOT NULL,
            content TEXT NOT NULL,
            source TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE vault (
            id TEXT PRIMARY KEY,
            occurred_at TEXT,
            entry_type TEXT NOT NULL,
            sensitivity TEXT NOT NULL CHECK (sensitivity IN ('low', 'medium', 'high')),
            secret_value TEXT NOT NULL,
            caption TEXT NOT NULL,
            source TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX episodic_time ON episodic(occurred_at);
        CREATE INDEX semantic_name ON semantic(name);

        -- Which events each record came from (many to many).
        CREATE TABLE provenance (
            record_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            PRIMARY KEY (record_id, event_id)
        ) WITHOUT ROWID;
        CREATE INDEX provenance_event ON provenance(event_id);

        -- Append-only: rows are inserted, never updated or deleted.
        CREATE TABLE history (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            record_id TEXT NOT NULL,
            store TEXT NOT NULL,
            op TEXT NOT NULL CHECK (op IN ('ADD', 'UPDATE', 'MERGE', 'DELETE')),
            old_value TEXT,
            new_value TEXT,
            event_ids TEXT NOT NULL DEFAULT '[]',
            actor TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX history_record ON history(record_id);
        CREATE TRIGGER history_no_update BEFORE UPDATE ON history
            BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
        CREATE TRIGGER history_no_delete BEFORE DELETE ON history
            BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;

        -- Keyword index over every store's text fields (never a vault secret).
        CREATE VIRTUAL TABLE memory_fts USING fts5(
            record_id UNINDEXED, store UNINDEXED, source UNINDEXED, occurred_at UNINDEXED, text,
            tokenize = 'porter unicode61'
        );

        -- Embeddings by content hash, so nothing is embedded twice and Chroma can be rebuilt.
        CREATE TABLE embeddings (
            content_hash TEXT NOT NULL,
            model TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (content_hash, model)
        ) WITHOUT ROWID;

        -- Records whose vector index entry must be written or removed; drained after commit.
        CREATE TABLE vector_queue (record_id TEXT PRIMARY KEY) WITHOUT ROWID;
        """,
    ),
    (
        "0002_graph",
        """
        -- Entities and facts extracted from a text, by content hash and extractor, so the
        -- graph is rebuilt without extracting again (and an LLM never reads a text twice).
        CREATE TABLE extractions (
            content_hash TEXT NOT NULL,
            extractor TEXT NOT NULL,
            payload TEXT NOT NULL,
            PRIMARY KEY (content_hash, extractor)
        ) WITHOUT ROWID;

        -- Which extraction each record (a passage node) contributes to the graph.
        CREATE TABLE graph_passages (
            record_id TEXT PRIMARY KEY,
            content_hash TEXT NOT NULL,
            extractor TEXT NOT NULL
        ) WITHOUT ROWID;

        -- Entity nodes in the order they were added; `linked` once their synonyms are known.
        CREATE TABLE graph_entities (
            seq INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            linked INTEGER NOT NULL DEFAULT 0
        );

        -- Each entity's nearest neighbours (cosine >= threshold, bounded in number).
        CREATE TABLE graph_synonyms (
            entity TEXT NOT NULL,
            neighbour TEXT NOT NULL,
            similarity REAL NOT NULL,
            PRIMARY KEY (entity, neighbour)
        ) WITHOUT ROWID;

        -- Records whose passage node must be written or removed; drained after commit.
        CREATE TABLE graph_queue (record_id TEXT PRIMARY KEY) WITHOUT ROWID;
        INSERT INTO graph_queue SELECT record_id FROM memory_fts;
        """,
    ),
    (
        "0003_reply_context",
        """
        -- The message a chat turn answers: "Yes, from Sweden!" means little on its own.
        ALTER TABLE episodic ADD COLUMN context TEXT NOT NULL DEFAULT '';
        """,
    ),
    (
        "0004_keyword_rows",
        """
        -- Where each record sits in memory_fts: its record_id column is not indexed, so
        -- finding a record's row there would read the whole index.
        CREATE TABLE keyword_rows (
            record_id TEXT PRIMARY KEY,
            fts_rowid INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO keyword_rows SELECT record_id, rowid FROM memory_fts;
        """,
    ),
    (
        "0005_llm_cache",
        """
        -- Structured model answers by a hash of the request (model, messages, schema), so
        -- the model never reads the same text for the same purpose twice.
        CREATE TABLE llm_cache (
            request_hash TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            response TEXT NOT NULL,
            created_at TEXT NOT NULL
        ) WITHOUT ROWID;
        """,
    ),
    (
        "0006_frames",
        """
        -- Kept screen frames. A key frame's file is the whole picture; a patch's file holds
        -- only the boxes that changed since the frame before it (the rest is black), so a
        -- frame is its chain's key frame with every patch up to it pasted on.
        CREATE TABLE frames (
            id TEXT PRIMARY KEY,
            monitor INTEGER NOT NULL,
            captured_at TEXT NOT NULL,
            app TEXT NOT NULL DEFAULT '',
            title TEXT NOT NULL DEFAULT '',
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('key', 'patch')),
            boxes TEXT NOT NULL DEFAULT '[]',
            path TEXT NOT NULL,
            thumb TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            lines TEXT NOT NULL DEFAULT '[]',
            text TEXT NOT NULL DEFAULT '',
            event_id TEXT,
            flushed INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX frames_time ON frames(monitor, captured_at);
        CREATE INDEX frames_pending ON frames(flushed) WHERE flushed = 0;
        """,
    ),
    (
        "0007_frames_by_event",
        """
        -- Frames are handed to memory as episodes (one event for a window's minute), so
        -- many frames share an event: find them from it (click-through, forgetting).
        CREATE INDEX frames_event ON frames(event_id);
        """,
    ),
    (
        "0008_text_frames",
        """
        -- While one window stays in front, a picture is kept at most every half minute:
        -- the frames between keep their text and no picture (kind 'text', path '').
        CREATE TABLE frames_new (
            id TEXT PRIMARY KEY,
            monitor INTEGER NOT NULL,
            captured_at TEXT NOT NULL,
            app TEXT NOT NULL DEFAULT '',
            title TEXT NOT NULL DEFAULT '',
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('key', 'patch', 'text')),
            boxes TEXT NOT NULL DEFAULT '[]',
            path TEXT NOT NULL,
            thumb TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            lines TEXT NOT NULL DEFAULT '[]',
            text TEXT NOT NULL DEFAULT '',
            event_id TEXT,
            flushed INTEGER NOT NULL DEFAULT 0
        );
        INSERT INTO frames_new SELECT * FROM frames;
        DROP TABLE frames;
        ALTER TABLE frames_new RENAME TO frames;
        CREATE INDEX frames_time ON frames(monitor, captured_at);
        CREATE INDEX frames_pending ON frames(flushed) WHERE flushed = 0;
        CREATE INDEX frames_event ON frames(event_id);
        """,
    ),
    (
        "0009_imports",
        """
        -- Imports commit in parts, so a large one never holds the write lock for long; a
        -- row left unfinished is an import a crash cut short (importing it again resumes).
        CREATE TABLE imports (
            path TEXT PRIMARY KEY,
            events INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT
        );
        """,
    ),
    (
        "0010_forgetting",
        """
        -- History stays append-only, except inside a forget (app/forget.py): a forgotten
        -- memory's old values leave its history too. The forget puts the one row here and
        -- takes it out in its own transaction, so no other write ever finds it open.
        CREATE TABLE forgetting (open INTEGER PRIMARY KEY CHECK (open = 1));
        DROP TRIGGER history_no_update;
        DROP TRIGGER history_no_delete;
        CREATE TRIGGER history_no_update BEFORE UPDATE ON history
            WHEN NOT EXISTS (SELECT 1 FROM forgetting)
            BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
        CREATE TRIGGER history_no_delete BEFORE DELETE ON history
            WHEN NOT EXISTS (SELECT 1 FROM forgetting)
            BEGIN SELECT RAISE(ABORT, 'history is append-only'); END;
        """,
    ),
)


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database lacks, each in its own transaction; return their
    names. Each is checked again under the write lock: processes starting together on a new
    memory (the capture service and the dashboard) would otherwise both apply it."""
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    applied = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                continue  # another process applied it meanwhile
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO _migrations VALUES (?, datetime('now'))", (name,)
            )
        applied.append(name)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements, buffer = [], ""
    for line in sql.splitlines():
        if line.strip().startswith("--"):
            continue
        buffer += line + "\n"
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return [s for s in statements if s]
