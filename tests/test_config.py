"""Settings: a TOML file, environment overrides, option overrides, and one clear error per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow import InputError
from workflow.config import Settings, load_settings


def test_file_then_environment_then_options(tmp_path: Path) -> None:
    """The environment overrides the file; an option overrides both; the rest keeps its default."""
    config = tmp_path / "councilflow.toml"
    config.write_text('[councilflow]\nmorning_hour = 7\nmail = "smtp://relay:25"\ndb = "sqlite:///a.db"\n')
    env = {"COUNCILFLOW_MORNING_HOUR": "9", "COUNCILFLOW_CONFIG": str(config)}
    settings = load_settings(None, env, db="sqlite:///b.db")
    assert (settings.morning_hour, settings.mail, settings.db, settings.digest_hour) == (9, "smtp://relay:25",
                                                                                          "sqlite:///b.db", 7)


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("morning_hur = 7\n", {}, r"unknown setting 'morning_hur' \(gemeint: 'morning_hour'\?\)"),
        ("morning_hour = 25\n", {}, "morning_hour must be between 0 and 23, not 25"),
        ("tick_seconds = 'oft'\n", {}, "tick_seconds must be a whole number, not 'oft'"),
        ("mail = [1]\n", {}, "mail must be text"),
        ("[councilflow\n", {}, "config .*: "),
        ("", {"COUNCILFLOW_DIGEST_HOUR": "sieben"}, "COUNCILFLOW_DIGEST_HOUR: digest_hour must be a whole number"),
        ("", {"COUNCILFLOW_TIMEZONE": "Mars/Olympus"}, "timezone 'Mars/Olympus' is not an IANA time zone"),
    ],
    ids=["unknown-key", "out-of-range", "not-a-number", "not-text", "toml-syntax", "bad-env", "bad-zone"],
)
def test_bad_settings_are_one_clear_error(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    """Each mistake names the file or variable and the setting."""
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(InputError, match=message):
        load_settings(str(config), env)


def test_mail_folder_sits_beside_the_database() -> None:
    """The embedded default mail folder is beside the SQLite file."""
    assert Settings(db="sqlite:////srv/cf/councilflow.db").mail_folder() == Path("/srv/cf/councilflow-mail")
    assert Settings(db="postgresql+psycopg://x/y").mail_folder() == Path("councilflow-mail")
