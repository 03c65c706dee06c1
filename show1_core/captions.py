"""Optional caption cleaning before T5 encoding, as DeepFloyd IF (and so Show-1) defines it.

The original pipelines clean captions only when asked (``clean_caption=True``), running the
clean-up twice; otherwise a prompt is lower-cased and stripped. Cleaning needs the
``captions`` extra (``ftfy`` and ``beautifulsoup4``).
"""

from __future__ import annotations

import html
import re
import urllib.parse

from .errors import InputError

_URL_HOSTS = r"(?:com|co|ru|net|org|edu|gov|it)"
_CJK_RANGES = ("\u31c0-\u31ef", "\u31f0-\u31ff", "\u3200-\u32ff", "\u3300-\u33ff", "\u3400-\u4dbf", "\u4dc0-\u4dff", "\u4e00-\u9fff")
_DASHES = "\u002d\u058a\u05be\u1400\u1806\u2010-\u2015\u2e17\u2e1a\u2e3a\u2e3b\u2e40\u301c\u3030\u30a0\ufe31\ufe32\ufe58\ufe63\uff0d"
_BAD_PUNCTUATION = re.compile(r"[" + re.escape("#®•©™&@·º½¾¿¡§~)(][}{|\\/*") + r"]{1,}")
_SEPARATORS = re.compile(r"(?:\-|\_)")

# (pattern, replacement) applied in order before the HTML/unicode repair ...
_BEFORE_REPAIR = [
    (r"<person>", "person"),
    (rf"\b((?:https?:(?:\/{{1,3}}|[a-zA-Z0-9%])|[a-zA-Z0-9.\-]+[.]{_URL_HOSTS}[\w/-]*\b\/?(?!@)))", ""),
    (rf"\b((?:www:(?:\/{{1,3}}|[a-zA-Z0-9%])|[a-zA-Z0-9.\-]+[.]{_URL_HOSTS}[\w/-]*\b\/?(?!@)))", ""),
]
_AFTER_HTML = (
    [(r"@[\w\d]+\b", "")]
    + [(f"[{r}]+", "") for r in _CJK_RANGES]
    + [
        (f"[{_DASHES}]+", "-"),
        (r"[`´«»“”¨]", '"'),
        (r"[‘’]", "'"),
        (r"&quot;?", ""),
        (r"&amp", ""),
        (r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}", " "),
        (r"\d:\d\d\s+$", ""),
        (r"\\n", " "),
        (r"#\d{1,3}\b", ""),
        (r"#\d{5,}\b", ""),
        (r"\b\d{6,}\b", ""),
        (r"[\S]+\.(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)", ""),
        (r"[\"\']{2,}", r'"'),
        (r"[\.]{2,}", r" "),
        (_BAD_PUNCTUATION, r" "),
        (r"\s+\.\s+", r" "),
    ]
)
# ... and after it.
_AFTER_REPAIR = [
    (r"\b[a-zA-Z]{1,3}\d{3,15}\b", ""),
    (r"\b[a-zA-Z]+\d+[a-zA-Z]+\b", ""),
    (r"\b\d+[a-zA-Z]+\d+\b", ""),
    (r"(worldwide\s+)?(free\s+)?shipping", ""),
    (r"(free\s)?download(\sfree)?", ""),
    (r"\bclick\b\s(?:for|on)\s\w+", ""),
    (r"\b(?:png|jpg|jpeg|bmp|webp|eps|pdf|apk|mp4)(\simage[s]?)?", ""),
    (r"\bpage\s+\d+\b", ""),
    (r"\b\d*[a-zA-Z]+\d+[a-zA-Z]+\d+[a-zA-Z\d]*\b", r" "),
    (r"\b\d+\.?\d*[xх×]\d+\.?\d*\b", ""),
    (r"\b\s+\:\s+", r": "),
    (r"(\D[,\./])\b", r"\1 "),
    (r"\s+", " "),
    (r"^[\"\']([\w\W]+)[\"\']$", r"\1"),
    (r"^[\'\_,\-\:;]", r""),
    (r"[\'\_,\-\:\-\+]$", r""),
    (r"^\.\S+$", ""),
]


def _apply(rules, text: str) -> str:
    for pattern, replacement in rules:
        text = re.sub(pattern, replacement, text)
    return text


def _clean_once(caption: str) -> str:
    try:
        import ftfy
        from bs4 import BeautifulSoup
    except ImportError as err:
        raise InputError("caption cleaning needs the optional packages ftfy and beautifulsoup4: pip install 'show1[captions]'") from err
    text = urllib.parse.unquote_plus(str(caption)).strip().lower()
    text = _apply(_BEFORE_REPAIR, text)
    text = BeautifulSoup(text, features="html.parser").text
    text = _apply(_AFTER_HTML, text)
    if len(_SEPARATORS.findall(text)) > 3:  # this-is-a-slug / this_is_a_slug
        text = _SEPARATORS.sub(" ", text)
    text = html.unescape(html.unescape(ftfy.fix_text(text)))
    return _apply(_AFTER_REPAIR, text).strip()


def preprocess_prompt(prompt: str, clean: bool = False) -> str:
    """What the original feeds the T5 tokenizer: cleaned twice if ``clean``, else lower-cased and stripped."""
    if clean:
        return _clean_once(_clean_once(prompt))
    return prompt.lower().strip()
