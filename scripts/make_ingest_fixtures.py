"""Writes the tiny feature-folder fixtures the feature-ingest tests read (run once; the outputs are committed).

Usage: python3 scripts/make_ingest_fixtures.py REFERENCE_DIR [OUT_DIR]

REFERENCE_DIR holds the public annotation files (qvhighlights/, charades_sta/, tacos/ as listed in
Tests/StagesTests/Fixtures/README.md). A few of their lines are copied byte for byte; the features are made
up, laid out as the public releases lay them out:
- one folder per video feature family with {vid}.npz holding "features" [clips, dim];
- one folder of text features with qid{qid}.npz holding "last_hidden_state" [tokens, dim] (TACoS: [1, tokens, dim]).

Every value is value(t, j) = ((7 t + 3 j + s) % 13 - 6) / 4 for row t and column j, with
s = (sum of the UTF-8 bytes of "FOLDER/FILE") % 13, so the tests can recompute every number without reading
the files back, and every value is exact in float16. A text file has len(query.split()) + 2 tokens.
"""
import json
import os
import shutil
import sys

import numpy as np

# dataset folder -> (reference annotation file, qids in order, {family: (dim, dtype, {vid: rows})}, text dim,
# text shape has a leading batch axis)
DATASETS = {
    "qvhighlights": (
        "qvhighlights/highlight_val_release.jsonl", [2579, 548, 1918, 8737],
        {
            # SlowFast-like family: one extra row for one video (cut by max_clips 75).
            "slowfast": (8, "<f4", {"NUsG9BgSes0_210.0_360.0": 75, "lwNho_1tKrc_60.0_210.0": 76, "bP5KfdFJzC4_660.0_810.0": 63}),
            # CLIP-like family in float16, one row short for one video (trimmed to the shortest family).
            "clip": (4, "<f2", {"NUsG9BgSes0_210.0_360.0": 74, "lwNho_1tKrc_60.0_210.0": 76, "bP5KfdFJzC4_660.0_810.0": 63}),
        },
        6, False),
    "charades_sta": (
        "charades_sta/charades_test_release.jsonl", [12404, 12405, 12410],
        {"slowfast": (5, "<f4", {"3MSZA": 31, "VXJS4": 30})},
        6, False),
    "tacos": (
        "tacos/tacos_train_release.jsonl", ["s17-d69_0", "s17-d69_1", "s22-d55_0"],
        {"clip": (4, "<f4", {"s17-d69": 212, "s22-d55": 26})},
        5, True),
}


def values(name, rows, dim):
    s = sum(name.encode("utf-8")) % 13
    t = np.arange(rows)[:, None]
    j = np.arange(dim)[None, :]
    return (((7 * t + 3 * j + s) % 13) - 6) / 4.0


def main(reference, out):
    for folder, (annotation_file, qids, families, text_dim, batched) in DATASETS.items():
        base = os.path.join(out, folder)
        shutil.rmtree(base, ignore_errors=True)
        os.makedirs(os.path.join(base, "annotations"))
        lines = {}
        with open(os.path.join(reference, annotation_file), "rb") as f:
            for raw in f:
                qid = json.loads(raw)["qid"]
                if qid in qids:
                    lines[qid] = raw if raw.endswith(b"\n") else raw + b"\n"
        with open(os.path.join(base, "annotations", os.path.basename(annotation_file)), "wb") as f:
            for qid in qids:
                f.write(lines[qid])
        for family, (dim, dtype, rows) in families.items():
            os.makedirs(os.path.join(base, family))
            for vid, n in rows.items():
                name = f"{family}/{vid}.npz"
                np.savez_compressed(os.path.join(base, name), features=values(name, n, dim).astype(dtype))
        os.makedirs(os.path.join(base, "clip_text"))
        for qid in qids:
            record = json.loads(lines[qid])
            name = f"clip_text/qid{qid}.npz"
            tokens = values(name, len(record["query"].split()) + 2, text_dim).astype("<f4")
            extra = {"pooler_output": tokens[-1].copy()}
            np.savez_compressed(os.path.join(base, name), last_hidden_state=tokens[None] if batched else tokens, **extra)

    # Broken variants of one QVHighlights video's SlowFast file, for the error tests.
    vid, (dim, dtype, rows) = "bP5KfdFJzC4_660.0_810.0", DATASETS["qvhighlights"][2]["slowfast"]
    good = values(f"slowfast/{vid}.npz", rows[vid], dim)
    nan = good.copy()
    nan[5, 2] = np.nan
    wide = values(f"slowfast/{vid}.npz", rows[vid], dim + 1)
    for kind, array in (("nan", nan), ("dim", wide)):
        path = os.path.join(out, "qvhighlights", "broken", kind)
        os.makedirs(path)
        np.savez_compressed(os.path.join(path, f"{vid}.npz"), features=array.astype(dtype))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "Tests/StagesTests/Fixtures")
