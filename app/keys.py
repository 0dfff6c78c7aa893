"""The keys of a memory home: where they are kept, and locking and unlocking.

The data folder holds only `keys.json`: the home's key id, its public key, and (once the
user chose a passphrase) the private key sealed with a key derived from that passphrase by
scrypt. The private key itself, and the pepper of the vault's ids, live in a key store
outside the data folder: the OS keyring, or a file in the user's configuration folder.
Locking removes the private key from the key store; unlocking derives it again from the
passphrase. So a copy of the data folder opens nothing, and a locked memory goes on
capturing and searching, with its secrets and screenshots shut.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from app.errors import InvalidInput, Locked
from app.files import replace_file
from app.settings import Settings
from memory.sealing import TEXT_PREFIX, Opener, Sealer, new_private_key, pepper_of, public_of
from memory.stores import SECRET

if TYPE_CHECKING:
    from app.container import Memlane
    from memory.records import Record

log = logging.getLogger(__name__)
KEYS_FILE = "keys.json"
SERVICE = "memlane"
SCRYPT = {"n": 2**15, "r": 8, "p": 1}
"""About 0.1 s and 32 MB for each try: slow for someone guessing, quick for the user."""
MIN_PASSPHRASE = 8


class KeyStore(Protocol):
    """Where keys are kept, outside the data folder."""

    name: str

    def get(self, item: str) -> str | None: ...

    def put(self, item: str, value: str) -> None: ...

    def remove(self, item: str) -> None: ...


@dataclass(frozen=True)
class KeyFolder:
    """Key files readable by their owner only, in a folder of their own."""

    folder: Path

    @property
    def name(self) -> str:
        return f"key files in {self.folder}"

    def _path(self, item: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", item):
            raise InvalidInput(f"{item!r} is not a key name")
        return self.folder / item

    def get(self, item: str) -> str | None:
        try:
            return self._path(item).read_text()
        except FileNotFoundError:
            return None

    def put(self, item: str, value: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._path(item)
        partial = path.with_name(path.name + ".partial")  # names hold dots: "<id>.private"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)

    def remove(self, item: str) -> None:
        self._path(item).unlink(missing_ok=True)


@dataclass(frozen=True)
class OSKeyring:
    """The desktop's keyring (Secret Service, KWallet, macOS Keychain) through `keyring`."""

    backend: Any

    @property
    def name(self) -> str:
        return f"the OS keyring ({type(self.backend).__name__})"

    def get(self, item: str) -> str | None:
        return self.backend.get_password(SERVICE, item)

    def put(self, item: str, value: str) -> None:
        self.backend.set_password(SERVICE, item, value)

    def remove(self, item: str) -> None:
        from keyring.errors import PasswordDeleteError

        try:
            self.backend.delete_password(SERVICE, item)
        except PasswordDeleteError:
            pass  # nothing there: already removed


def os_keyring() -> OSKeyring | None:
    """The desktop's keyring if it has a working one; None on a headless machine."""
    try:
        import keyring
        from keyring.backends import chainer, fail

        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring) or (
                isinstance(backend, chainer.ChainerBackend) and not backend.backends):
            return None
        backend.get_password(SERVICE, "probe")  # a locked or absent daemon fails here
    except Exception as failed:  # keyring backends raise many kinds of errors
        log.info("no usable OS keyring (%s); keys go to files", failed)
        return None
    return OSKeyring(backend)


def key_store(settings: Settings) -> KeyStore:
    if settings.key_store == "file":
        return KeyFolder(settings.key_dir)
    keyring = os_keyring()
    if keyring is None and settings.key_store == "keyring":
        raise Locked("key_store is \"keyring\" but this desktop has no working OS keyring; "
                     "set it to \"auto\" or \"file\"")
    return keyring or KeyFolder(settings.key_dir)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def _passphrase_key(passphrase: str, salt: bytes, params: dict[str, int]) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=32, **params).derive(passphrase.encode())


class HomeKeys:
    """The keys of one data folder, made on its first open."""

    def __init__(self, home: Path, store: KeyStore) -> None:
        self.path, self.store = home / KEYS_FILE, store
        if not self.path.exists():
            self._create()
        self.record: dict[str, Any] = json.loads(self.path.read_text())
        self.id: str = self.record["id"]
        pepper = store.get(self._item("pepper"))
        self.sealer = Sealer(_unb64(self.record["public"]), _unb64(pepper) if pepper else None)
        if pepper is None:
            log.warning("the key store has no key for %s: its secrets and screenshots "
                        "stay shut until `memlane unlock`", home)

    def _item(self, what: str) -> str:
        return f"{self.id}.{what}"

    def _create(self) -> None:
        """A new key pair: the private key goes to the key store before keys.json names it,
        so a crash between the two leaves no home whose key was never kept. Two processes
        opening a new home at once (the service and the dashboard) agree on one pair: the
        first to link its keys.json wins, the other forgets its own."""
        self.id = uuid.uuid4().hex
        private = new_private_key()
        self._keep(private)
        mine = self.path.with_name(f"{KEYS_FILE}.{self.id}")
        replace_file(mine, json.dumps({"id": self.id, "public": _b64(public_of(private)),
                                       "sealed_existing": False}, indent=1))
        try:
            os.link(mine, self.path)
        except FileExistsError:
            for what in ("private", "pepper"):
                self.store.remove(self._item(what))
        finally:
            mine.unlink()

    def _keep(self, private: bytes) -> None:
        self.store.put(self._item("private"), _b64(private))
        self.store.put(self._item("pepper"), _b64(pepper_of(private)))

    def _save(self, record: dict[str, Any]) -> None:
        self.record = record
        replace_file(self.path, json.dumps(record, indent=1))

    # -- state --------------------------------------------------------------------------------
    @property
    def locked(self) -> bool:
        return self.store.get(self._item("private")) is None

    @property
    def has_passphrase(self) -> bool:
        """Read again each time: another process (`memlane lock`) may have set it."""
        self.record = json.loads(self.path.read_text())
        return "wrapped" in self.record

    def opener(self) -> Opener:
        """The private key, looked up each time, so `memlane lock` shuts every running
        process at once."""
        private = self.store.get(self._item("private"))
        if private is None:
            raise Locked("Memlane is locked: run `memlane unlock` to see secrets and "
                         "screenshots" if self.has_passphrase else
                         f"the key of this memory's secrets and screenshots is not in "
                         f"{self.store.name}: they cannot be opened on this machine")
        return Opener(_unb64(private))

    # -- locking --------------------------------------------------------------------------------
    def set_passphrase(self, passphrase: str) -> None:
        """Keep the private key sealed by a passphrase in keys.json, so it can be unlocked
        (and the memory moved) without the key store."""
        if len(passphrase) < MIN_PASSPHRASE:
            raise InvalidInput(f"a passphrase needs at least {MIN_PASSPHRASE} characters")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        private = self.opener().private
        salt, nonce = os.urandom(16), os.urandom(12)
        sealed = AESGCM(_passphrase_key(passphrase, salt, SCRYPT)).encrypt(
            nonce, private, self.id.encode())
        self._save({**self.record, "wrapped": {
            "kdf": "scrypt", **SCRYPT, "salt": _b64(salt), "nonce": _b64(nonce),
            "key": _b64(sealed)}})

    def lock(self) -> None:
        if not self.has_passphrase:
            raise InvalidInput("choose a passphrase first: without one a locked memory "
                               "could never be opened again")
        self.store.remove(self._item("private"))

    def unlock(self, passphrase: str) -> None:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not self.has_passphrase:
            raise InvalidInput("this memory has no passphrase: it is never locked")
        wrapped = self.record["wrapped"]
        key = _passphrase_key(passphrase, _unb64(wrapped["salt"]),
                              {name: wrapped[name] for name in SCRYPT})
        try:
            private = AESGCM(key).decrypt(_unb64(wrapped["nonce"]), _unb64(wrapped["key"]),
                                          self.id.encode())
        except InvalidTag as wrong:
            raise InvalidInput("wrong passphrase; Memlane stays locked") from wrong
        self._keep(private)

    def mark_sealed(self) -> None:
        self._save({**self.record, "sealed_existing": True})


def seal_existing(memlane: Memlane) -> None:
    """Seal what was stored before sealing began, once: vault secrets (filed again under
    their keyed ids) and picture files. Then the old pages go from the database's files."""
    from capture.shots import FrameStore

    stores = memlane.stores

    def plain() -> list[Record]:
        return [record for record in stores.iter_all("vault")
                if not record.fields.get(SECRET, "").startswith(TEXT_PREFIX)]

    unsealed = bool(plain())  # a write lock only when there is something to seal: every
    if unsealed:              # process opening a new home at once comes here
        with memlane.db.transaction():
            for record in plain():
                value = record.fields.get(SECRET, "")
                stores.delete(record.id, actor="sealing")
                stores.add(replace(record, id=stores.vault_id(record.fields["entry_type"],
                                                              value)), actor="sealing")
    sealed = FrameStore(memlane.db, memlane.settings.home, memlane.keys).seal_existing()
    if unsealed or sealed:
        memlane.db.erase_freed()
    memlane.keys.mark_sealed()
    if sealed:
        log.info("sealed %d picture files stored before encryption at rest", sealed)
