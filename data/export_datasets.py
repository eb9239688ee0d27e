"""Exports the data sets shipped in data/ (run once; CI never runs this).

    pip install scikit-learn statsmodels
    python3 data/export_datasets.py

digits.csv   -- sklearn.datasets.load_digits(): the UCI optical recognition of handwritten
                digits test set, 1,797 8x8 images, pixel values 0..16, column `target` 0..9.
sunspots.csv -- statsmodels.datasets.sunspots: yearly mean sunspot numbers 1700-2008.
"""
import os

import numpy as np
from sklearn.datasets import load_digits
from statsmodels.datasets import sunspots

here = os.path.dirname(os.path.abspath(__file__))

digits = load_digits()
with open(os.path.join(here, "digits.csv"), "w") as f:
    f.write(",".join([f"pixel_{r}_{c}" for r in range(8) for c in range(8)] + ["target"]) + "\n")
    for x, y in zip(digits.data.astype(np.int64), digits.target):
        f.write(",".join(str(v) for v in x) + f",{y}\n")

spots = sunspots.load_pandas().data
with open(os.path.join(here, "sunspots.csv"), "w") as f:
    f.write("year,sunspots\n")
    for year, value in zip(spots["YEAR"], spots["SUNACTIVITY"]):
        f.write(f"{int(year)},{value:g}\n")
