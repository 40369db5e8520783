"""A careless or hostile user's code (fn=py): wrong return values, hangs, exceptions."""
import time

import torch


def summed(x):
    return x.sum()  # a 0-d tensor, not one value per element


def integers(x):
    return (x * 10).long()


def nothing(x):
    return None


def python_number(x):
    return 1.5


def numpy_array(x):
    return x.detach().numpy() * 2


def too_few(x):
    return x[: x.numel() // 2] * 2


def upcast(x):
    return x.double() * 2


def spins(x):
    while True:  # never returns, and swallows every Exception
        try:
            sum(range(1000))
        except Exception:
            pass


def sleeps(x):
    time.sleep(3600)
    return x


def raises(x):
    raise ValueError("my op is broken")


def square(x):
    return x * x


def wrong_shape_derivative(x):
    return torch.zeros(3, dtype=x.dtype)


def slow_square(x):
    time.sleep(0.5)  # long enough for a second process to try the same folder
    return x * x


def stuck_in_native_code(x):
    import signal
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # the alarm cannot reach it
    time.sleep(3600)
    return x
