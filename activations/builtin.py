"""Activations that torch ships, wrapped so every hyper-parameter is keyword-only and ``inplace`` stays off."""

from __future__ import annotations

import torch.nn as nn

from activations.registry import register


def _builtin(name: str, family: str, description: str, reference: str, aliases: tuple[str, ...] = ()):
    return register(
        name, family=family, description=description, reference=reference, aliases=aliases, source="builtin"
    )


@_builtin(
    "sigmoid",
    "sigmoid-like",
    "logistic 1/(1+e^-x); derivative at most 1/4, not zero-centred",
    "Rumelhart, Hinton & Williams 1986",
    aliases=("logistic",),
)
class Sigmoid(nn.Sigmoid):
    def __init__(self) -> None:
        super().__init__()


@_builtin("tanh", "sigmoid-like", "hyperbolic tangent; zero-centred sigmoid", "LeCun et al. 1998, Efficient BackProp")
class Tanh(nn.Tanh):
    def __init__(self) -> None:
        super().__init__()


@_builtin("relu", "rectifier", "max(0, x)", "Nair & Hinton 2010; Glorot, Bordes & Bengio 2011")
class ReLU(nn.ReLU):
    def __init__(self, *, inplace: bool = False) -> None:
        super().__init__(inplace=inplace)


@_builtin(
    "leaky_relu", "rectifier", "x for x>0, negative_slope*x otherwise", "Maas, Hannun & Ng 2013", aliases=("lrelu",)
)
class LeakyReLU(nn.LeakyReLU):
    def __init__(self, *, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__(negative_slope=negative_slope, inplace=inplace)


@_builtin(
    "prelu", "rectifier", "leaky ReLU with a learnable negative slope", "He et al. 2015, Delving Deep into Rectifiers"
)
class PReLU(nn.PReLU):
    def __init__(self, *, num_parameters: int = 1, init: float = 0.25) -> None:
        super().__init__(num_parameters=num_parameters, init=init)


@_builtin(
    "rrelu",
    "rectifier",
    "leaky ReLU with a random slope in [lower, upper] while training, their mean in eval",
    "Xu et al. 2015, Empirical Evaluation of Rectified Activations",
)
class RReLU(nn.RReLU):
    def __init__(self, *, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False) -> None:
        super().__init__(lower=lower, upper=upper, inplace=inplace)


@_builtin("elu", "exponential", "x for x>0, alpha*(e^x - 1) otherwise", "Clevert, Unterthiner & Hochreiter 2016")
class ELU(nn.ELU):
    def __init__(self, *, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__(alpha=alpha, inplace=inplace)


@_builtin(
    "celu",
    "exponential",
    "x for x>0, alpha*(e^(x/alpha) - 1) otherwise; C1 for every alpha",
    "Barron 2017, Continuously Differentiable Exponential Linear Units",
)
class CELU(nn.CELU):
    def __init__(self, *, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__(alpha=alpha, inplace=inplace)


@_builtin(
    "selu",
    "exponential",
    "scaled ELU with self-normalising constants; wants LeCun normal init",
    "Klambauer et al. 2017, Self-Normalizing Neural Networks",
)
class SELU(nn.SELU):
    def __init__(self, *, inplace: bool = False) -> None:
        super().__init__(inplace=inplace)


@_builtin("gelu", "smooth-gated", "x*Phi(x), exact (erf) form", "Hendrycks & Gimpel 2016")
class GELU(nn.GELU):
    def __init__(self) -> None:
        super().__init__(approximate="none")


@_builtin("gelu_tanh", "smooth-gated", "x*Phi(x) with the tanh approximation of Phi", "Hendrycks & Gimpel 2016")
class GELUTanh(nn.GELU):
    def __init__(self) -> None:
        super().__init__(approximate="tanh")


@_builtin(
    "silu",
    "smooth-gated",
    "x*sigmoid(x) (swish with beta=1)",
    "Elfwing, Uchibe & Doya 2018; Ramachandran, Zoph & Le 2017",
    aliases=("swish",),
)
class SiLU(nn.SiLU):
    def __init__(self, *, inplace: bool = False) -> None:
        super().__init__(inplace=inplace)


@_builtin("mish", "smooth-gated", "x*tanh(softplus(x))", "Misra 2019, Mish")
class Mish(nn.Mish):
    def __init__(self, *, inplace: bool = False) -> None:
        super().__init__(inplace=inplace)


@_builtin("softplus", "rectifier", "log(1 + e^(beta*x))/beta, a smooth ReLU", "Dugas et al. 2001")
class Softplus(nn.Softplus):
    def __init__(self, *, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__(beta=beta, threshold=threshold)


@_builtin(
    "softsign",
    "sigmoid-like",
    "x/(1 + |x|); saturates polynomially, not exponentially",
    "Bergstra et al. 2009; Glorot & Bengio 2010",
)
class Softsign(nn.Softsign):
    def __init__(self) -> None:
        super().__init__()


@_builtin("hardtanh", "bounded-piecewise", "x clipped to [min_val, max_val]", "Collobert 2004")
class Hardtanh(nn.Hardtanh):
    def __init__(self, *, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        super().__init__(min_val=min_val, max_val=max_val, inplace=inplace)


@_builtin(
    "hardsigmoid",
    "bounded-piecewise",
    "relu6(x + 3)/6, a piecewise-linear sigmoid",
    "Howard et al. 2019, Searching for MobileNetV3",
)
class Hardsigmoid(nn.Hardsigmoid):
    def __init__(self, *, inplace: bool = False) -> None:
        super().__init__(inplace=inplace)


@_builtin(
    "hardswish",
    "smooth-gated",
    "x*relu6(x + 3)/6, a piecewise swish (not smooth)",
    "Howard et al. 2019, Searching for MobileNetV3",
)
class Hardswish(nn.Hardswish):
    def __init__(self, *, inplace: bool = False) -> None:
        super().__init__(inplace=inplace)


@_builtin(
    "relu6", "bounded-piecewise", "min(max(0, x), 6)", "Krizhevsky 2010, Convolutional Deep Belief Networks on CIFAR-10"
)
class ReLU6(nn.ReLU6):
    def __init__(self, *, inplace: bool = False) -> None:
        super().__init__(inplace=inplace)


@_builtin("logsigmoid", "other", "log(sigmoid(x)) = -softplus(-x); non-positive", "torch.nn.LogSigmoid")
class LogSigmoid(nn.LogSigmoid):
    def __init__(self) -> None:
        super().__init__()


@_builtin("tanhshrink", "other", "x - tanh(x); flat near zero, linear far out", "torch.nn.Tanhshrink")
class Tanhshrink(nn.Tanhshrink):
    def __init__(self) -> None:
        super().__init__()


@_builtin(
    "identity",
    "other",
    "f(x) = x: the linear baseline (the network collapses to a linear model)",
    "textbook baseline",
    aliases=("linear", "none"),
)
class Identity(nn.Identity):
    def __init__(self) -> None:
        super().__init__()
