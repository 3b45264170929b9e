"""Writes the small image fixtures the decoder tests read (tests/fixtures/images/).

Run from the repository root: python3 scripts/make_image_fixtures.py (needs Pillow and numpy).
Each fixture has a known pixel content, so the tests can check conversions exactly.
"""
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

out = Path("tests/fixtures/images")
out.mkdir(parents=True, exist_ok=True)

# A DeepPCB template as lossless PNG: the determinism test's input (JPEG decoders may differ
# in rounding between platforms, PNG cannot).
Image.open("www/samples/deeppcb-12000001-normal.jpg").convert("L").save(out / "deeppcb-12000001-normal.png")

# 16-bit RGB: value v*257 in 16 bits must become v in 8 bits.
ramp = np.arange(48 * 32, dtype=np.uint32).reshape(32, 48) % 256
rgb16 = np.stack([ramp, 255 - ramp, (ramp * 7) % 256], axis=-1).astype(np.uint16) * 257
# Pillow cannot write 16-bit RGB PNGs; write it by hand.
def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(32))
png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 48, 32, 16, 2, 0, 0, 0))
png += png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")
(out / "rgb16.png").write_bytes(png)

# Palette image: 4 colours in vertical bands.
pal = Image.new("P", (40, 20))
pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 250, 250, 250] + [0] * (256 * 3 - 12))
pal.putdata([(x // 10) for y in range(20) for x in range(40)])
pal.save(out / "palette.png")

# Grayscale + alpha: gray level = x*5, alpha = y*10.
la = Image.new("LA", (50, 25))
la.putdata([(x * 5, y * 10) for y in range(25) for x in range(50)])
la.save(out / "gray-alpha.png")

# CMYK JPEG of a flat colour (Pillow writes Adobe CMYK); the tests check the hue survives.
Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(out / "cmyk.jpg", quality=95)

# A PNG header declaring 50000 x 50000 pixels, followed by a tiny IDAT: must be refused
# before any allocation.
huge = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0))
huge += png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + png_chunk(b"IEND", b"")
(out / "huge-header.png").write_bytes(huge)

# A PNG header declaring zero width.
zero = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 16, 8, 2, 0, 0, 0))
zero += png_chunk(b"IEND", b"")
(out / "zero-width.png").write_bytes(zero)
print("written to", out)
