"""Writes the tiny weight fixtures the Rust tests in tests/weights_formats.rs read.

Run from the repository root:  python3 scripts/reference/make_weights_fixtures.py

Outputs (under tests/fixtures/weights/):
  state_dict.pth          torch.save of a state dict exercising the PyTorch zip reader:
                          f32, f16, bf16 and f64 tensors, a transposed (non-contiguous) view,
                          a view with a storage offset, two tensors sharing one storage,
                          an nn.Parameter, a 0-dim tensor and an empty tensor.
  state_dict.safetensors  the same tensors (made contiguous) written by the python
                          `safetensors` package, the reference writer.
  expected.safetensors    the expected values of every tensor as f32, written by the python
                          `safetensors` package; f16/bf16/f64 values converted by torch.
  expected_f16.safetensors  the same values rounded to f16 by torch (round to nearest even),
                          what a conversion to f16 safetensors must produce.
  legacy.pth              a state dict in the pre-1.6 non-zip format (must be refused).
  module.pth              a whole nn.Module pickled (must be refused: it needs other globals).
  deflated.pth            state_dict.pth re-zipped with deflate (must be refused clearly).
  big_endian.pth          state_dict.pth with its byteorder entry set to "big" (refused).
"""

import collections
import io
import os
import zipfile

import torch
from safetensors.torch import save_file

OUT = os.path.join("tests", "fixtures", "weights")


def values(n, seed):
    g = torch.Generator().manual_seed(seed)
    # A spread of magnitudes, including values f16 cannot hold exactly and subnormals.
    v = torch.randn(n, generator=g, dtype=torch.float64) * 3.0
    v[0] = 1.0 / 3.0
    if n > 2:
        v[1] = 1e-6
        v[2] = -65504.0
    return v


def rezip(src, dst, change):
    """Copy a zip archive entry by entry, letting `change` pick compression and content."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            compression, data = change(info.filename, zin.read(info.filename))
            zout.writestr(info.filename, data, compress_type=compression)


def main():
    os.makedirs(OUT, exist_ok=True)

    base = values(24, 1).to(torch.float32).reshape(4, 6)
    shared = values(20, 2).to(torch.float32)
    sd = collections.OrderedDict()
    sd["plain.f32"] = values(12, 3).to(torch.float32).reshape(3, 4)
    sd["plain.f16"] = values(10, 4).to(torch.float16).reshape(2, 5)
    sd["plain.bf16"] = values(9, 5).to(torch.bfloat16).reshape(3, 3)
    sd["plain.f64"] = values(6, 6).reshape(6)
    # A transposed view: shape [6, 4], strides (1, 6).
    sd["view.transposed"] = base.t()
    # A view with a storage offset: rows 1..3 of another storage.
    sd["view.offset"] = values(30, 7).to(torch.float32).reshape(5, 6)[1:3]
    # Two tensors sharing one storage (a slice of each half, one of them strided).
    sd["shared.a"] = shared[:10].reshape(2, 5)
    sd["shared.b"] = shared[10:].reshape(5, 2).t()
    # An nn.Parameter, pickled through torch._utils._rebuild_parameter.
    sd["param.weight"] = torch.nn.Parameter(values(8, 8).to(torch.float32).reshape(2, 2, 2))
    # A 0-dim tensor and a tensor with no values.
    sd["scalar"] = torch.tensor(2.5, dtype=torch.float32)
    sd["empty"] = torch.zeros(0, 3, dtype=torch.float32)

    # What Module.state_dict() attaches; pickled as a BUILD on the OrderedDict.
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("param", {"version": 1})])

    assert not sd["view.transposed"].is_contiguous()
    assert sd["view.offset"].storage_offset() == 6
    assert sd["shared.a"].untyped_storage().data_ptr() == sd["shared.b"].untyped_storage().data_ptr()
    torch.save(sd, os.path.join(OUT, "state_dict.pth"))

    plain = {k: v.detach().contiguous().clone() for k, v in sd.items()}
    save_file(plain, os.path.join(OUT, "state_dict.safetensors"), metadata={"format": "pt"})

    expected = {k: v.to(torch.float32) for k, v in plain.items()}
    save_file(expected, os.path.join(OUT, "expected.safetensors"))
    expected_f16 = {k: v.to(torch.float16) for k, v in expected.items()}
    save_file(expected_f16, os.path.join(OUT, "expected_f16.safetensors"))

    small = collections.OrderedDict(w=torch.arange(4, dtype=torch.float32))
    torch.save(small, os.path.join(OUT, "legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save(torch.nn.Linear(2, 1), os.path.join(OUT, "module.pth"))

    rezip(os.path.join(OUT, "state_dict.pth"), os.path.join(OUT, "deflated.pth"),
          lambda name, data: (zipfile.ZIP_DEFLATED, data))
    rezip(os.path.join(OUT, "state_dict.pth"), os.path.join(OUT, "big_endian.pth"),
          lambda name, data: (zipfile.ZIP_STORED, b"big" if name.endswith("/byteorder") else data))

    for name in sorted(os.listdir(OUT)):
        print(name, os.path.getsize(os.path.join(OUT, name)), "bytes")


if __name__ == "__main__":
    main()
