#!/usr/bin/env python3
"""Forward times of the reference SAM ViT-B (random weights) with PyTorch on the CPU.

Prints lines `torch <part> <size> <milliseconds>` for benches/sam.rs to show beside
the burn figures. Usage: python3 scripts/reference/bench_torch.py [--threads 2] [--sizes 256 1024]
"""

import argparse
import time

import torch
from segment_anything import sam_model_registry


def timed(f, repeat):
    f()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - start)
    return best * 1000.0


@torch.no_grad()
def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--repeat", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    sam = sam_model_registry["vit_b"]().eval()
    for size in a.sizes:
        from segment_anything.modeling import ImageEncoderViT
        from functools import partial

        encoder = ImageEncoderViT(
            depth=12, embed_dim=768, img_size=size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=12, patch_size=16,
            qkv_bias=True, use_rel_pos=True, global_attn_indexes=[2, 5, 8, 11],
            window_size=14, out_chans=256,
        ).eval()
        x = torch.randn(1, 3, size, size)
        repeat = a.repeat if size <= 512 else 1
        print(f"torch image_encoder {size} {timed(lambda: encoder(x), repeat):.1f}", flush=True)
    emb = torch.randn(1, 256, 64, 64)
    pe = sam.prompt_encoder.get_dense_pe()
    pts = (torch.rand(1, 1, 2) * 1024, torch.ones(1, 1))
    def decode():
        sparse, dense = sam.prompt_encoder(pts, None, None)
        sam.mask_decoder(emb, pe, sparse, dense, multimask_output=True)
    print(f"torch mask_decoder 1024 {timed(decode, 5):.1f}", flush=True)


if __name__ == "__main__":
    main()
