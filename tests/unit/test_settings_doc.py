"""Every setting is documented in the README's settings table."""

from __future__ import annotations

from pathlib import Path

from dubstudio.config import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
TABLE = README[README.index("## Settings"):].split("\n## ", 1)[0]


def env_names(name: str) -> list[str]:
    field = Settings.model_fields[name]
    alias = field.validation_alias
    if alias is not None:
        return [str(a) for a in alias.choices]  # type: ignore[union-attr]
    return [f"DUBSTUDIO_{name.upper()}"]


def test_every_setting_is_in_the_readme_table() -> None:
    missing = [n for n in Settings.model_fields if not all(f"`{e}`" in TABLE for e in env_names(n))]
    assert not missing, f"document these settings in the README's table: {missing}"


def test_every_setting_has_a_description() -> None:
    assert all(f.description for f in Settings.model_fields.values())
