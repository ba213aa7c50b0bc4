"""PyTorch reference of quopt's GPU training step, for comparison only (quopt never imports it).

OLMo2 as quopt builds it (src/model/olmo2.hpp): tied embeddings, reordered post-norm blocks
h = x + RMSNorm(Attn(x)), y = h + RMSNorm(MLP(h)), QK-norm over the whole q / k projections, RoPE
(rotate-half, theta 500000), ReLU^2 MLP of width 4 d_model, no biases, final RMSNorm. Trained the
fast way PyTorch offers: bf16 autocast (fp32 master weights), torch.compile, scaled_dot_product_attention
(flash), fused AdamW. Prints one line per model:  torch <model> tokens/s <x> step_s <s>.

    python3 tests/reference/gpu_bench.py --model olmo2-50m --steps 10
"""
import argparse
import time

import torch
import torch.nn.functional as F

SHAPES = {  # inputs/models/olmo2-*.toml
    "olmo2-50m": dict(d_model=384, n_layers=6, n_heads=6),
    "olmo2-125m": dict(d_model=640, n_layers=12, n_heads=10),
}
VOCAB, SEQ = 100352, 2048


class RMSNorm(torch.nn.Module):
    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(c))
        self.eps = eps

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rope(x, theta=500000.0):  # x [B, H, T, D], rotate-half pairs (i, i + D/2)
    d = x.shape[-1]
    inv = theta ** (-torch.arange(0, d // 2, device=x.device, dtype=torch.float32) * 2.0 / d)
    ang = torch.arange(x.shape[-2], device=x.device, dtype=torch.float32)[:, None] * inv[None, :]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Block(torch.nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.h = h
        self.q, self.k, self.v, self.o = (torch.nn.Linear(c, c, bias=False) for _ in range(4))
        self.q_norm, self.k_norm, self.attn_norm, self.mlp_norm = RMSNorm(c), RMSNorm(c), RMSNorm(c), RMSNorm(c)
        self.up = torch.nn.Linear(c, 4 * c, bias=False)
        self.down = torch.nn.Linear(4 * c, c, bias=False)

    def forward(self, x):
        b, t, c = x.shape
        heads = lambda y: y.view(b, t, self.h, c // self.h).transpose(1, 2)
        q = rope(heads(self.q_norm(self.q(x))))
        k = rope(heads(self.k_norm(self.k(x))))
        a = F.scaled_dot_product_attention(q, k, heads(self.v(x)), is_causal=True)
        h = x + self.attn_norm(self.o(a.transpose(1, 2).reshape(b, t, c)))
        return h + self.mlp_norm(self.down(F.relu(self.up(h)).square()))


class Olmo2(torch.nn.Module):
    def __init__(self, d_model, n_layers, n_heads):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, d_model)
        self.blocks = torch.nn.ModuleList(Block(d_model, n_heads) for _ in range(n_layers))
        self.norm = RMSNorm(d_model)
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.trunc_normal_(p, std=0.02, a=-0.06, b=0.06)

    def forward(self, tokens, targets):
        x = self.embed(tokens)
        for blk in self.blocks:
            x = blk(x)
        logits = F.linear(self.norm(x), self.embed.weight)  # tied head
        return F.cross_entropy(logits.float().view(-1, VOCAB), targets.view(-1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(SHAPES), required=True)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    torch.manual_seed(1)
    dev = torch.device("cuda")
    model = Olmo2(**SHAPES[args.model]).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, fused=True)
    step_fn = torch.compile(model)
    tok = torch.randint(0, VOCAB, (args.batch, SEQ), device=dev)
    tgt = torch.randint(0, VOCAB, (args.batch, SEQ), device=dev)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step_fn(tok, tgt)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    s = (time.perf_counter() - t0) / args.steps
    print(f"torch {args.model} tokens/s {args.batch * SEQ / s:.1f} step_s {s:.4f} "
          f"params {sum(p.numel() for p in model.parameters())} device {torch.cuda.get_device_name()}")


if __name__ == "__main__":
    main()
