from __future__ import annotations

import pytest

from core.settings import SettingsError, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("XIANKE_TIMEZONE", "XIANKE_TELEGRAM_TOKEN", "XIANKE_MARKETER_CHAT_IDS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(_env_file=None)
    assert settings.timezone == "Asia/Shanghai"
    assert settings.zone.key == "Asia/Shanghai"
    assert settings.database_path == settings.data_dir / "xianke.db"
    assert settings.marketer_chat_ids == []


def test_lists_and_secrets_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XIANKE_MARKETER_CHAT_IDS", "-1001, -1002")
    monkeypatch.setenv("XIANKE_ADMIN_USER_IDS", "[7, 8]")
    monkeypatch.setenv("XIANKE_TELEGRAM_TOKEN", "123456:ABCdefGhIJKlmnOPQrstUVwxyz0123")
    settings = load_settings(_env_file=None)
    assert settings.marketer_chat_ids == [-1001, -1002]
    assert settings.admin_user_ids == [7, 8]
    assert "ABCdef" not in repr(settings)  # secrets stay hidden in reprs and logs


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("XIANKE_TIMEZONE", "Mars/Olympus"),
        ("XIANKE_TELEGRAM_TOKEN", "not-a-token"),
        ("XIANKE_STAFF_CHAT_ID", "staff"),
        ("XIANKE_MARKETER_CHAT_IDS", "1,two"),
        ("XIANKE_WEBHOOK_URL", "ftp://example"),
        ("XIANKE_WEBHOOK_SECRET", "has spaces!"),
        ("XIANKE_LOG_LEVEL", "LOUD"),
    ],
)
def test_invalid_values_fail_with_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None)
    message = str(info.value)
    assert variable in message
    assert "\n" not in message


def test_dotenv_file(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XIANKE_TIMEZONE", raising=False)
    env = tmp_path / ".env"
    env.write_text("XIANKE_TIMEZONE=Asia/Hong_Kong\n", encoding="utf-8")
    assert load_settings(_env_file=env).timezone == "Asia/Hong_Kong"
