"""chat_core.chat.prompts: the default system prompt with the user's context, or Langfuse's
when configured."""

import sys
import types

import pytest
from chat_core.chat import prompts
from chat_core.chat.prompts import DEFAULT_SYSTEM_PROMPT, build_system_prompt

pytestmark = pytest.mark.usefixtures("redis_target")  # the user store is read for the prompt


@pytest.fixture(autouse=True)
def _fresh_langfuse_client():
    prompts._langfuse.cache_clear()
    yield
    prompts._langfuse.cache_clear()


async def test_the_default_prompt_carries_who_the_user_is_and_what_they_look_at():
    prompt = await build_system_prompt(
        "u42", {"url": "https://shop.example/cart", "content": "3 items"}
    )
    assert prompt.startswith(DEFAULT_SYSTEM_PROMPT.split("{")[0])
    assert "u42" in prompt and "https://shop.example/cart" in prompt and "3 items" in prompt
    assert "anonymous" in await build_system_prompt(None)


class _Prompt:
    def __init__(self, template: str) -> None:
        self.template = template

    def compile(self, **variables: str) -> str:
        return self.template.format(**variables)


def _langfuse_module(get_prompt) -> types.ModuleType:
    module = types.ModuleType("langfuse")

    class Langfuse:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

        def get_prompt(self, name, **options):
            return get_prompt(name, **options)

    module.Langfuse = Langfuse
    return module


async def test_a_langfuse_prompt_is_used_when_its_keys_are_set(settings_env, monkeypatch):
    settings_env(
        langfuse_public_key="pk", langfuse_secret_key="sk", langfuse_prompt_name="support-v2"
    )
    asked = []
    monkeypatch.setitem(
        sys.modules,
        "langfuse",
        _langfuse_module(
            lambda name, **options: (
                asked.append((name, options)) or _Prompt("Managed. {users_information}")
            )
        ),
    )
    prompt = await build_system_prompt("u1")
    assert prompt.startswith("Managed. ") and "u1" in prompt
    # Langfuse's own defaults unless configured: the production label, a minute's cache.
    assert asked == [("support-v2", {"label": None, "cache_ttl_seconds": 60})]


async def test_the_langfuse_label_and_cache_ttl_are_settings(settings_env, monkeypatch):
    settings_env(
        langfuse_public_key="pk",
        langfuse_secret_key="sk",
        langfuse_prompt_label="latest",
        langfuse_cache_ttl_seconds=0,
    )
    asked = []
    monkeypatch.setitem(
        sys.modules,
        "langfuse",
        _langfuse_module(
            lambda name, **options: asked.append(options) or _Prompt("Staging. {users_information}")
        ),
    )
    assert (await build_system_prompt("u1")).startswith("Staging. ")
    assert asked == [{"label": "latest", "cache_ttl_seconds": 0}]


async def test_langfuse_failing_falls_back_to_the_default(settings_env, monkeypatch, caplog):
    settings_env(langfuse_public_key="pk", langfuse_secret_key="sk")

    def unreachable(name, **options):
        raise ConnectionError("langfuse.example unreachable")

    monkeypatch.setitem(sys.modules, "langfuse", _langfuse_module(unreachable))
    prompt = await build_system_prompt("u1")
    assert prompt.startswith(DEFAULT_SYSTEM_PROMPT.split("{")[0])
    assert "using the default" in caplog.text


async def test_without_keys_langfuse_is_never_touched(monkeypatch):
    monkeypatch.setitem(sys.modules, "langfuse", None)  # importing it would fail
    assert (await build_system_prompt("u1")).startswith(DEFAULT_SYSTEM_PROMPT.split("{")[0])
