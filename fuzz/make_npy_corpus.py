"""Writes the seed corpus of fuzz_npy: tiny valid .npy files of several dtypes,
versions and orders, written by numpy itself. Run with /usr/bin/python3 (numpy)
from the repository root: python3 fuzz/make_npy_corpus.py
"""

import os

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "npy")

SEEDS = {
    # name: (array, format version)
    "f4_2x3_v1": (np.arange(6, dtype="<f4").reshape(2, 3) / 4, (1, 0)),
    "f8_fortran_big_v1": (np.asfortranarray(np.array([[0.1, -2.0, 1e300], [np.inf, -0.0, 3]],
                                                     dtype=">f8")), (1, 0)),
    "f2_specials_v2": (np.array([1, 6e-8, 6.1e-5, 65504, np.inf, -np.inf, np.nan, -0.0],
                                dtype="<f2"), (2, 0)),
    "i8_big_v3": (np.array([-1, 0, 2**63 - 1], dtype=">i8"), (3, 0)),
    "i2_fortran_3d_v2": (np.asfortranarray(np.arange(24, dtype="<i2").reshape(2, 3, 4)), (2, 0)),
    "u4_v1": (np.array([[0, 2**32 - 1]], dtype="<u4"), (1, 0)),
    "b1_0d_v1": (np.array(True), (1, 0)),
    "u1_empty_v3": (np.zeros((0, 4), dtype="|u1"), (3, 0)),
    "i1_v1": (np.array([-128, 127, 0], dtype="|i1"), (1, 0)),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (array, version) in SEEDS.items():
        with open(os.path.join(OUT, name + ".npy"), "wb") as f:
            np.lib.format.write_array(f, array, version=version)


if __name__ == "__main__":
    main()
