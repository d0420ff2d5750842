"""Draw the app icons (a white house with a check mark on red) as PNGs, standard library only.

Run once after changing the drawing: ``python pwa_static/icons/make_icons.py``. Shapes are
signed distance functions in a unit square, so every size is anti-aliased without a raster
library. The maskable icon is full-bleed with the house inside the central safe circle.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

RED = (179, 38, 30)
WHITE = (255, 255, 255)
HERE = Path(__file__).resolve().parent


def rounded_square(x: float, y: float, radius: float) -> float:
    qx, qy = abs(x - 0.5) - (0.5 - radius), abs(y - 0.5) - (0.5 - radius)
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - radius


def box(x: float, y: float, left: float, top: float, right: float, bottom: float) -> float:
    return max(left - x, x - right, top - y, y - bottom)


def triangle(x: float, y: float, points: list[tuple[float, float]]) -> float:
    """Distance to a convex polygon listed clockwise (exact inside, close enough outside)."""
    worst = -math.inf
    for (ax, ay), (bx, by) in zip(points, points[1:] + points[:1], strict=True):
        ex, ey = bx - ax, by - ay
        worst = max(worst, ((x - ax) * ey - (y - ay) * ex) / math.hypot(ex, ey))
    return worst


def segment(x: float, y: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    (ax, ay), (bx, by) = a, b
    t = ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2)
    t = min(max(t, 0.0), 1.0)
    return math.hypot(x - ax - t * (bx - ax), y - ay - t * (by - ay))


def house(x: float, y: float) -> float:
    roof = triangle(x, y, [(0.5, 0.17), (0.85, 0.5), (0.15, 0.5)])
    return min(roof, box(x, y, 0.26, 0.45, 0.74, 0.82))


def check(x: float, y: float) -> float:
    stroke = 0.045
    first = segment(x, y, (0.36, 0.63), (0.46, 0.72))
    return min(first, segment(x, y, (0.46, 0.72), (0.64, 0.54))) - stroke


def pixel(x: float, y: float, size: int, maskable: bool) -> tuple[int, int, int, int]:
    def cover(distance: float) -> float:
        return min(max(0.5 - distance * size, 0.0), 1.0)

    background = 1.0 if maskable else cover(rounded_square(x, y, 0.22))
    scale = 0.72 if maskable else 1.0  # the maskable safe zone is the central 80 % circle
    ux, uy = 0.5 + (x - 0.5) / scale, 0.5 + (y - 0.5) / scale
    white = cover(house(ux, uy) * scale) * (1.0 - cover(check(ux, uy) * scale))
    rgb = [round(r * (1 - white) + w * white) for r, w in zip(RED, WHITE, strict=True)]
    return (*rgb, round(255 * max(background, white)))


def png(size: int, maskable: bool) -> bytes:
    rows = bytearray()
    for j in range(size):
        rows.append(0)  # filter: none
        for i in range(size):
            rows.extend(pixel((i + 0.5) / size, (j + 0.5) / size, size, maskable))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    for name, size, maskable in [
        ("icon-192.png", 192, False),
        ("icon-512.png", 512, False),
        ("icon-maskable-512.png", 512, True),
    ]:
        (HERE / name).write_bytes(png(size, maskable))


if __name__ == "__main__":
    main()
