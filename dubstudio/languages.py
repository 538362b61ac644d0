"""Language codes we accept (ISO 639-1), with the names the UI shows."""

from __future__ import annotations

from .errors import UnknownLanguage

NAMES: dict[str, str] = {
    "ar": "Arabic", "bg": "Bulgarian", "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German",
    "el": "Greek", "en": "English", "es": "Spanish", "et": "Estonian", "fi": "Finnish", "fr": "French",
    "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian", "id": "Indonesian",
    "it": "Italian", "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian",
    "ms": "Malay", "nl": "Dutch", "no": "Norwegian", "pl": "Polish", "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "sr": "Serbian",
    "sv": "Swedish", "ta": "Tamil", "th": "Thai", "tr": "Turkish", "uk": "Ukrainian",
    "vi": "Vietnamese", "zh": "Chinese",
}


def check(code: str) -> str:
    """Normalise a language code, or raise UnknownLanguage naming the accepted codes."""
    norm = code.strip().lower()
    if norm not in NAMES:
        raise UnknownLanguage(
            f"Unknown language code {code!r}.",
            hint=f"Use a two-letter ISO 639-1 code, one of: {', '.join(sorted(NAMES))}.",
            details={"language": code},
        )
    return norm


def parse_list(codes: str | list[str]) -> list[str]:
    items = codes.split(",") if isinstance(codes, str) else codes
    out: list[str] = []
    for c in items:
        if c.strip() and (norm := check(c)) not in out:
            out.append(norm)
    if not out:
        raise UnknownLanguage("No target language given.", hint="Name at least one, e.g. --to es.")
    return out


# ISO 639-2/B codes, for language tags in media containers.
ISO639_2 = {
    "ar": "ara", "bg": "bul", "ca": "cat", "cs": "cze", "da": "dan", "de": "ger", "el": "gre", "en": "eng",
    "es": "spa", "et": "est", "fi": "fin", "fr": "fre", "he": "heb", "hi": "hin", "hr": "hrv", "hu": "hun",
    "id": "ind", "it": "ita", "ja": "jpn", "ko": "kor", "lt": "lit", "lv": "lav", "ms": "may", "nl": "dut",
    "no": "nor", "pl": "pol", "pt": "por", "ro": "rum", "ru": "rus", "sk": "slo", "sl": "slv", "sr": "srp",
    "sv": "swe", "ta": "tam", "th": "tha", "tr": "tur", "uk": "ukr", "vi": "vie", "zh": "chi",
}
