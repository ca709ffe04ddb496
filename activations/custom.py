"""Activations written here from their papers' formulas; each is tested against its formula and gradcheck."""

from __future__ import annotations

import torch
import torch.nn as nn

from activations.registry import register


def _custom(name: str, family: str, description: str, reference: str, **kw):
    return register(name, family=family, description=description, reference=reference, source="custom", **kw)


@_custom(
    "swish_beta",
    "smooth-gated",
    "x*sigmoid(beta*x) with beta learnable",
    "Ramachandran, Zoph & Le 2017, Searching for Activation Functions",
)
class SwishBeta(nn.Module):
    def __init__(self, *, beta: float = 1.0) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.tensor(float(beta)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.beta * x)


@_custom(
    "lecun_tanh",
    "sigmoid-like",
    "1.7159*tanh(2x/3): f(+-1) = +-1, unit variance for unit inputs",
    "LeCun et al. 1998, Efficient BackProp",
)
class LeCunTanh(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


@_custom(
    "penalized_tanh",
    "sigmoid-like",
    "tanh(x) for x>0, a*tanh(x) otherwise",
    "Xu, Huang & Li 2016, Revise Saturated Activation Functions",
)
class PenalizedTanh(nn.Module):
    def __init__(self, *, a: float = 0.25) -> None:
        super().__init__()
        self.a = float(a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.tanh(x)
        return torch.where(x > 0, t, self.a * t)


@_custom(
    "isrlu",
    "exponential",
    "x for x>=0, x/sqrt(1 + alpha*x^2) otherwise: ELU-like without exp",
    "Carlile et al. 2017, Improving Deep Learning by Inverse Square Root Linear Units",
)
class ISRLU(nn.Module):
    def __init__(self, *, alpha: float = 1.0) -> None:
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        neg = torch.clamp(x, max=0.0)
        return torch.where(x >= 0, x, neg * torch.rsqrt(1.0 + self.alpha * neg * neg))


@_custom("squareplus", "rectifier", "(x + sqrt(x^2 + b))/2, an algebraic softplus", "Barron 2021, Squareplus")
class Squareplus(nn.Module):
    def __init__(self, *, b: float = 4.0) -> None:
        super().__init__()
        if b < 0:
            raise ValueError(f"b must be >= 0, got {b}")
        self.b = float(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x + torch.sqrt(x * x + self.b))


@_custom("bent_identity", "other", "(sqrt(x^2 + 1) - 1)/2 + x", "Godfrey & Gashler 2015")
class BentIdentity(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (torch.sqrt(x * x + 1.0) - 1.0) + x


@_custom(
    "abs",
    "rectifier",
    "|x|, absolute-value rectification",
    "Jarrett et al. 2009, What is the Best Multi-Stage Architecture",
)
class Abs(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.abs(x)


@_custom("gaussian", "other", "exp(-x^2), a radial-basis unit", "Broomhead & Lowe 1988")
class Gaussian(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-x * x)


@_custom(
    "sine",
    "periodic",
    "sin(w0*x)",
    "Sitzmann et al. 2020, Implicit Neural Representations with Periodic Activation Functions",
)
class Sine(nn.Module):
    def __init__(self, *, w0: float = 1.0) -> None:
        super().__init__()
        self.w0 = float(w0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.w0 * x)


@_custom(
    "snake",
    "periodic",
    "x + sin^2(a*x)/a: periodic wiggle on a linear trend",
    "Ziyin, Hartwig & Ueda 2020, Neural Networks Fail to Learn Periodic Functions",
)
class Snake(nn.Module):
    def __init__(self, *, a: float = 1.0) -> None:
        super().__init__()
        if a == 0:
            raise ValueError("a must be non-zero")
        self.a = float(a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.sin(self.a * x).pow(2) / self.a


@_custom(
    "arctan",
    "sigmoid-like",
    "arctan(x): zero-centred, saturates like 1/x",
    "Glorot & Bengio 2010 (softsign/arctan family)",
)
class Arctan(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.atan(x)


@_custom("squared_relu", "rectifier", "relu(x)^2", "So et al. 2021, Primer: Searching for Efficient Transformers")
class SquaredReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x).square()


@_custom(
    "maxout",
    "other",
    "max over k adjacent features (channels): the layer before is k times wider",
    "Goodfellow et al. 2013, Maxout Networks",
    elementwise=False,
)
class Maxout(nn.Module):
    def __init__(self, *, k: int = 2) -> None:
        super().__init__()
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k!r}")
        self.k = k
        self.width_factor = 1.0 / k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] % self.k:
            raise ValueError(f"maxout(k={self.k}) needs a feature width divisible by {self.k}, got {x.shape[1]}")
        return x.unflatten(1, (-1, self.k)).max(dim=2).values


@_custom(
    "maxout_matched",
    "other",
    "maxout (k=2) in a network narrowed until it has ReLU's parameter count: the function without the extra capacity",
    "Goodfellow et al. 2013, Maxout Networks (parameter-matched comparison)",
    elementwise=False,
)
class MaxoutMatched(Maxout):
    matches_parameters = True  # bench.harness.models narrows the hidden widths to the plain network's parameter count
