"""How the analysis runs its model: PyTorch, ONNX Runtime or OpenVINO, in fp32, bf16 or int8; which path `auto`
takes on this machine, and why (summary.json, the console and the page say it).

`auto` on a CPU tries the paths fastest first (FASTEST_FIRST, measured in docs/BENCHMARKS.md) and takes the
first one that is installed and verified: on a few drawn test faces (datasets/synthetic.py) an fp32 path must
give PyTorch fp32's logits within FP32_TOLERANCE, a bf16 path its top-1 class on every clip and probabilities
within MEAN_PROBABILITY_TOLERANCE on average. bf16 is tried only where the CPU has native bf16 (AMX or
AVX512-BF16); int8 only when asked for (`candidates`). The verdicts are kept in the cache folder
(inference/export.py), so a checkpoint is exported and verified once per library versions and CPU. On a GPU,
PyTorch runs as before (autocast).
"""
import ctypes
import importlib.util
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from datasets.synthetic import render_clip
from models.quantize import quantize_int8
from utils.files import atomic_output, write_json_atomically

from .export import INPUT_NAME, cache_folder, export_onnx

BACKENDS = ("auto", "torch", "openvino", "onnxruntime")
PRECISIONS = ("auto", "fp32", "bf16", "int8")
PATHS = {"torch": ("fp32", "bf16", "int8"), "onnxruntime": ("fp32", "int8"), "openvino": ("fp32", "bf16")}
MODULES = {"torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino"}
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
# Every path of PATHS, fastest first for S2D base (seconds per window, docs/BENCHMARKS.md): a 2-core Xeon with AMX
# and AVX512-BF16 (ONNX Runtime int8 not measured there: placed after PyTorch's int8), and a 2-core AMD EPYC with
# AVX2 only (the int8 paths about equal, PyTorch's needs no export; in fp32 PyTorch was not slower than the others).
FASTEST_FIRST = {
    "native_bf16": (("openvino", "bf16"), ("torch", "bf16"), ("torch", "int8"), ("onnxruntime", "int8"),
                    ("openvino", "fp32"), ("torch", "fp32"), ("onnxruntime", "fp32")),
    "no_bf16": (("torch", "int8"), ("onnxruntime", "int8"), ("torch", "fp32"), ("openvino", "fp32"),
                ("onnxruntime", "fp32"), ("torch", "bf16"), ("openvino", "bf16")),
}
FP32_TOLERANCE = 1e-4  # largest |logit difference| / max(1, largest |logit|) of an fp32 path
MEAN_PROBABILITY_TOLERANCE = 0.01
CHECK_CLIPS = 4
VERDICTS_FILE = "verified.json"


class BackendError(ValueError):
    """A backend or precision that cannot run here; the message says what to pass instead."""


@dataclass(frozen=True)
class Cpu:
    name: str
    flags: frozenset

    @property
    def native_bf16(self) -> bool:
        return any(flag in self.flags for flag in NATIVE_BF16_FLAGS)


def read_cpu(cpuinfo="/proc/cpuinfo") -> Cpu:
    """The CPU's model name and feature flags as Linux reports them (empty where the file is missing)."""
    name, flags = "", frozenset()
    if os.path.isfile(cpuinfo):
        with open(cpuinfo) as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not name:
                    name = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = frozenset(value.split())
    return Cpu(name, flags)


@dataclass
class Choice:
    """The path that runs, and why (summary.json's `backend`)."""
    backend: str
    precision: str
    reason: str
    notes: list = field(default_factory=list)  # what auto skipped and why

    def describe(self) -> str:
        return f"{self.backend} {self.precision} ({self.reason})"


def installed(backend: str) -> bool:
    return importlib.util.find_spec(MODULES[backend]) is not None


def check_request(backend: str, precision: str, device: torch.device) -> None:
    """A one-line BackendError for a backend or precision that cannot run on `device` at all."""
    if backend not in BACKENDS:
        raise BackendError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise BackendError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if backend not in ("auto", "torch") and precision not in ("auto", *PATHS[backend]):
        raise BackendError(f"--backend {backend} runs {', '.join(PATHS[backend])}, not {precision}")
    if device.type != "cpu" and (backend not in ("auto", "torch") or precision == "int8"):
        what = f"--backend {backend}" if backend not in ("auto", "torch") else "--precision int8"
        raise BackendError(f"{what} runs on the CPU only; pass --device cpu")
    if backend not in ("auto", "torch") and not installed(backend):
        raise BackendError(f"--backend {backend}: the {MODULES[backend]} package is not installed "
                           "(bash scripts/setup.sh installs it)")


def with_cpu_int8(cpu_int8: bool, backend: str, precision: str) -> tuple[str, str]:
    """`--cpu_int8` stands for `--backend torch --precision int8`; with another backend or precision it is an error."""
    if not cpu_int8:
        return backend, precision
    if backend not in ("auto", "torch") or precision not in ("auto", "int8"):
        raise BackendError(f"--cpu_int8 is --backend torch --precision int8; it cannot go with --backend {backend} "
                           f"--precision {precision}")
    return "torch", "int8"


def needs_cpu(backend: str, precision: str) -> bool:
    """True when only the CPU runs what was asked for (the default device is then the CPU)."""
    return backend in ("openvino", "onnxruntime") or precision == "int8"


def candidates(backend: str, precision: str, cpu: Cpu, is_installed=None) -> tuple[list, list]:
    """The CPU paths to try in order, each (backend, precision, needs_verification), and the backends left out
    because they are not installed. An explicit backend and precision is taken as asked; an explicit precision
    alone, the fastest installed backend that runs it; `auto` precision, the fastest paths down to the fp32 of
    the backend (PyTorch under `auto`), bf16 only with native bf16, each but that fp32 only once verified.
    `auto` precision never takes int8: its top-1 agreement with fp32 on windows of a real photograph is 95%
    (PyTorch) and 98% (ONNX Runtime) with the trained tiny model, below the 99% required (docs/BENCHMARKS.md);
    --precision int8 asks for it."""
    if backend != "auto" and precision != "auto":
        return [(backend, precision, False)], []
    is_installed = is_installed or installed
    fallback = (backend if backend != "auto" else "torch", "fp32")
    paths, missing = [], []
    for b, p in FASTEST_FIRST["native_bf16" if cpu.native_bf16 else "no_bf16"]:
        if backend not in ("auto", b) or precision not in ("auto", p) or precision == "auto" and (
                p == "int8" or p == "bf16" and not cpu.native_bf16):
            continue
        if not is_installed(b):
            missing += [b] * (b not in missing)
            continue
        paths.append((b, p, precision == "auto" and (b, p) != fallback))
        if precision != "auto" or (b, p) == fallback:
            break
    return paths, missing


class TorchRunner:
    """S2D and its landmark network in PyTorch: fp32, bf16 autocast, or int8 Linear layers (CPU); `gpu_amp_dtype`
    is the GPU's autocast type, used when the precision is `auto`."""

    def __init__(self, model, landmark, device, precision, gpu_amp_dtype=None):
        self.model = quantize_int8(model) if precision == "int8" else model
        self.landmark, self.device = landmark, device
        self.amp_dtype = torch.bfloat16 if precision == "bf16" else gpu_amp_dtype if precision == "auto" else None

    @torch.inference_mode()
    def __call__(self, video):
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            logits, features = self.model(video, self.landmark(video))
        return logits.float(), features.float()


class OnnxRuntimeRunner:
    """The exported ONNX file in ONNX Runtime on the CPU (int8: its dynamic quantization of the MatMuls)."""

    def __init__(self, path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def __call__(self, video):
        logits, features = self.session.run(None, {INPUT_NAME: video.cpu().numpy()})
        return torch.from_numpy(logits), torch.from_numpy(features)


class OpenVINORunner:
    """The exported ONNX file compiled by OpenVINO for the CPU at the asked inference precision (fp32 is set
    explicitly: OpenVINO's default on a CPU with native bf16 is bf16); the compiled model is kept in `cache_dir`
    (OpenVINO's model cache), so later runs skip the compilation."""

    def __init__(self, path, precision, cache_dir):
        import openvino

        with signal_stack_kept():
            self.compiled = openvino.Core().compile_model(path, "CPU", {
                "INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[precision],
                "INFERENCE_NUM_THREADS": torch.get_num_threads(), "CACHE_DIR": cache_dir})

    def __call__(self, video):
        outputs = self.compiled(video.cpu().numpy())
        return torch.from_numpy(outputs[0].copy()), torch.from_numpy(outputs[1].copy())


class _SignalStack(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


@contextmanager
def signal_stack_kept():
    """Puts this thread's alternate signal stack back as it was. OpenVINO 2026.4 gives the thread that compiles a
    model a signal stack of the model's own and, when the model is freed, the one it replaced: two models freed in
    the order they were made leave the thread on freed memory, and the next signal a Python handler takes (Python
    handlers run on that stack; a stop request is one) kills the process with SIGSEGV."""
    sigaltstack = getattr(ctypes.CDLL(None), "sigaltstack", None)  # POSIX; elsewhere nothing to keep
    if sigaltstack is None:
        yield
        return
    previous = _SignalStack()
    sigaltstack(None, ctypes.byref(previous))
    try:
        yield
    finally:
        sigaltstack(ctypes.byref(previous), None)


def check_clips(video_model, count=CHECK_CLIPS) -> torch.Tensor:
    """The model's input for `count` drawn faces, one expression each (datasets/synthetic.py, fixed seed)."""
    rng = np.random.default_rng(0)
    size, frames = video_model.settings.short_side_size, video_model.settings.num_frames
    clips = [np.stack([np.asarray(f.convert("RGB")) for f in render_clip(k % 7, frames, size, rng)])
             for k in range(count)]
    return video_model.inputs(clips)


def agreement(reference, candidate) -> dict:
    """How close a path's (logits, features) are to PyTorch fp32's on the same clips."""
    ref, got = reference[0].double(), candidate[0].double()
    p, q = ref.softmax(-1), got.softmax(-1)
    return dict(max_logit_difference=float((ref - got).abs().max()), largest_logit=float(ref.abs().max()),
                top1_agreement=float((ref.argmax(-1) == got.argmax(-1)).double().mean()),
                mean_probability_difference=float((p - q).abs().mean()),
                max_feature_difference=float((reference[1].double() - candidate[1].double()).abs().max()))


def agrees(precision, measured) -> bool:
    if precision == "fp32":
        return measured["max_logit_difference"] <= FP32_TOLERANCE * max(1.0, measured["largest_logit"])
    return measured["top1_agreement"] == 1.0 and measured["mean_probability_difference"] <= MEAN_PROBABILITY_TOLERANCE


class BackendLoader:
    """Builds the runners of one VideoModel (exports and quantizes into its cache folder on first use)."""

    def __init__(self, video_model, cache_dir, cpu, log):
        self.video_model, self.cache_dir, self.cpu, self.log = video_model, cache_dir, cpu, log
        self._folder = self._reference = self._inputs = None

    @property
    def folder(self):
        if self._folder is None:
            try:
                self._folder = cache_folder(self.video_model, self.cache_dir, self.cpu.name)
            except OSError as error:
                raise BackendError(f"cache folder: {error}; pass a writable --backend_cache folder") from error
        return self._folder

    def onnx_file(self, precision):
        """The fp32 export, or its int8 dynamic quantization (ONNX Runtime's), written once into the folder."""
        fp32 = os.path.join(self.folder, "model.onnx")
        if not os.path.isfile(fp32):
            self.log(f"exporting {self.video_model.settings.model} to {fp32} (once per checkpoint and versions)")
            export_onnx(self.video_model, fp32)
        if precision != "int8":
            return fp32
        int8 = os.path.join(self.folder, "model_int8.onnx")
        if not os.path.isfile(int8):
            from onnxruntime.quantization import QuantType, quantize_dynamic

            # the matrix products only: quantized convolutions (ConvInteger) made the landmark network 7x slower
            with atomic_output(int8) as tmp_path, _quiet_root_logger():
                quantize_dynamic(fp32, tmp_path, op_types_to_quantize=["MatMul", "Gemm"], weight_type=QuantType.QInt8)
        return int8

    def runner(self, backend, precision):
        vm = self.video_model
        if backend == "torch":
            return TorchRunner(vm.model, vm.landmark, vm.device, precision)
        if backend == "onnxruntime":
            return OnnxRuntimeRunner(self.onnx_file(precision))
        return OpenVINORunner(self.onnx_file(precision), precision, os.path.join(self.folder, "openvino"))

    def verified(self, backend, precision, runner) -> dict:
        """How `runner` agrees with PyTorch fp32 on the check clips, and whether that is enough (`agrees`);
        the verdict is kept in the folder."""
        path, key = os.path.join(self.folder, VERDICTS_FILE), f"{backend}/{precision}"
        verdicts = {}
        if os.path.isfile(path):
            with open(path) as handle:
                verdicts = json.load(handle)
        if key not in verdicts:
            if self._reference is None:
                self.log(f"verifying the faster paths against PyTorch fp32 on {CHECK_CLIPS} drawn faces "
                         "(once per checkpoint and versions)")
                vm = self.video_model
                self._inputs = check_clips(vm)
                self._reference = TorchRunner(vm.model, vm.landmark, vm.device, "fp32")(self._inputs)
            measured = agreement(self._reference, runner(self._inputs))
            verdicts[key] = dict(measured, agrees=agrees(precision, measured))
            write_json_atomically(path, verdicts)
        return verdicts[key]


def load_backend(video_model, backend="auto", precision="auto", cache_dir=None, log=print, cpu=None):
    """(runner, Choice): the runner maps the model's input (N, 3, T, S, S) to float32 (logits, features); on a
    GPU it is PyTorch as before."""
    device = video_model.device
    check_request(backend, precision, device)
    if device.type != "cpu":
        runner = TorchRunner(video_model.model, video_model.landmark, device, precision, video_model.amp_dtype)
        dtype = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[runner.amp_dtype]
        reason = "the GPU path (autocast)" if precision == "auto" else "asked for"
        return runner, Choice("torch", dtype, f"{reason} on {device}")
    cpu = cpu or read_cpu()
    loader = BackendLoader(video_model, cache_dir, cpu, log)
    paths, missing = candidates(backend, precision, cpu)
    notes = [f"{', '.join(missing)} not installed (bash scripts/setup.sh installs it): skipped"] if missing else []
    for line in notes:
        log(f"backend auto: {line}")
    for b, p, verify in paths:
        if (b, p) == ("openvino", "bf16") and not cpu.native_bf16:
            raise BackendError("OpenVINO runs bf16 only on a CPU with native bf16 (AMX or AVX512-BF16), which this "
                               "one lacks (it would run fp32): pass --precision fp32, or --backend torch for bf16")
        runner = loader.runner(b, p)
        if verify:
            measured = loader.verified(b, p, runner)
            if not measured["agrees"]:
                notes.append(f"{b} {p} did not agree with PyTorch fp32 here ({_short(measured)}): skipped")
                log(f"backend auto: {notes[-1]}")
                continue
            reason = f"auto: the fastest path verified here ({_short(measured)})"
        elif backend != "auto" and precision != "auto":
            reason = "asked for"
        elif precision != "auto":
            reason = f"auto: the fastest installed backend for {p}"
        else:
            reason = ("auto: no faster path installed and verified" if len(paths) > 1 or missing
                      else "auto: the fastest path listed for this kind of CPU")
        if p == "bf16" and not cpu.native_bf16:
            notes.append("this CPU has no native bf16 (AMX or AVX512-BF16): bf16 is emulated, slower than fp32")
            log(f"warning: {notes[-1]}")
        kind = "native bf16" if cpu.native_bf16 else "no native bf16"
        return runner, Choice(b, p, f"{reason}; CPU {cpu.name or 'unknown'}, {kind}", notes)
    raise AssertionError("unreachable: every list of paths ends with one that needs no verification")


@contextmanager
def _quiet_root_logger():
    """ONNX Runtime's quantizer advises pre-processing through the root logger; that advice is not for users."""
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)
    try:
        yield
    finally:
        logging.getLogger().setLevel(level)


def _short(measured) -> str:
    return (f"max |dlogit| {measured['max_logit_difference']:.2g}, top-1 agreement "
            f"{100 * measured['top1_agreement']:.0f}%, mean |dprob| {measured['mean_probability_difference']:.2g}")
