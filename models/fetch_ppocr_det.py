#!/usr/bin/env python3
"""Make models/ppocr_det.onnx: PP-OCRv4 text detection as the `rapidocr_onnxruntime` wheel
ships it. The file is used unchanged (its input and output are already dynamic), so this only
downloads rapidocr_onnxruntime==1.4.4 with pip (no dependencies), checks the member's sha256
against models/MANIFEST and copies it.

Re-run it with:  python3 models/fetch_ppocr_det.py
"""
import hashlib
import os

from convert_centerface import HERE, checked_source

REQUIREMENT = "rapidocr_onnxruntime==1.4.4"
MEMBER = "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"


def main():
    data = checked_source("ppocr_det", REQUIREMENT, MEMBER)
    out_path = os.path.join(HERE, "ppocr_det.onnx")
    with open(out_path, "wb") as f:
        f.write(data)
    print(f"wrote {out_path}: sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
