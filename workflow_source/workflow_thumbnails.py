"""A template's thumbnail: a diagram of what the workflow makes, step by step, drawn with Pillow.

Each step is a row: a stack of frames drawn to scale (64x40 keyframes small, 576x320 output
large) or a text token for inputs without frames, the step's name and what it makes. The image is square so
the Templates browser's cards show all of it. The JPEG's comment holds :func:`thumbnail_key`
of the workflow it was drawn for, so a test can tell a stale thumbnail from a current one.
"""

from __future__ import annotations

import hashlib
import io

from PIL import Image, ImageDraw, ImageFont
from workflow_graph import DiagramStep

SIZE = 512
BACKGROUND, PANEL, FRAME, ACCENT, TEXT, MUTED = "#1d1f24", "#2b2e36", "#4f7cc4", "#e0a040", "#f0f0f0", "#a8adb8"
LARGEST_FRAME_PX = 150
"""Drawn width of the largest frame of a diagram at most (less where its row is too low for it)."""
STACK_OFFSET = 5
"""Offset of the frames drawn behind a video's frame (less for frames too small for it)."""
MARGIN, TITLE_HEIGHT = 28, 70


def thumbnail_key(workflow_text: str, diagram: tuple[DiagramStep, ...]) -> str:
    """Identity of a thumbnail's content: the UI workflow it shows and its diagram."""
    return hashlib.sha256((workflow_text + repr(diagram)).encode()).hexdigest()


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _scale(diagram: tuple[DiagramStep, ...], row_height: int) -> float:
    """Drawn pixels per frame pixel: the largest frame (and its stack) fits its row and the icon column."""
    sizes = [step.size for step in diagram if step.size is not None]
    if not sizes:
        return 1.0
    room_height = row_height - 16 - 2 * STACK_OFFSET
    return min(min(LARGEST_FRAME_PX / width, room_height / height) for width, height in sizes)


def _frame_box(step: DiagramStep, scale: float, centre_x: int, centre_y: int) -> tuple[int, int, int, int]:
    if step.size is None:
        width, height = 86, 30
    else:
        width, height = max(6, round(step.size[0] * scale)), max(4, round(step.size[1] * scale))
    return centre_x - width // 2, centre_y - height // 2, centre_x + width // 2, centre_y + height // 2


def render_thumbnail(title: str, diagram: tuple[DiagramStep, ...], key: str) -> bytes:
    """The JPEG bytes of ``diagram`` under ``title``, with ``key`` as the JPEG comment."""
    image = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, MARGIN), title, fill=TEXT, font=_font(24))
    row_height = (SIZE - TITLE_HEIGHT - MARGIN) // len(diagram)
    scale = _scale(diagram, row_height)
    icon_x = MARGIN + LARGEST_FRAME_PX // 2 + 8
    for index, step in enumerate(diagram):
        top = TITLE_HEIGHT + index * row_height
        centre_y = top + row_height // 2
        draw.rounded_rectangle((MARGIN, top + 4, SIZE - MARGIN, top + row_height - 4), radius=8, fill=PANEL)
        left, upper, right, lower = _frame_box(step, scale, icon_x, centre_y)
        if step.size is None:
            draw.rounded_rectangle((left, upper, right, lower), radius=6, outline=ACCENT, width=2)
        else:
            for behind in (2, 1):
                shift = behind * min(STACK_OFFSET, (right - left) // 6)
                draw.rectangle((left + shift, upper - shift, right + shift, lower - shift), fill=PANEL, outline=MUTED)
            draw.rectangle((left, upper, right, lower), fill=FRAME, outline=TEXT)
        text_x = MARGIN + LARGEST_FRAME_PX + 32
        draw.text((text_x, centre_y - 22), step.label, fill=TEXT, font=_font(20))
        draw.text((text_x, centre_y + 4), step.detail, fill=MUTED, font=_font(16))
        if index:
            draw.polygon([(icon_x - 7, top - 3), (icon_x + 7, top - 3), (icon_x, top + 6)], fill=ACCENT)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88, comment=key.encode())
    return out.getvalue()
