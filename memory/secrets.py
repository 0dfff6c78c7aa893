"""Find secrets and vault-worthy items in text, so secrets never reach storage or an index.

Everything Memlane keeps (chat turns, notes, OCR'd screens) passes through `scan` first: the
high-sensitivity values are cut out of the text and every finding goes to the knowledge vault.
Detection is regular expressions only, tuned to skip ordinary prose rather than flag it.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from app.errors import InvalidInput

# kind -> (vault entry type, sensitivity)
_META: dict[str, tuple[str, str]] = {
    "api_key": ("api_key", "high"),
    "private_key": ("api_key", "high"),
    "password": ("credential", "high"),
    "credential": ("credential", "high"),
    "card_number": ("credential", "high"),
    "otp": ("credential", "high"),
    "email": ("contact", "medium"),
    "phone": ("contact", "medium"),
    "url": ("bookmark", "low"),
    "custom": ("credential", "high"),
}


@dataclass(frozen=True)
class Finding:
    """One secret or vault-worthy value, located by character offsets in the scanned text."""

    kind: str
    entry_type: str
    value: str
    start: int
    end: int
    sensitivity: str
    label: str

    @property
    def redact(self) -> bool:
        """Only high-sensitivity values leave the text; contacts and links stay searchable."""
        return self.sensitivity == "high"


@dataclass(frozen=True)
class Scan:
    """The text with secrets replaced by ``[REDACTED <kind>]``, and all findings in order."""

    text: str
    findings: tuple[Finding, ...]


def _make(kind: str, text: str, start: int, end: int, label: str) -> Finding:
    entry_type, sensitivity = _META[kind]
    return Finding(kind, entry_type, text[start:end], start, end, sensitivity, label)


_L, _R = r"(?<![A-Za-z0-9_-])", r"(?![A-Za-z0-9_-])"
_KNOWN_KEYS = tuple(
    (label, re.compile(f"{_L}(?:{pattern}){_R}"))
    for label, pattern in (
        ("Anthropic API key", r"sk-ant-[A-Za-z0-9_-]{20,}"),
        ("OpenAI API key", r"sk-(?!ant-)(?:proj-)?[A-Za-z0-9_-]{20,}"),
        ("GitHub token", r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}"),
        ("AWS access key", r"(?:AKIA|ASIA)[0-9A-Z]{16}"),
        ("Slack token", r"xox[baprs]-[A-Za-z0-9-]{10,}"),
        ("Google API key", r"AIza[0-9A-Za-z_-]{35}"),
        ("Stripe key", r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}"),
        ("JSON Web Token", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        ("Hugging Face token", r"hf_[A-Za-z0-9]{30,}"),
    )
)
# Labels match but consume nothing past themselves (values sit in lookaheads), so one
# rejected candidate never hides the next label.
_LABELLED_KEY = re.compile(
    r"(?<![A-Za-z0-9_])(?P<label>(?:[A-Za-z0-9]+_){0,4}(?:api[ _-]?key|access[ _-]?key"
    r"|secret(?:[ _-]?key)?|(?:(?:access|auth|refresh|api)[ _-]?)?token)(?:_[A-Za-z0-9]+){0,4})"
    r"(?=[ \t]*(?:[:=]|is\b)[ \t]*[\"']?(?P<value>[A-Za-z0-9_\-./+]{16,}))"
    r"|(?<![A-Za-z0-9])bearer(?=[ \t]+(?P<bearer>[A-Za-z0-9_\-./+]{16,}))",
    re.IGNORECASE,
)
_PASSWORD = re.compile(
    r"(?<![A-Za-z0-9])(?P<label>pass ?(?:word|wd|code|phrase)|pwd|pw)(?![A-Za-z0-9])"
    r"(?=(?:[ \t]+(?:for|to|of)[ \t]+(?P<site>[\w.@-]+))?"
    r"(?P<sep>[ \t]*[:=][ \t]*|[ \t]+is[ \t]*:?[ \t]*|[ \t]+)"
    r"(?:\"(?P<dq>[^\"\n]+)\"|'(?P<sq>[^'\n]+)'|(?P<bare>[^\s\"']\S*)))",
    re.IGNORECASE,
)
_NOT_PASSWORDS = frozenset(
    "a an the my your our is was be for and or to of in on at it this that manager managers "
    "reset required optional forgot forgotten hidden changed expired incorrect correct wrong "
    "invalid weak strong protected field here below above again too not none n/a same saved "
    "please great good bad long short secure safe simple easy hard set fine ok okay stored "
    "password passwords".split()
)
_OTP = re.compile(
    r"(?<![A-Za-z0-9])(?P<label>otp|2fa|mfa|one[- ]?time(?:[ \t]+(?:pass)?code|[ \t]+password)?"
    r"|(?:(?:verification|security|login|sign-?in|auth(?:entication)?|confirmation|sms)"
    r"[ \t]*)?code)(?![A-Za-z0-9])"
    r"(?=[ \t]*(?:is[ \t]*)?[:=#-]?[ \t]*(?P<value>\d{3}[ -]\d{3}|\d{4,8})(?![ -]?\d))"
    r"|(?<![\d])(?P<before>\d{4,8})(?=[ \t]+is[ \t]+your[ \t]+(?:[A-Za-z-]+[ \t]+){0,2}"
    r"(?:code|otp|passcode)\b)",
    re.IGNORECASE,
)
_NOT_OTP_WORDS = frozenset(
    "zip postal post area country error status exit return source promo discount coupon "
    "product course class dress qr".split()
)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,22}(?!\d)")
_PEM = re.compile(
    r"-----BEGIN (?P<algo>[A-Z0-9 ]*?)PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
    r"(?:-----END [A-Z0-9 ]*?PRIVATE KEY(?: BLOCK)?-----|\Z)"
)
_URL_CREDENTIAL = re.compile(
    r"(?<![\w+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]+:(?P<pw>[^\s/@]+)@(?P<host>[A-Za-z0-9.-]+)"
)
_EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"
)
_PHONE = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?!\d)"
    r"|(?<![\w+(])(?:1[ .-])?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]\d{4}(?!\d)"
    r"|(?<![\w+])0\d{2,4}[ .-]\d{3,4}[ .-]\d{3,4}(?!\d)"
)
_URL = re.compile(r"(?<![\w@./])(?:https?://|www\.)[^\s<>\"'`]+", re.IGNORECASE)
_DOMAIN = re.compile(
    r"(?<![\w.-])(?:[a-z0-9-]+\.)+(?:com|org|net|io|dev|ai|co|app|me|gov|edu|uk|de|fr|ca|us"
    r"|info)(?![\w-])",
    re.IGNORECASE,
)
_SERVICE = re.compile(
    r"\b(?:github|gitlab|google|gmail|apple|icloud|microsoft|outlook|aws|amazon|netflix"
    r"|facebook|instagram|twitter|linkedin|slack|dropbox|paypal|spotify|discord|wi-?fi|router"
    r"|bank)\b",
    re.IGNORECASE,
)
_TRAILING = ".,;:?)]}'\""


def _luhn(digits: str) -> bool:
    """The card-number checksum: it rejects nine in ten random digit strings."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _card_shape(groups: list[str]) -> bool:
    """Real cards print as one run, groups of four, or Amex 4-6-5; dates and ids do not."""
    sizes = [len(g) for g in groups]
    return len(groups) == 1 or sizes in ([4, 6, 5], [4, 6, 4]) or (
        all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 4
    )


def _site_near(text: str, start: int, end: int) -> str | None:
    """The domain, else the service name, closest to a secret on its line (within 120 chars)."""
    lo, hi = text.rfind("\n", max(0, start - 120), start) + 1, text.find("\n", end, end + 120)
    lo, hi = max(lo, start - 120), min(len(text), end + 120) if hi < 0 else hi
    for pattern in (_DOMAIN, _SERVICE):
        hits = [m for m in pattern.finditer(text, lo, hi) if m.end() <= start or m.start() >= end]
        if hits:
            best = min(hits, key=lambda m: abs(m.start() - start))
            return best.group().lower().removeprefix("www.")
    return None


def _private_keys(text: str) -> Iterator[Finding]:
    for m in _PEM.finditer(text):
        label = f"{m['algo']}private key".strip() if m["algo"] else "private key"
        yield _make("private_key", text, m.start(), m.end(), label)


def _url_credentials(text: str) -> Iterator[Finding]:
    for m in _URL_CREDENTIAL.finditer(text):
        yield _make("credential", text, *m.span("pw"), f"credential for {m['host']}")


def _known_keys(text: str) -> Iterator[Finding]:
    for label, pattern in _KNOWN_KEYS:
        for m in pattern.finditer(text):
            yield _make("api_key", text, m.start(), m.end(), label)


def _labelled_keys(text: str) -> Iterator[Finding]:
    for m in _LABELLED_KEY.finditer(text):
        group = "value" if m["value"] else "bearer"
        start, value = m.start(group), m[group].rstrip(".")
        if len(value) >= 16 and re.search(r"\d", value) and re.search(r"[A-Za-z]", value):
            label = "bearer token" if group == "bearer" else f"secret labelled {m['label']}"
            yield _make("api_key", text, start, start + len(value), label)


def _cards(text: str) -> Iterator[Finding]:
    for m in _CARD.finditer(text):
        groups = re.split(r"[ -]", m.group())
        for k in range(len(groups), 0, -1):
            digits = "".join(groups[:k])
            if 13 <= len(digits) <= 19 and digits[0] in "23456" and _card_shape(groups[:k]):
                if _luhn(digits):
                    end = m.start() + len(groups[:k]) - 1 + len(digits)
                    yield _make("card_number", text, m.start(), end, f"card ending {digits[-4:]}")
                    break


def _otps(text: str) -> Iterator[Finding]:
    for m in _OTP.finditer(text):
        group = "value" if m["value"] else "before"
        if group == "value":
            previous = re.search(r"([A-Za-z]+)[ \t]*$", text[max(0, m.start() - 24) : m.start()])
            if previous and previous.group(1).lower() in _NOT_OTP_WORDS:
                continue
            if m["label"].lower() == "code" and re.fullmatch(r"(?:19|20)\d\d", m["value"]):
                continue
        yield _make("otp", text, *m.span(group), "one-time code")


def _passwords(text: str) -> Iterator[Finding]:
    for m in _PASSWORD.finditer(text):
        group = next(g for g in ("dq", "sq", "bare") if m[g] is not None)
        value = m[group].rstrip(_TRAILING) if group == "bare" else m[group]
        loose = not m["sep"].strip()  # "passcode X": only a full word, only a code-like value
        if (
            len(value) < 3
            or value.lower() in _NOT_PASSWORDS
            or set(value) <= set("*•●·")
            or (loose and (m["label"].lower() in ("pw", "pwd") or value.isalpha()))
            or (loose and re.fullmatch(r"(?:19|20)\d\d", value))
        ):
            continue
        start, end = m.start(group), m.start(group) + len(value)
        site = m["site"].rstrip(_TRAILING) if m["site"] else _site_near(text, start, end)
        yield _make("password", text, start, end, f"password for {site}" if site else "password")


def _emails(text: str) -> Iterator[Finding]:
    for m in _EMAIL.finditer(text):
        yield _make("email", text, m.start(), m.end(), "email address")


def _phones(text: str) -> Iterator[Finding]:
    for m in _PHONE.finditer(text):
        digits = sum(c.isdigit() for c in m.group())
        if (8 if m.group().startswith("+") else 10) <= digits <= 15:
            yield _make("phone", text, m.start(), m.end(), "phone number")


def _urls(text: str) -> Iterator[Finding]:
    for m in _URL.finditer(text):
        url = m.group().rstrip(_TRAILING + "!")
        place = re.sub(r"^(?:https?://)?(?:www\.)?", "", url, flags=re.IGNORECASE)
        place = re.split(r"[?#]", place)[0].rstrip("/")[:60]
        yield _make("url", text, m.start(), m.start() + len(url), f"bookmark {place}")


# Earlier detectors are more specific and win overlaps among high-sensitivity findings.
_DETECTORS: tuple[Callable[[str], Iterator[Finding]], ...] = (
    _private_keys, _url_credentials, _known_keys, _labelled_keys, _cards, _otps, _passwords,
    _emails, _phones, _urls,
)


def _redacted(text: str, findings: list[Finding]) -> str:
    parts, pos = [], 0
    for f in findings:
        if f.redact:
            parts += [text[pos : f.start], f"[REDACTED {f.kind}]"]
            pos = f.end
    parts.append(text[pos:])
    return "".join(parts)


def rules_of(patterns: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    """The user's own redaction rules (regular expressions, case-insensitive), compiled;
    a pattern that does not compile, or matches empty text, is an `InvalidInput`."""
    rules = []
    for pattern in patterns:
        try:
            rule = re.compile(pattern, re.IGNORECASE)
        except re.error as bad:
            raise InvalidInput(f"redaction rule {pattern!r} is not a valid regular "
                               f"expression: {bad}") from bad
        if rule.search(""):
            raise InvalidInput(f"redaction rule {pattern!r} matches empty text")
        rules.append(rule)
    return tuple(rules)


def _custom(rules: Sequence[re.Pattern[str]]) -> Callable[[str], Iterator[Finding]]:
    def detect(text: str) -> Iterator[Finding]:
        for rule in rules:
            for m in rule.finditer(text):
                yield _make("custom", text, m.start(), m.end(), "matched your rule")
    return detect


def scan(text: str, rules: Sequence[re.Pattern[str]] = ()) -> Scan:
    """Find every secret, contact and link in `text` and redact the secrets; `rules` are
    the user's own patterns, cut out like secrets.

    Overlaps resolve to one finding: secrets beat contacts and links (so a token inside a URL
    is still removed), the more specific detector wins among secrets, the longer match
    otherwise.
    """
    detectors = (*_DETECTORS, _custom(rules)) if rules else _DETECTORS
    candidates = [(rank, f) for rank, detect in enumerate(detectors) for f in detect(text)]
    candidates.sort(key=lambda c: (not c[1].redact, c[0] if c[1].redact else 0,
                                   c[1].start - c[1].end, c[0], c[1].start))
    chosen: list[Finding] = []  # kept sorted by start, so each overlap check is a bisect
    for _, f in candidates:
        i = bisect.bisect(chosen, f.start, key=lambda c: c.start)
        if (i == 0 or chosen[i - 1].end <= f.start) and (
            i == len(chosen) or f.end <= chosen[i].start
        ):
            chosen.insert(i, f)
    return Scan(_redacted(text, chosen), tuple(chosen))
