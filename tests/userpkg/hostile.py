"""A careless or hostile user's code (fn=py): wrong return values, hangs, exceptions."""
import os
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


def held_square(x):
    """x * x, once the file DYDX_TEST_GO names exists (at most two minutes later): the run
    holds its folder until the test has had a second process try the same folder."""
    deadline = time.monotonic() + 120
    while not os.path.exists(os.environ["DYDX_TEST_GO"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return x * x


def stuck_in_native_code(x):
    import signal
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})  # the alarm cannot reach it
    time.sleep(3600)
    return x
