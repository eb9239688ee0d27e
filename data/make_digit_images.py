"""Writes data/digit_images/: the first rows of digits.csv as 8x8 grayscale PNG files.

Python standard library only. Each file holds one row's 64 pixel values as stored in the CSV
(gray levels 0..16, the scale the seed CNN's pipeline divides by 16), named by its row number
and its label, so `modelc run ... --input data/digit_images/` shows predictions next to names
that give the answer.
"""

import csv
import pathlib
import struct
import zlib

HERE = pathlib.Path(__file__).parent
COUNT = 6


def png(width, height, rows):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    out = HERE / "digit_images"
    out.mkdir(exist_ok=True)
    with open(HERE / "digits.csv", newline="") as f:
        reader = csv.DictReader(f)
        for i, row in zip(range(COUNT), reader):
            pixels = [int(row[f"pixel_{r}_{c}"]) for r in range(8) for c in range(8)]
            rows = [pixels[r * 8:(r + 1) * 8] for r in range(8)]
            name = f"row{i}_digit{row['target']}.png"
            (out / name).write_bytes(png(8, 8, rows))


if __name__ == "__main__":
    main()
