"""The engines a user may choose, in words, and what each still needs before it can run.

The home page offers only engines that are ready; the settings page offers them all and says what is
missing. Readiness mirrors what `vendors.registry` would refuse (a key, a server address, the flag).
"""

from __future__ import annotations

from ..config import Settings

ROLES = {"stt": "Speech to text", "translator": "Translator", "tts": "Voices"}
ENGINES: dict[str, dict[str, str]] = {
    "stt": {"offline": "Offline (pocketsphinx, English)", "deepgram": "Deepgram nova-3"},
    "translator": {"openai": "OpenAI-compatible server", "manual": "By hand (you type each line)"},
    "tts": {"offline": "Offline (espeak-ng)", "deepgram": "Deepgram Aura-2", "elevenlabs": "ElevenLabs (premium)"},
}
NAMES = {"offline": "offline", "deepgram": "Deepgram", "openai": "OpenAI-compatible server", "manual": "by hand",
         "elevenlabs": "ElevenLabs"}
VENDORS = {"deepgram": "Deepgram", "openai": "The OpenAI-compatible translator", "elevenlabs": "ElevenLabs"}


def missing(settings: Settings, engine: str) -> str | None:
    """What `engine` still needs, in words; None when it is ready."""
    if engine == "deepgram" and not settings.secret("deepgram_api_key"):
        return "a key"
    if engine == "openai" and not settings.secret("openai_api_key") and not settings.openai_base_url:
        return "a key, or the address of a local server"
    if engine == "elevenlabs":
        if not settings.premium_voices:
            return "the premium voices switched on"
        if not settings.secret("elevenlabs_api_key"):
            return "a key"
    return None


def ready(settings: Settings, role: str) -> dict[str, str]:
    """The engines of a role that can run now, by name, with their words."""
    return {name: words for name, words in ENGINES[role].items() if missing(settings, name) is None}


def not_ready(settings: Settings) -> list[str]:
    """One sentence per cloud engine that cannot run yet, saying what it needs."""
    return [f"{words} needs {need}." for name, words in VENDORS.items()
            if (need := missing(settings, name)) is not None]
