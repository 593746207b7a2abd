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
