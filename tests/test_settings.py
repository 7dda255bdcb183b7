"""chat_core.settings: `.env` in the working folder is read, the real environment wins, and
`.env.example` documents exactly the settings there are, with their defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from chat_core.settings import ENV_FILE, Settings, get_settings
from pydantic import AliasChoices

REPO = Path(__file__).resolve().parents[1]


def env_name(field: str) -> str:
    """The variable a setting is documented under: its first alias, else CHAT_<NAME>."""
    alias = Settings.model_fields[field].validation_alias
    return alias.choices[0] if isinstance(alias, AliasChoices) else f"CHAT_{field.upper()}"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder as the working directory, with `.env` reading on (the suite turns it
    off so a developer's own `.env` cannot reach the tests)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(Settings.model_config, "env_file", ENV_FILE)
    get_settings.cache_clear()
    return tmp_path


def test_dotenv_is_read_and_the_real_environment_wins(project: Path, monkeypatch) -> None:
    (project / ".env").write_text(
        "# a comment\n"
        "CHAT_MODEL=model-from-dotenv\n"
        "CHAT_TITLE_MODEL=title-from-dotenv\n"
        "CHAT_STREAM_TTL_SECONDS=1234\n"
        "OPEN_ROUTER_API_KEY=sk-from-dotenv\n"
        "SOMETHING_ELSE=ignored\n"
    )
    monkeypatch.setenv("CHAT_TITLE_MODEL", "title-from-env")

    settings = get_settings()
    assert settings.model == "model-from-dotenv"
    assert settings.stream_ttl_seconds == 1234
    assert settings.secret("llm_api_key") == "sk-from-dotenv"  # the fallback name works too
    assert settings.title_model == "title-from-env"

    monkeypatch.setenv("CHAT_LLM_API_KEY", "sk-from-env")
    get_settings.cache_clear()
    assert get_settings().secret("llm_api_key") == "sk-from-env"


def test_without_dotenv_the_defaults_hold(project: Path) -> None:
    settings = get_settings()
    assert settings.llm_api_key is None and settings.stream_ttl_seconds == 3600


def test_env_example_lists_every_setting_with_its_default() -> None:
    documented: dict[str, str] = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        match = re.fullmatch(r"#\s?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            assert match[1] not in documented, f"{match[1]} is listed twice"
            documented[match[1]] = match[2]

    expected = {}
    for field, info in Settings.model_fields.items():
        default = info.get_default(call_default_factory=True)
        expected[env_name(field)] = "" if default is None else str(default)
    missing = [f"# {name}={value}" for name, value in expected.items() if name not in documented]
    assert not missing, "add to .env.example:\n" + "\n".join(missing)
    assert set(documented) == set(expected), (
        f"not settings any more: {sorted(set(documented) - set(expected))}"
    )
    wrong = {n: (documented[n], expected[n]) for n in expected if documented[n] != expected[n]}
    assert not wrong, f".env.example defaults differ (listed, actual): {wrong}"
