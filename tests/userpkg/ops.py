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
