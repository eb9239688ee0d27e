"""Derives digits_two_targets.csv from digits.csv (standard library only, deterministic).

Every row of digits.csv is kept as it is, and one column is added after `target`: `parity`,
1 when the digit is odd and 0 when it is even. specs/digits_two_outputs.model trains a model
with two outputs on it (the digit, and its parity as a binary target).

Run from anywhere: python3 data/make_two_targets.py
"""

import csv
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    source = os.path.join(HERE, "digits.csv")
    target = os.path.join(HERE, "digits_two_targets.csv")
    with open(source, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    digit = header.index("target")
    with open(target, "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(header + ["parity"])
        for row in body:
            out.writerow(row + [str(int(row[digit]) % 2)])


if __name__ == "__main__":
    main()
