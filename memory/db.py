"""The SQLite connection: WAL, migrations, and transactions that nest."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from memory.migrations import migrate


def utcnow() -> str:
    return datetime.now(UTC).isoformat()


def _write_ahead(conn: sqlite3.Connection, tries: int = 100) -> None:
    """Switch a database to WAL (kept in the file: later opens find it on). On a new file
    the switch needs it alone, and SQLite answers "database is locked" at once rather than
    waiting when processes starting together (capture and the dashboard) each try it."""
    for _ in range(tries - 1):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as busy:
            if "locked" not in str(busy):
                raise
            time.sleep(0.05)
    conn.execute("PRAGMA journal_mode=WAL")


class Database:
    """One connection to the truth store, shared by the threads of a process (capture,
    imports, chat, the dashboard). A transaction belongs to the thread that opened it:
    another thread's statements wait until it ends, so they neither join it (and vanish
    with its rollback) nor read what it has not committed. Other processes hold their own
    connection; WAL lets them read while one writes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        _write_ahead(self.conn)
        self.conn.execute("PRAGMA synchronous=FULL")  # a commit survives power loss too
        self.conn.execute("PRAGMA foreign_keys=ON")
        # another process's write (an import's part, a capture flush) is waited for, not
        # failed: on a slow, busy machine a part can hold the lock for many seconds
        self.conn.execute("PRAGMA busy_timeout=60000")
        self.conn.execute("PRAGMA secure_delete=ON")  # deleted rows are zeroed, not left
        migrate(self.conn)
        self._depth = 0
        self._lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing; an inner transaction becomes a savepoint of the outer one."""
        with self._lock:
            name = f"sp{self._depth}"
            self.conn.execute("BEGIN IMMEDIATE" if self._depth == 0 else f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self.conn
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self.conn.execute("ROLLBACK")
                else:
                    self.conn.execute(f"ROLLBACK TO {name}")
                    self.conn.execute(f"RELEASE {name}")
                raise
            self._depth -= 1
            self.conn.execute("COMMIT" if self._depth == 0 else f"RELEASE {name}")

    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        with self._lock:
            return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[tuple]) -> sqlite3.Cursor:
        with self._lock:
            return self.conn.executemany(sql, rows)

    def erase_freed(self) -> None:
        """Take what deleted or sealed rows left behind out of the files: secure_delete has
        zeroed their pages, and a truncating checkpoint copies the write-ahead log into the
        database and empties it, old page images included."""
        with self._lock:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.conn.close()
