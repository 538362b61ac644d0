"""Builds the engines a job uses from settings. Settings only admit engines that exist here."""

from __future__ import annotations

from ..config import Settings
from .base import SpeechToText, TextToSpeech, Translator


def translator(settings: Settings) -> Translator:
    from .openai_translate import OpenAITranslator

    return OpenAITranslator(settings.secret("openai_api_key"), settings.openai_base_url or None,
                            settings.openai_model, settings.vendor_timeout, settings.vendor_retries)


def stt(settings: Settings) -> SpeechToText:
    from .offline.pocketsphinx_stt import PocketsphinxSTT

    return PocketsphinxSTT()


def tts(settings: Settings) -> TextToSpeech:
    from .offline.espeak import EspeakTTS

    return EspeakTTS()

