"""harness.config: the composed default, and validate()'s exact one-line messages, for
elementwise functions and networks alike."""
from __future__ import annotations

import pytest
import torch
from hydra.core.config_store import ConfigStore
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from harness.config.schema import DEVICES
from harness.config.store import register_configs
from harness.config.validate import ConfigError, validate
from harness.dtypes import DTYPES
from harness.functions.catalog import FUNCTIONS
from harness.methods import METHODS
from harness.networks.presets import NETWORKS
from harness.study.settings import GridConf
from harness.study.spec import NetworkSubject
from support import EXPRESSION_WORDS, FUNCTION_NAMES, NN_ACTIVATION_NAMES, ROOT

CONF_DIR = ROOT / "conf"

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")


@pytest.fixture
def rejects(compose_config):
    """rejects(message, *overrides, edit=None): validate() fails with exactly `message`."""
    def _rejects(message: str, *overrides: str, edit=None) -> None:
        cfg = compose_config(*overrides)
        if edit is not None:
            edit(cfg)
        with pytest.raises(ConfigError) as info:
            validate(cfg)
        assert str(info.value) == message
    return _rejects


# --- what validates -------------------------------------------------------------------------

@no_gpu
def test_default_config_is_the_tutorials_study(compose_config):
    study = validate(compose_config())
    assert (study.subject.name, study.method.name, study.params) == ("sin", "autograd", {})
    assert (study.dtype, study.device) == (torch.float64, torch.device("cpu"))
    assert study.grid == GridConf(start=-10.0, stop=10.0, step=0.01, n=None)
    assert (study.timing.enabled, study.timing.precision, study.timing.min_run_time,
            study.timing.max_run_time, study.timing.num_threads, study.timing.processes) == \
        (True, 0.05, 0.1, 2.0, None, 1)
    assert (study.reference.dps, study.reference.max_points) == (50, 20000)


def test_finite_parameters_reach_the_study(compose_config):
    study = validate(compose_config("method=finite", "method.scheme=forward", "method.h=1e-7",
                                    "dtype=float32"))
    assert study.method.name == "finite"
    assert study.params == {"scheme": "forward", "h": 1e-7}
    assert study.dtype == torch.float32


def test_finite_defaults_to_central_with_the_dtypes_step(compose_config):
    assert validate(compose_config("method=finite")).params == {"scheme": "central", "h": None}


def test_single_point_grid_validates(compose_config):
    study = validate(compose_config("grid.start=1.5", "grid.stop=1.5", "grid.n=1"))
    assert study.grid == GridConf(start=1.5, stop=1.5, step=0.01, n=1)


@pytest.mark.parametrize("group, names", [
    ("fn", FUNCTIONS.names()), ("method", METHODS.names()), ("dtype", sorted(DTYPES)),
    ("device", sorted(DEVICES))])
def test_config_groups_are_filled_from_the_registries(group, names):
    register_configs()
    assert ConfigStore.instance().list(group) == [f"{name}.yaml" for name in names]


def test_registered_function_composes_to_itself(compose_config):
    study = validate(compose_config("fn=tanhshrink"))
    assert (study.subject.name, study.subject.source) == ("tanhshrink", "builtin")


def test_nn_activation_by_name(compose_config):
    study = validate(compose_config("fn=nn", "fn.name=GELU"))
    assert (study.subject.name, study.subject.source) == ("nn.GELU", "nn")


def test_expression_function(compose_config):
    study = validate(compose_config("fn=expr", "fn.expr='x**2*sin(x)'"))
    assert (study.subject.name, study.subject.source) == ("x**2*sin(x)", "expr")


# --- choices ------------------------------------------------------------------------------

def test_hydra_itself_refuses_an_unknown_method_group_choice(compose_config):
    with pytest.raises(MissingConfigException, match="Could not find 'method/bogus'"):
        compose_config("method=bogus")


def test_unknown_method_lists_the_registered_methods(rejects):
    def edit(cfg):
        cfg.method.name = "bogus"
    rejects("unknown method 'bogus'; choose one of: autograd, backward, compiled, complex_step, "
            "finite, forward_ad, loop, numdifftools, richardson, scipy, stencil, vmap_grad",
            edit=edit)


def test_unknown_dtype_lists_the_dtypes(rejects):
    def edit(cfg):
        cfg.dtype.name = "float8"
    rejects("unknown dtype 'float8' (did you mean 'float64'?); choose one of: float64, float32, "
            "float16, bfloat16", edit=edit)


def test_unknown_device_lists_the_devices(rejects):
    assert DEVICES == ("auto", "cpu", "cuda")

    def edit(cfg):
        cfg.device.name = "tpu"
    rejects("unknown device 'tpu'; choose one of: auto, cpu, cuda", edit=edit)


@no_gpu
def test_cuda_without_a_gpu_is_refused(rejects):
    rejects(f"device=cuda but torch {torch.__version__} sees no CUDA GPU on this machine; "
            f"choose one of: auto, cpu", "device=cuda")


@no_gpu
def test_auto_device_falls_back_to_the_cpu(compose_config):
    assert validate(compose_config("device=auto")).device == torch.device("cpu")


# --- method parameters ----------------------------------------------------------------------

@pytest.mark.parametrize("h, shown", [("0", "0.0"), ("-1e-3", "-0.001"), ("inf", "inf"),
                                      ("nan", "nan")])
def test_finite_step_must_be_a_finite_positive_number(rejects, h, shown):
    rejects(f"method.h must be a finite number > 0 (or null for the dtype's default), got {shown}",
            "method=finite", f"method.h={h}")


def test_unknown_finite_scheme_lists_the_schemes(rejects):
    rejects("unknown method.scheme 'upwind'; choose one of: central, forward, backward",
            "method=finite", "method.scheme=upwind")


def test_parameter_the_method_does_not_take_is_refused(compose_config):
    with pytest.raises(ConfigError, match="'h'"):
        validate(compose_config("method=autograd", "+method.h=1"))


# --- grid -------------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, shown", [
    (["grid.step=0"], "np.arange(-10.0, 10.0, 0.0)"),
    (["grid.step=-0.1"], "np.arange(-10.0, 10.0, -0.1)"),
    (["grid.stop=-10"], "np.arange(-10.0, -10.0, 0.01)"),
    (["grid.start=3", "grid.stop=2"], "np.arange(3.0, 2.0, 0.01)"),
])
def test_empty_arange_grid_is_refused(rejects, overrides, shown):
    rejects(f"the grid is empty: {shown} has no points; need grid.step > 0 and "
            f"grid.stop > grid.start, or set grid.n", *overrides)


@pytest.mark.parametrize("n", [0, -3])
def test_grid_needs_at_least_one_point(rejects, n):
    rejects(f"grid.n must be >= 1, got {n}", f"grid.n={n}")


def test_one_point_grid_needs_equal_ends(rejects):
    rejects("grid.n=1 studies one point: set grid.start and grid.stop equal (got -10.0 and 10.0)",
            "grid.n=1")


def test_linspace_grid_needs_stop_above_start(rejects):
    rejects("grid.stop (-20.0) must be > grid.start (-10.0) when grid.n > 1",
            "grid.n=5", "grid.stop=-20")


@pytest.mark.parametrize("key", ["start", "stop", "step"])
def test_grid_ends_and_step_must_be_finite(rejects, key):
    rejects(f"grid.{key} must be a finite number, got inf", f"grid.{key}=inf")


# --- function ---------------------------------------------------------------------------------

def test_unknown_builtin_lists_the_functions(rejects):
    rejects(f"unknown fn 'bogus'; choose one of: {FUNCTION_NAMES}", "fn.name=bogus")


def test_unknown_nn_activation_lists_the_supported_ones(rejects):
    rejects(f"unsupported fn.name 'Softmax' for fn=nn; choose one of: {NN_ACTIVATION_NAMES}",
            "fn=nn", "fn.name=Softmax")


def test_bad_expression_gives_the_parsers_message(rejects):
    rejects(f"fn.expr 'y*x': unknown name 'y' at column 1; {EXPRESSION_WORDS}",
            "fn=expr", "fn.expr='y*x'")


def test_code_in_an_expression_is_a_config_error(rejects):
    text = "__import__('os').system('echo hi')"
    rejects(f"fn.expr {text!r}: only calls of plain function names are allowed at column 1; "
            f"{EXPRESSION_WORDS}", "fn=expr", f'fn.expr="{text}"')


def test_unknown_function_kind_lists_the_kinds(rejects):
    rejects("unknown fn.kind 'weird'; choose one of: builtin, nn, torch, expr, py", "fn.kind=weird")


# --- timing and reference ------------------------------------------------------------------------

def test_timing_needs_a_positive_run_time(rejects):
    rejects("timing.min_run_time must be > 0 seconds, got 0.0", "timing.min_run_time=0")


def test_timing_threads_must_be_positive(rejects):
    rejects("timing.num_threads must be >= 1 (or null: 1 below 32768 points, else torch's "
            "default), got 0", "timing.num_threads=0")


@pytest.mark.parametrize("value", ["0", "1", "-0.5"])
def test_timing_precision_is_a_fraction(rejects, value):
    rejects(f"timing.precision must be a fraction between 0 and 1 (0.02: the median known "
            f"to +-2 %), got {float(value)}", f"timing.precision={value}")


def test_timing_cannot_stop_before_it_may(rejects):
    rejects("timing.max_run_time must be >= timing.min_run_time (0.5 s), got 0.25",
            "timing.min_run_time=0.5", "timing.max_run_time=0.25")


def test_timing_needs_at_least_one_process(rejects):
    rejects("timing.processes must be >= 1 (1: measure in this process), got 0",
            "timing.processes=0")


def test_reference_needs_two_checked_points(rejects):
    rejects("reference.max_points must be >= 2, got 1", "reference.max_points=1")


def test_reference_needs_forty_digits(rejects):
    rejects("reference.dps must be >= 40 digits (the reference is checked at dps-20), got 30",
            "reference.dps=30")



# --- networks (fn.kind=network) ----------------------------------------------------------------

def test_fn_files_exist_for_every_network_and_name_it():
    files = {p.stem: OmegaConf.load(p) for p in (CONF_DIR / "fn").glob("*.yaml")}
    networks = {stem: conf for stem, conf in files.items() if conf.kind == "network"}
    assert sorted(networks) == NETWORKS.names()
    for stem, conf in networks.items():
        assert (conf.name, conf.label, conf.expr, conf.v, conf.train) == \
            (stem, stem, None, "ones", False)


def test_fn_discriminator_composes_into_a_network_study(compose_config):
    study = validate(compose_config("fn=discriminator", "method=finite", "dtype=float32",
                                    "fn.v=random"))
    assert study.subject == NetworkSubject(NETWORKS.get("discriminator"), v_kind="random",
                                           train=False, max_points=None)
    assert (study.method.name, study.params, study.order, study.dtype, study.grid) == \
        ("finite", {"scheme": "central", "h": None}, 1, torch.float32, None)


@pytest.fixture
def network_cfg(compose_config):
    """network_cfg(**fn): a plain (untyped, like a stored config.yaml) network config."""
    def _cfg(**fn):
        cfg = OmegaConf.create(OmegaConf.to_container(compose_config(
            "fn=discriminator", "method=finite", "dtype=float32", "device=cpu", "seed=3")))
        cfg.fn.merge_with(fn)
        return cfg
    return _cfg


def test_a_network_config_validates_to_its_subject_method_and_seed(network_cfg):
    study = validate(network_cfg(v="random", train=True, max_points=16))
    assert study.subject == NetworkSubject(NETWORKS.get("discriminator"), v_kind="random",
                                           train=True, max_points=16)
    assert (study.method.name, study.params, study.dtype, study.device, study.seed) == \
        ("finite", {"scheme": "central", "h": None}, torch.float32, torch.device("cpu"), 3)


@pytest.mark.parametrize("change, message", [
    ({"fn": {"v": "twos"}}, "unknown fn.v 'twos'; choose one of: ones, random"),
    ({"fn": {"train": "yes"}}, "fn.train must be true or false, got 'yes'"),
    ({"fn": {"max_points": 1}}, "fn.max_points must be >= 2, got 1"),
    ({"fn": {"name": "resnet"}}, "unknown network 'resnet'; choose one of: discriminator, "
                                 "tutorial_mlp"),
    ({"order": 2}, "networks: order must be 1 (the vector-Jacobian product; the "
                   "gradient-penalty check covers second order), got 2"),
    ({"method": {"scheme": "upwind"}}, "unknown method.scheme 'upwind'; choose one of: "
                                       "central, forward, backward"),
])
def test_network_config_errors_are_one_exact_line(network_cfg, change, message):
    change = dict(change)
    cfg = network_cfg(**change.pop("fn", {}))
    cfg.merge_with(change)
    with pytest.raises(ConfigError) as caught:
        validate(cfg)
    assert str(caught.value) == message


@pytest.mark.parametrize("method", ["complex_step", "stencil", "scipy"])
def test_a_method_without_a_network_form_is_an_invalid_network_config(rejects, method):
    rejects(f"method {method} does not apply to networks (it needs an elementwise function); "
            f"for networks choose one of: autograd, backward, finite, forward_ad, loop",
            "fn=tutorial_mlp", f"method={method}")
