"""Writes the tiny numpy fixtures the Shards tests read (run once; the outputs are committed).

Usage: python3 scripts/make_npz_fixtures.py Tests/ShardsTests/Fixtures
"""
import os
import sys

import numpy as np


def main(out):
    os.makedirs(out, exist_ok=True)
    base = np.arange(12, dtype=np.float64).reshape(3, 4) / 8.0 - 0.5
    # A video feature file as the public QVHighlights release lays it out: key "features", [clips, dim].
    np.savez(os.path.join(out, "stored_f4.npz"), features=base.astype("<f4"), extra=np.array([1, 2, 3], dtype="<i8"))
    np.savez_compressed(os.path.join(out, "deflated_f2.npz"), features=base.astype("<f2"))
    np.savez_compressed(os.path.join(out, "deflated_f8_i4.npz"), last_hidden_state=base.astype("<f8"),
                        ids=np.array([[5, -6]], dtype="<i4"))
    np.save(os.path.join(out, "scalar_i8.npy"), np.array(42, dtype="<i8"))
    np.save(os.path.join(out, "object.npy"), np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(os.path.join(out, "fortran.npy"), np.asfortranarray(base.astype("<f4")))
    np.save(os.path.join(out, "bigendian.npy"), base.astype(">f4"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/ShardsTests/Fixtures")
