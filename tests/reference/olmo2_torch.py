"""PyTorch OLMo2 of quopt's shapes, for the side-by-side speed comparison only (bench_torch.py).

The architecture of src/model/olmo2.cpp as docs/model.md describes it: token embedding; per block
q, k, v projections without bias, RMSNorm over all query and over all key features (qk_norm), RoPE,
causal attention, output projection, h = x + RMSNorm(attn) and y = h + RMSNorm(mlp(h)) (OLMo2's
post-norm, arXiv 2501.00656), the paper's non-gated ReLU^2 MLP of width mlp_ratio * d_model rounded to
a multiple of 8 (arXiv 2509.23500); a final RMSNorm; the head tied to the embedding; mean token
cross-entropy. Every weight matrix is drawn from N(0, init_std^2) and every norm gain is 1, as quopt
initialises them (not with quopt's random stream: the comparison is of speed, not of values).
"""

import tomllib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Shape:
    d_model: int = 64  # the defaults are quopt's (docs/config.md)
    n_layers: int = 2
    n_heads: int = 4
    vocab_size: int = 4096
    seq_len: int = 64
    mlp_ratio: float = 4.0
    rope_theta: float = 500000.0
    norm_eps: float = 1e-6
    init_std: float = 0.02

    @property
    def mlp_hidden(self):
        h = int(self.d_model * self.mlp_ratio + 0.5)  # ModelConfig::mlp_hidden (src/model/config.cpp)
        return (h + 7) // 8 * 8


def load_shape(model_toml):
    """The [model] table of one of quopt's model files (inputs/models/*.toml)."""
    table = tomllib.loads(Path(model_toml).read_text())["model"]
    known = Shape.__dataclass_fields__
    unsupported = {"mlp": table.get("mlp", "relu2") != "relu2", "qk_norm": table.get("qk_norm", True) is not True,
                   "tie_embeddings": table.get("tie_embeddings", True) is not True,
                   "n_kv_heads": table.get("n_kv_heads", 0) not in (0, table.get("n_heads"))}
    for key, bad in unsupported.items():
        if bad:
            raise SystemExit(f"{model_toml}: model.{key} = {table[key]!r} is not implemented by the reference "
                             "(it has quopt's defaults only: relu2, qk_norm, tied head, multi-head attention)")
    return Shape(**{k: v for k, v in table.items() if k in known})


class RMSNorm(nn.Module):
    def __init__(self, width, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rope_tables(shape):
    d = shape.d_model // shape.n_heads
    inv = 1.0 / shape.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = torch.arange(shape.seq_len, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def rope(x, cos, sin):  # x [B, H, T, D]; rotate the pairs (x_i, x_{i + D/2})
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)


class Block(nn.Module):
    def __init__(self, s):
        super().__init__()
        c, f = s.d_model, s.mlp_hidden
        self.heads = s.n_heads
        self.q, self.k, self.v, self.o = (nn.Linear(c, c, bias=False) for _ in range(4))
        self.q_norm, self.k_norm = RMSNorm(c, s.norm_eps), RMSNorm(c, s.norm_eps)
        self.attn_norm, self.mlp_norm = RMSNorm(c, s.norm_eps), RMSNorm(c, s.norm_eps)
        self.up, self.down = nn.Linear(c, f, bias=False), nn.Linear(f, c, bias=False)

    def forward(self, x, cos, sin):
        b, t, c = x.shape
        split = lambda y: y.view(b, t, self.heads, c // self.heads).transpose(1, 2)  # noqa: E731
        q = rope(split(self.q_norm(self.q(x))), cos, sin)
        k = rope(split(self.k_norm(self.k(x))), cos, sin)
        att = F.scaled_dot_product_attention(q, k, split(self.v(x)), is_causal=True)
        h = x + self.attn_norm(self.o(att.transpose(1, 2).reshape(b, t, c)))
        return h + self.mlp_norm(self.down(F.relu(self.up(h)).square()))


class Olmo2(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.embed = nn.Embedding(s.vocab_size, s.d_model)
        self.blocks = nn.ModuleList(Block(s) for _ in range(s.n_layers))
        self.final_norm = RMSNorm(s.d_model, s.norm_eps)
        cos, sin = rope_tables(s)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=s.init_std)

    def forward(self, tokens, targets):
        x = self.embed(tokens)
        t = tokens.shape[1]
        for blk in self.blocks:
            x = blk(x, self.cos[:t], self.sin[:t])
        logits = self.final_norm(x) @ self.embed.weight.t()  # tied head
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
