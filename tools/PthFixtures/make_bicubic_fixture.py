#!/usr/bin/env python3
"""Reference values of PyTorch's bicubic resize (F.interpolate(mode='bicubic', align_corners=False)), which Video
Swin's inflate_weights applies to 2-D relative position bias tables. Needs torch (any version with bicubic);
writes tests/Sbp.Models.Tests/Fixtures/Inflation/bicubic.json:

    python3 tools/PthFixtures/make_bicubic_fixture.py --out tests/Sbp.Models.Tests/Fixtures/Inflation/bicubic.json
"""
import argparse
import json

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(7)
    cases = []
    # (in side, out h, out w): Swin-T's 7x7 window table (13x13) to window 3 (5x5) and back, odd and uneven sizes
    for side, oh, ow in [(13, 5, 5), (5, 13, 13), (3, 5, 5), (13, 15, 13), (7, 3, 9)]:
        x = torch.randn(1, 2, side, side, generator=g)
        y = F.interpolate(x, size=(oh, ow), mode="bicubic", align_corners=False)
        cases.append({"in": [side, side], "out": [oh, ow], "heads": 2,
                      "input": x[0].reshape(2, -1).tolist(), "expected": y[0].reshape(2, -1).tolist()})
    with open(args.out, "w") as f:
        json.dump({"torch": torch.__version__, "op": "F.interpolate(mode='bicubic', align_corners=False)", "cases": cases}, f)


if __name__ == "__main__":
    main()
