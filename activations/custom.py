"""Activations written here from their papers' formulas; each is tested against its formula and gradcheck."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

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
        # tanh keeps the sign, so leaky_relu of tanh(x) is tanh(x) for x > 0 and a*tanh(x) otherwise: equal to the
        # formula, gradient at 0 included, in two fused kernels (a where() on x took 5x as long, forward and backward)
        return F.leaky_relu(torch.tanh(x), self.a)


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
        # x * rsqrt(1 + alpha*min(x, 0)^2): the factor is 1 for x >= 0, so no where(); min(x, 0) as -relu(-x), whose
        # backward is cheaper than clamp's (3x faster than the where() form, forward and backward, equal values)
        # (alpha = 1, the default, skips its multiply: one pass less each way, and the same bits)
        neg = -torch.relu(-x)
        square = neg.square() if self.alpha == 1.0 else self.alpha * neg.square()
        return x * torch.rsqrt(1.0 + square)


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
        s = torch.sin(self.a * x)
        return torch.addcmul(x, s, s, value=1.0 / self.a)  # x + s*s/a in one kernel


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


class _FirstMax(torch.autograd.Function):
    """``max(dim=-1)`` over a short last dimension: the same maxima (of a tie between 0 and -0, either) and the
    gradient to the same winner (the first of a tie; a NaN wins), by elementwise passes over the group members.
    torch's reduction loops over each group of 2: 7x slower forward (maxout's 128 x 16 x 28 x 28 batch, one thread)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, track: bool) -> torch.Tensor:
        best, winner = x[..., 0], None
        for j in range(1, x.shape[-1]):
            member = x[..., j]
            if track:  # the winners, for a backward (not while evaluating)
                wins = torch.logical_not(best >= member).logical_and_(best == best)  # larger, or NaN where best isn't
                winner = wins.long() if winner is None else winner.masked_fill_(wins, j)
            best = torch.maximum(best, member)
        ctx.save_for_backward(winner)
        ctx.shape = x.shape
        return best.contiguous()  # as max(dim) gives it: (..., groups) in order, whatever the input's layout

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (winner,) = ctx.saved_tensors
        if winner is None:  # groups of one
            return grad.unsqueeze(-1), None
        return grad.new_zeros(ctx.shape).scatter_(-1, winner.unsqueeze(-1), grad.unsqueeze(-1)), None


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
        # the features last: on a channels-last batch (the CNN on the CPU) each group of k is then contiguous and so is
        # the result, 4x faster than a reduction over a strided dimension; the same maxima and winners
        groups = x.movedim(1, -1).unflatten(-1, (-1, self.k))
        return _FirstMax.apply(groups, torch.is_grad_enabled() and x.requires_grad).movedim(-1, 1)


@_custom(
    "maxout_matched",
    "other",
    "maxout (k=2) in a network narrowed until it has ReLU's parameter count: the function without the extra capacity",
    "Goodfellow et al. 2013, Maxout Networks (parameter-matched comparison)",
    elementwise=False,
)
class MaxoutMatched(Maxout):
    matches_parameters = True  # bench.harness.models narrows the hidden widths to the plain network's parameter count


class _GatedLinear(nn.Module):
    """value * gate(other) over the two halves of the features (channels), as in Shazeer 2020's GLU variants (one
    projection gates another; here the two projections are the halves of the layer before, which is twice as wide)."""

    width_factor = 0.5

    def __init__(self) -> None:
        super().__init__()

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] % 2:
            raise ValueError(f"{type(self).__name__} needs an even feature width, got {x.shape[1]}")
        value, other = x.chunk(2, dim=1)
        return value * self.gate(other)


def _gated(name: str, gate: str, reference: str):
    return _custom(
        name,
        "gated-linear",
        f"a*{gate}(b) over the halves a, b of the features: the layer before is twice as wide",
        reference,
        elementwise=False,
    )


def _gated_matched(name: str, reference: str):
    return _custom(
        f"{name}_matched",
        "gated-linear",
        f"{name} in a network narrowed until it has ReLU's parameter count: the gate without the extra capacity",
        f"{reference} (parameter-matched comparison)",
        elementwise=False,
    )


SHAZEER = "Shazeer 2020, GLU Variants Improve Transformer"
DAUPHIN = "Dauphin et al. 2017, Language Modeling with Gated Convolutional Networks"


@_gated("glu", "sigmoid", DAUPHIN)
class GLU(_GatedLinear):
    def gate(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


@_gated("reglu", "relu", SHAZEER)
class ReGLU(_GatedLinear):
    def gate(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


@_gated("geglu", "gelu", SHAZEER)
class GEGLU(_GatedLinear):
    def gate(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x)


@_gated("swiglu", "silu", SHAZEER)
class SwiGLU(_GatedLinear):
    def gate(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x)


# The same functions in a network narrowed to ReLU's parameter count (bench.harness.models.build), as maxout_matched
@_gated_matched("glu", DAUPHIN)
class GLUMatched(GLU):
    matches_parameters = True


@_gated_matched("reglu", SHAZEER)
class ReGLUMatched(ReGLU):
    matches_parameters = True


@_gated_matched("geglu", SHAZEER)
class GEGLUMatched(GEGLU):
    matches_parameters = True


@_gated_matched("swiglu", SHAZEER)
class SwiGLUMatched(SwiGLU):
    matches_parameters = True
