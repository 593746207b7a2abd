"""Sketchpad drawings shared by the tests and bench/thin_one.py."""
import cv2
import numpy as np

ONE_X = 378  # the "1"'s stroke, px on a 900x300 sketchpad layer
HEIGHT = 180  # digit height, px


def typed(text: str = "4072", hw: tuple[int, int] = (300, 900), org: tuple[int, int] = (160, 210),
          scale: float = 4.0, thickness: int = 14, line: int = cv2.LINE_AA) -> np.ndarray:
    """Black digits in OpenCV's Hershey font on white, `org` the text's bottom-left corner: (H, W) uint8.
    line=cv2.LINE_8 draws hard edges (thresholded copies of it are the same drawing)."""
    img = np.full(hw, 255, np.uint8)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 0, thickness, line)
    return img


def thin_one_far_seven(gap: float = 0.5) -> np.ndarray:
    """A thin "1", then a "7" whose bar starts `gap` digit heights to its right: a sketchpad layer
    (transparent, black ink). Returns (300, 900, 4) uint8."""
    img = np.zeros((300, 900, 4), np.uint8)
    ink = (0, 0, 0, 255)
    x7 = ONE_X + int(round(gap * HEIGHT))
    cv2.line(img, (ONE_X, 60), (ONE_X, 60 + HEIGHT), ink, 14, cv2.LINE_AA)  # 1
    cv2.line(img, (x7, 66), (x7 + 108, 66), ink, 14, cv2.LINE_AA)  # 7
    cv2.line(img, (x7 + 108, 66), (x7 + 36, 240), ink, 14, cv2.LINE_AA)
    return img


def gap_middle(gap: float = 0.5) -> int:
    """x of the middle of the gap between the "1" and the "7", px."""
    return (ONE_X + ONE_X + int(round(gap * HEIGHT))) // 2


# ---------------------------------------------------------------- mouse-drawn numbers with known digit spans

SKETCH_HW = (300, 900)  # the Draw tab's sketchpad, px


def _layer(strokes: list[np.ndarray], width: int, hw: tuple[int, int] = SKETCH_HW) -> np.ndarray:
    """Polylines (each (n, 2) x, y px) drawn as a sketchpad layer: transparent, black anti-aliased ink,
    round joints and ends as a browser's canvas draws a mouse path. Returns (H, W, 4) uint8."""
    alpha = np.zeros(hw, np.uint8)
    for s in strokes:
        cv2.polylines(alpha, [np.round(s).astype(np.int32)], False, 255, width, cv2.LINE_AA)
    z = np.zeros(hw, np.uint8)
    return np.dstack([z, z, z, alpha])


def one_seven(order: str = "17", width: int = 14, gap: float = 0.5, height: int = 180) -> tuple[np.ndarray, list[tuple[int, int]], int]:
    """A straight "1" and a "7" side by side, centred on the sketchpad, as the 1/7 grid draws them.

    gap: digit heights from the 1's stroke to where the 7's bar starts ("17"), or from where the 7's bar
    ends to the 1's stroke ("71"). Returns the layer, each digit's ink span (x0, x1) in reading order, and
    the x of the middle of the empty space between them.
    """
    H, W = SKETCH_HW
    bar = round(0.6 * height)  # the 7's bar; its foot comes back 0.4 of the bar's length
    total = bar + round(gap * height)
    x = (W - total) // 2
    top = (H - height) // 2
    if order == "17":
        one_x, seven_x = x, x + round(gap * height)
    elif order == "71":
        seven_x, one_x = x, x + total
    else:
        raise ValueError(f"order is '17' or '71', not {order!r}")
    one = np.array([[one_x, top], [one_x, top + height]], float)
    seven = np.array([[seven_x, top + 0.03 * height], [seven_x + bar, top + 0.03 * height],
                      [seven_x + 0.2 * height, top + height]], float)
    r = width / 2
    spans = {"1": (round(one_x - r), round(one_x + r)), "7": (round(seven_x - r), round(seven_x + bar + r))}
    first, second = spans[order[0]], spans[order[1]]
    return _layer([one, seven], width), [first, second], (first[1] + second[0]) // 2


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24) -> list[tuple[float, float]]:
    """Points along an ellipse from angle a0 to a1 (degrees, 0 = right, 90 = down: image coordinates)."""
    t = np.radians(np.linspace(a0, a1, n))
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


# Each digit as mouse strokes in a box 1 tall (y down) and about 0.55 wide: the way people draw them.
DIGIT_STROKES: dict[str, list[list[tuple[float, float]]]] = {
    "0": [_arc(0.27, 0.5, 0.27, 0.5, -90, 275)],
    "1": [[(0.02, 0.14), (0.14, 0.0), (0.14, 1.0)]],
    "2": [_arc(0.27, 0.27, 0.26, 0.25, 190, 380, 16) + [(0.02, 1.0), (0.56, 1.0)]],
    "3": [_arc(0.25, 0.25, 0.25, 0.24, 200, 450, 18) + _arc(0.25, 0.72, 0.28, 0.27, -90, 150, 18)],
    "4": [[(0.36, 0.0), (0.0, 0.66), (0.56, 0.66)], [(0.42, 0.3), (0.42, 1.0)]],
    "5": [[(0.52, 0.0), (0.08, 0.0), (0.05, 0.44)] + _arc(0.27, 0.68, 0.28, 0.3, -120, 150, 18)],
    "6": [[(0.46, 0.02), (0.2, 0.25)] + _arc(0.28, 0.7, 0.27, 0.3, 200, 560, 26)],
    "7": [[(0.0, 0.03), (0.56, 0.03), (0.2, 1.0)]],
    "8": [_arc(0.27, 0.25, 0.21, 0.24, 90, 450, 20) + _arc(0.27, 0.74, 0.27, 0.26, -90, 270, 22)],
    "9": [_arc(0.27, 0.28, 0.26, 0.28, 0, 360, 22) + [(0.52, 0.28), (0.46, 1.0)]],
}


_LOOP = _arc(0.27, 0.28, 0.26, 0.28, 0, 360, 22)  # a "9"'s head, closed at its right

# Other hands: the ways people write these digits, one variant each (the templates above are one hand's).
HANDS: dict[str, tuple[str, list[list[tuple[float, float]]]]] = {
    "1 plain": ("1", [[(0.14, 0.0), (0.14, 1.0)]]),
    "1 long flag": ("1", [[(0.0, 0.34), (0.22, 0.0), (0.22, 1.0)]]),
    "1 flag and foot": ("1", [[(0.04, 0.2), (0.2, 0.0), (0.2, 1.0)], [(0.0, 1.0), (0.4, 1.0)]]),
    "1 short flat flag": ("1", [[(0.0, 0.12), (0.22, 0.0), (0.22, 1.0)]]),  # about 30 degrees, as many fonts write it
    "7 plain": ("7", DIGIT_STROKES["7"]),
    "7 crossed": ("7", DIGIT_STROKES["7"] + [[(0.16, 0.52), (0.54, 0.52)]]),
    "4 open": ("4", DIGIT_STROKES["4"]),
    "4 closed": ("4", [[(0.42, 1.0), (0.42, 0.0), (0.0, 0.66), (0.56, 0.66)]]),
    "9 straight": ("9", [_LOOP + [(0.53, 0.28), (0.53, 1.0)]]),
    "9 curved": ("9", [_LOOP + _arc(0.1, 0.28, 0.43, 0.72, 0, 80, 12)]),
    # last, so that the others keep their seeds: a flag two thirds of the height long, as the continent writes it
    "1 reaching flag": ("1", [[(0.0, 0.5), (0.42, 0.0), (0.42, 1.0)]]),
}


def stroke_number(text: str, rng: np.random.Generator, height: float | None = None,
                  width: int | None = None, hand: str | None = None) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """`text` drawn on the sketchpad from strokes, as a mouse draws it: each digit's template wobbled,
    slanted and sized at random (150-210 px tall unless `height`), 10-18 px brush unless `width`, gaps of
    0.15-0.6 digit heights; with `hand` (a key of HANDS), that variant for every copy of its digit.
    Returns the layer and each digit's ink span (x0, x1) in px, in reading order."""
    templates = dict(DIGIT_STROKES)
    if hand is not None:
        digit, lines = HANDS[hand]
        templates[digit] = lines
    H, W = SKETCH_HW
    width = width or int(rng.integers(10, 19))
    h = height or float(rng.uniform(150, 210))
    slant = float(rng.uniform(-0.12, 0.2))
    shapes, x = [], 0.0
    for ch in text:
        s = h * rng.uniform(0.9, 1.05)
        strokes = []
        for line in templates[ch]:
            p = np.array(line, float) + rng.normal(0, 0.01, (len(line), 2))  # hand wobble
            p[:, 0] = p[:, 0] * rng.uniform(0.85, 1.15) + slant * (1 - p[:, 1])
            strokes.append(p * s)
        lo = min(float(p[:, 0].min()) for p in strokes)
        strokes = [p - [lo - x, 0] for p in strokes]
        right = max(float(p[:, 0].max()) for p in strokes)
        shapes.append((strokes, x, right, s))
        x = right + width + rng.uniform(0.15, 0.6) * h  # ink edge to ink edge, plus the brush
    total = shapes[-1][2] + width  # first ink edge to last, brush included
    fit = min(1.0, (W - 60) / total)  # a long number shrinks to fit the pad
    ox = (W - total * fit) / 2 + width / 2
    all_strokes, spans = [], []
    for strokes, x0, x1, s in shapes:
        oy = (H - s * fit) / 2 + rng.uniform(-0.08, 0.08) * h * fit
        all_strokes += [p * fit + [ox, oy] for p in strokes]
        spans.append((round(ox + x0 * fit - width / 2), round(ox + x1 * fit + width / 2)))
    return _layer(all_strokes, width), spans


def mirrored_number(text: str, rng: np.random.Generator) -> np.ndarray:
    """`text` drawn from strokes with every digit mirrored left to right, as some children write: a style no
    training canvas has, for corrections to teach. Returns the sketchpad layer."""
    saved = dict(DIGIT_STROKES)
    try:
        for d, strokes in saved.items():
            DIGIT_STROKES[d] = [[(0.56 - x, y) for x, y in line] for line in strokes]
        return stroke_number(text, rng)[0]
    finally:
        DIGIT_STROKES.update(saved)
