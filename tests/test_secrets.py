"""Secrets are found with exact values and cut from the text; ordinary prose is left alone."""

from __future__ import annotations

import pytest

from memory.secrets import Finding, scan

OPENAI = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8t"
ANTHROPIC = "sk-ant-api03-" + "Zy1xWv4uTs7rQp0oNm3lKj"
GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
PAT = "github_pat_11ABCDEFG0123456789_abcdefghijkl"
GOOGLE = "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"
STRIPE = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
HF = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFU"


def only(text: str) -> Finding:
    """The single finding in `text`, failing loudly when there are none or several."""
    findings = scan(text).findings
    assert len(findings) == 1, findings
    return findings[0]


@pytest.mark.parametrize(
    ("text", "value", "label"),
    [
        (f"my key is {OPENAI} ok", OPENAI, "OpenAI API key"),
        (f"ANTHROPIC_API_KEY={ANTHROPIC}", ANTHROPIC, "Anthropic API key"),
        (f"push with {GITHUB}", GITHUB, "GitHub token"),
        (f"token {PAT}", PAT, "GitHub token"),
        ("aws AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE", "AWS access key"),
        ("slack xoxb-1234567890-abcdefABCDEF", "xoxb-1234567890-abcdefABCDEF", "Slack token"),
        (f"maps {GOOGLE}", GOOGLE, "Google API key"),
        (f"stripe {STRIPE}", STRIPE, "Stripe key"),
        (f"jwt {JWT}", JWT, "JSON Web Token"),
        (f"hf {HF}.", HF, "Hugging Face token"),
        ("api key: abcd1234efgh5678ijkl", "abcd1234efgh5678ijkl", "secret labelled api key"),
        ("MY_SERVICE_TOKEN=abcd1234efgh5678ijkl", "abcd1234efgh5678ijkl",
         "secret labelled MY_SERVICE_TOKEN"),
        ("secret: 9f8e7d6c5b4a39281706", "9f8e7d6c5b4a39281706", "secret labelled secret"),
        ("Authorization: Bearer abcdef1234567890abcdef.", "abcdef1234567890abcdef", "bearer token"),
    ],
)
def test_api_keys_are_found_and_redacted(text: str, value: str, label: str) -> None:
    result = scan(text)
    (finding,) = result.findings
    assert (finding.kind, finding.entry_type, finding.value) == ("api_key", "api_key", value)
    assert finding.label == label and finding.sensitivity == "high" and finding.redact
    assert text[finding.start : finding.end] == value
    assert value not in result.text and "[REDACTED api_key]" in result.text


@pytest.mark.parametrize(
    ("text", "value", "label"),
    [
        ("Password : hunter2!x", "hunter2!x", "password"),
        ("my github password is s3cret!", "s3cret!", "password for github"),
        ("login at github.com, pw: correct-horse-9", "correct-horse-9", "password for github.com"),
        ("passcode 849302", "849302", "password"),
        ("pwd=Tr0ub4dor&3", "Tr0ub4dor&3", "password"),
        ('password for example.org: "two words 7"', "two words 7", "password for example.org"),
        ("Password: hunter22.", "hunter22", "password"),
    ],
)
def test_passwords_give_the_value_not_the_label(text: str, value: str, label: str) -> None:
    result = scan(text)
    finding = only(text)
    assert (finding.kind, finding.entry_type, finding.value, finding.label) == (
        "password", "credential", value, label,
    )
    assert value not in result.text and "[REDACTED password]" in result.text


def test_card_numbers_pass_luhn_and_are_labelled_by_last_four() -> None:
    for text, value in [
        ("card 4242 4242 4242 4242 exp 12/25", "4242 4242 4242 4242"),
        ("visa 4111-1111-1111-1111", "4111-1111-1111-1111"),
        ("amex 378282246310005", "378282246310005"),
    ]:
        result = scan(text)
        finding = only(text)
        assert (finding.kind, finding.value) == ("card_number", value)
        assert finding.label == f"card ending {value[-4:]}"
        assert value not in result.text and "exp 12/25" not in value


def test_a_number_failing_luhn_is_not_a_card() -> None:
    assert scan("ref 4242424242424241").findings == ()
    assert scan("ref 4242 4242 4242 4241").findings == ()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Your verification code: 482913", "482913"),
        ("482913 is your Google verification code", "482913"),
        ("OTP 7731", "7731"),
        ("2FA: 55120934", "55120934"),
        ("code : 123 456", "123 456"),
        ("one-time password: 654321", "654321"),
    ],
)
def test_one_time_codes(text: str, value: str) -> None:
    result = scan(text)
    finding = only(text)
    assert (finding.kind, finding.value, finding.sensitivity) == ("otp", value, "high")
    assert value not in result.text


def test_private_key_block_is_redacted_whole() -> None:
    block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----"
    result = scan(f"key:\n{block}\nthanks")
    (finding,) = result.findings
    assert (finding.kind, finding.value, finding.label) == ("private_key", block, "RSA private key")
    assert result.text == "key:\n[REDACTED private_key]\nthanks"


def test_url_credentials_redact_only_the_password() -> None:
    text = "db at postgres://bob:pa55w0rd@db.example.com:5432/app"
    result = scan(text)
    finding = only(text)
    assert (finding.kind, finding.value) == ("credential", "pa55w0rd")
    assert finding.label == "credential for db.example.com"
    assert result.text == "db at postgres://bob:[REDACTED credential]@db.example.com:5432/app"


def test_contacts_and_bookmarks_are_found_but_kept() -> None:
    text = (
        "mail bob@example.com, call +1 (555) 123-4567 or 020 7946 0958,"
        " see https://example.com/docs?x=1."
    )
    result = scan(text)
    assert result.text == text
    assert [(f.kind, f.value, f.sensitivity, f.redact) for f in result.findings] == [
        ("email", "bob@example.com", "medium", False),
        ("phone", "+1 (555) 123-4567", "medium", False),
        ("phone", "020 7946 0958", "medium", False),
        ("url", "https://example.com/docs?x=1", "low", False),
    ]
    assert result.findings[-1].label == "bookmark example.com/docs"
    assert result.findings[-1].entry_type == "bookmark"


@pytest.mark.parametrize(
    "text",
    [
        "I passed the code review",
        "my password manager is great",
        "the password is correct",
        "the year 2023",
        "call me at 5",
        "order #12345",
        "zip code 90210",
        "error code 5001 in 2023",
        "secret: internationalization",
        "met on 2023-01-15 at 10:30 with 20 people",
        "version 1.2.3 shipped 12/05/2024",
        "Forgot password? Password: ********",
    ],
)
def test_prose_has_no_secrets(text: str) -> None:
    assert [f for f in scan(text).findings if f.redact] == []
    assert not [f for f in scan(text).findings if f.kind == "phone"]


def test_overlapping_candidates_resolve_to_one_finding() -> None:
    labelled = only(f"OPENAI_API_KEY={OPENAI}")
    assert labelled.label == "OpenAI API key"
    assert only(f"Authorization: Bearer {JWT}").label == "JSON Web Token"
    assert only("one-time password: 654321").kind == "otp"
    in_url = scan("https://x.example.com/cb?token=abcd1234efgh5678ijkl")
    assert [f.kind for f in in_url.findings] == ["api_key"]
    assert in_url.text == "https://x.example.com/cb?token=[REDACTED api_key]"


def test_findings_are_in_text_order_and_do_not_overlap() -> None:
    text = f"pw: hunter22 then {GITHUB} and mail a@b.co, card 4242424242424242"
    findings = scan(text).findings
    assert [f.kind for f in findings] == ["password", "api_key", "email", "card_number"]
    assert all(a.end <= b.start for a, b in zip(findings, findings[1:], strict=False))


def test_redaction_keeps_the_surrounding_words() -> None:
    text = f"Hi Ana, the key is {OPENAI} and the Password: hunter2!x, thanks."
    assert scan(text).text == (
        "Hi Ana, the key is [REDACTED api_key] and the Password: [REDACTED password], thanks."
    )


def test_empty_text() -> None:
    assert scan("").text == "" and scan("").findings == ()


def test_password_site_comes_from_the_same_line_only() -> None:
    assert only("github.com\npw: abc123").label == "password"
    assert only("github.com pw: abc123").label == "password for github.com"


def test_the_users_own_rules_cut_what_they_match() -> None:
    from memory.secrets import rules_of

    rules = rules_of([r"project\s+falcon", r"\bINV-\d+"])
    result = scan("Project  Falcon ships with invoice INV-2291 on Friday.", rules)
    assert result.text == "[REDACTED custom] ships with invoice [REDACTED custom] on Friday."
    assert [f.kind for f in result.findings] == ["custom", "custom"]


@pytest.mark.parametrize(("pattern", "says"), [("(unclosed", "not a valid regular expression"),
                                               ("x*", "matches empty text")])
def test_a_bad_rule_is_refused_by_name(pattern: str, says: str) -> None:
    from app.errors import InvalidInput
    from memory.secrets import rules_of

    with pytest.raises(InvalidInput, match=says):
        rules_of([pattern])
