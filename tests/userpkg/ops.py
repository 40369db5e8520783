"""A user's code: a plain function, its derivative, and custom autograd.Functions."""
import torch


def swish(x):
    return x * torch.sigmoid(x)


def swish_prime(x):
    s = torch.sigmoid(x)
    return s + x * s * (1 - s)


class GoodCube(torch.autograd.Function):
    """x**3 with a correct hand-written backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x


class WrongCube(torch.autograd.Function):
    """x**3 with a planted bug: the backward is 1% too large."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3.03 * x * x


NOT_CALLABLE = 42


def cube(x):
    """x**3 as a user would write it."""
    return x**3


class CancellingSoftplus(torch.autograd.Function):
    """log(1 + e^x) with a mathematically right backward that cancels for x << 0:
    1 - 1/(1 + e^x) is sigmoid(x), but 1/(1 + e^x) rounds towards 1 there."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.log1p(torch.exp(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (1 - 1 / (1 + torch.exp(x)))


class ZeroTailTanh(torch.autograd.Function):
    """tanh with a planted bug: the backward assumes saturation and returns 0 for |x| > 5."""

    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return torch.where(x.abs() > 5, torch.zeros_like(x), grad * (1 - y * y))
