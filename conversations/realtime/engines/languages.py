"""Language names and codes shared by the speech engines.

The PAL and the conversation give a language either as an ISO 639-1 code ("es"), a full
English name ("spanish", as the hosted product's API does) or ``"multilingual"`` (detect).
"""
from __future__ import annotations

# Whisper's language table (names as Whisper spells them), plus a few common aliases.
_NAME_TO_CODE: dict[str, str] = {
    "english": "en", "chinese": "zh", "mandarin": "zh", "german": "de", "spanish": "es",
    "castilian": "es", "russian": "ru", "korean": "ko", "french": "fr", "japanese": "ja",
    "portuguese": "pt", "turkish": "tr", "polish": "pl", "catalan": "ca", "valencian": "ca",
    "dutch": "nl", "flemish": "nl", "arabic": "ar", "swedish": "sv", "italian": "it",
    "indonesian": "id", "hindi": "hi", "finnish": "fi", "vietnamese": "vi", "hebrew": "he",
    "ukrainian": "uk", "greek": "el", "malay": "ms", "czech": "cs", "romanian": "ro",
    "moldavian": "ro", "moldovan": "ro", "danish": "da", "hungarian": "hu", "tamil": "ta",
    "norwegian": "no", "thai": "th", "urdu": "ur", "croatian": "hr", "bulgarian": "bg",
    "lithuanian": "lt", "latin": "la", "maori": "mi", "malayalam": "ml", "welsh": "cy",
    "slovak": "sk", "telugu": "te", "persian": "fa", "farsi": "fa", "latvian": "lv",
    "bengali": "bn", "serbian": "sr", "azerbaijani": "az", "slovenian": "sl",
    "kannada": "kn", "estonian": "et", "macedonian": "mk", "breton": "br", "basque": "eu",
    "icelandic": "is", "armenian": "hy", "nepali": "ne", "mongolian": "mn", "bosnian": "bs",
    "kazakh": "kk", "albanian": "sq", "swahili": "sw", "galician": "gl", "marathi": "mr",
    "punjabi": "pa", "panjabi": "pa", "sinhala": "si", "sinhalese": "si", "khmer": "km",
    "shona": "sn", "yoruba": "yo", "somali": "so", "afrikaans": "af", "occitan": "oc",
    "georgian": "ka", "belarusian": "be", "tajik": "tg", "sindhi": "sd", "gujarati": "gu",
    "amharic": "am", "yiddish": "yi", "lao": "lo", "uzbek": "uz", "faroese": "fo",
    "haitian creole": "ht", "haitian": "ht", "pashto": "ps", "pushto": "ps",
    "turkmen": "tk", "nynorsk": "nn", "maltese": "mt", "sanskrit": "sa",
    "luxembourgish": "lb", "letzeburgesch": "lb", "myanmar": "my", "burmese": "my",
    "tibetan": "bo", "tagalog": "tl", "filipino": "tl", "malagasy": "mg", "assamese": "as",
    "tatar": "tt", "hawaiian": "haw", "lingala": "ln", "hausa": "ha", "bashkir": "ba",
    "javanese": "jw", "sundanese": "su", "cantonese": "yue",
}
_CODES: frozenset[str] = frozenset(_NAME_TO_CODE.values())

#: values that mean "detect the language"
_DETECT = frozenset({"", "multilingual", "auto", "detect", "none"})


def accepted_names() -> list[str]:
    """Every value ``language_code`` accepts in its plain form (lowercase names, ISO codes, and
    the words that mean "detect"): the API schema's enum (a region suffix such as ``es-ES`` and
    other letter cases are accepted too)."""
    return sorted((set(_NAME_TO_CODE) | _CODES | _DETECT) - {""})


def language_code(name: str | None) -> str | None:
    """ISO code for a language name or code; ``None`` means "detect".

    Accepts ``"es"``, ``"es-ES"``, ``"Spanish"``, ``"multilingual"`` (-> None). An unknown
    value raises ``ValueError`` so a misconfigured PAL fails loudly instead of silently
    transcribing in the wrong language.
    """
    if name is None:
        return None
    key = name.strip().lower().replace("_", "-")
    if key in _DETECT:
        return None
    if key in _NAME_TO_CODE:
        return _NAME_TO_CODE[key]
    base = key.split("-", 1)[0]
    if base in _CODES:
        return base
    raise ValueError(f"unknown language: {name!r}")
