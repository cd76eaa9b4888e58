"""The implementations a benchmark compares, behind one small interface.

Every peer runs the same Problem (same weights, same inputs) and returns its
output as a NumPy array in Keras layout, so the suite can check that all
agree before timing them. fastlstm and the NumPy reference are always
there; PyTorch and ONNX Runtime are optional and report why they are
missing in one line.
"""
import numpy as np

from .. import functional, reference
from .._threads import set_num_threads
from .timing import with_blas_threads


class Unsupported(Exception):
    """This peer cannot run this problem (e.g. a dtype it lacks)."""


class Runner:
    """Callables of one peer on one problem; None where the peer lacks the mode.

    forward() -> y (batch, time, units); train_step() -> y, after a backward
    pass with the problem's dy; stream() -> y, the same sequence fed one time
    step per call with the states carried between calls (streaming).
    """

    def __init__(self, forward, train_step=None, stream=None, settle_seconds=0.0):
        self.forward = forward
        self.train_step = train_step
        self.stream = stream
        # A peer whose idle threads keep spinning after a call gets this long
        # to go quiet, so it does not slow down whoever is timed next.
        self.settle_seconds = settle_seconds


class Peer:
    """Base class: a named implementation with a thread count."""

    name = "peer"
    threads = 1

    def missing(self):
        """None when usable, else a one-line reason (and how to install it)."""
        return None

    def set_threads(self, threads):
        self.threads = threads

    def close(self):
        """Undo any process-wide setting made by set_threads."""

    def runner(self, problem):
        raise NotImplementedError


class _NumpyModulePeer(Peer):
    """fastlstm.functional and fastlstm.reference share one signature."""

    module = None

    def runner(self, problem):
        module = self.module

        def forward():
            return module.lstm_forward(*problem.weights)[0]

        def train_step():
            y, _, _, cache = module.lstm_forward(*problem.weights, return_cache=True)
            module.lstm_backward(cache, problem.dy)
            return y

        steps = [np.ascontiguousarray(problem.x[:, t:t + 1]) for t in range(problem.time_steps)]

        def stream():
            h = c = None
            ys = []
            for x_t in steps:
                y, h, c = module.lstm_forward(x_t, problem.kernel, problem.recurrent_kernel,
                                              problem.bias, h, c)
                ys.append(y)
            return np.concatenate(ys, axis=1)

        return Runner(forward, train_step, stream)


class FastLSTM(_NumpyModulePeer):
    name = "fastlstm"
    module = functional

    def set_threads(self, threads):
        super().set_threads(threads)
        set_num_threads(threads)


class Reference(_NumpyModulePeer):
    """The readable NumPy reference, its BLAS held to the peer's thread count.

    The limit is held only while one of its own calls runs. Held across the
    whole grid, it would be in force while PyTorch trains on 1 thread, and
    PyTorch's later calls on 2 threads run up to 2x slower in the same
    process (the cause inside PyTorch is not known; the trigger is).
    """

    name = "reference"
    module = reference

    def runner(self, problem):
        runner = super().runner(problem)
        return Runner(*(with_blas_threads(self.threads, fn)
                        for fn in (runner.forward, runner.train_step, runner.stream)))


class Torch(Peer):
    """PyTorch's nn.LSTM; its gate order i, f, g, o is Keras' i, f, c, o."""

    name = "torch"
    _threads_before = None  # torch's own count, restored by close()

    def missing(self):
        try:
            import torch  # noqa: F401
        except ImportError:
            return "PyTorch is not installed (pip install torch==2.13.0): skipped"
        return None

    def set_threads(self, threads):
        import torch

        super().set_threads(threads)
        if self._threads_before is None:
            self._threads_before = torch.get_num_threads()
        torch.set_num_threads(threads)

    def close(self):
        import torch

        if self._threads_before is not None:
            torch.set_num_threads(self._threads_before)
            self._threads_before = None

    def runner(self, problem):
        import torch

        dtype = getattr(torch, problem.dtype)
        lstm = torch.nn.LSTM(problem.features, problem.units, batch_first=True).to(dtype)
        with torch.no_grad():
            lstm.weight_ih_l0.copy_(torch.from_numpy(problem.kernel.T.copy()))
            lstm.weight_hh_l0.copy_(torch.from_numpy(problem.recurrent_kernel.T.copy()))
            lstm.bias_ih_l0.copy_(torch.from_numpy(problem.bias))
            lstm.bias_hh_l0.zero_()
        x, dy = torch.from_numpy(problem.x), torch.from_numpy(problem.dy)

        def forward():
            with torch.no_grad():
                return lstm(x)[0].numpy()

        def train_step():
            xg = x.clone().requires_grad_(True)
            y = lstm(xg)[0]
            y.backward(dy)
            return y.detach().numpy()

        steps = [x[:, t:t + 1].contiguous() for t in range(problem.time_steps)]

        def stream():
            state, ys = None, []
            with torch.no_grad():
                for x_t in steps:
                    y, state = lstm(x_t, state)
                    ys.append(y)
                return torch.cat(ys, dim=1).numpy()

        return Runner(forward, train_step, stream)


def _onnx_gates(keras_matrix):
    """(rows, 4H) in Keras' gate order i, f, c, o -> (4H, rows) in ONNX's i, o, f, c."""
    i, f, c, o = np.split(keras_matrix, 4, axis=-1)
    return np.concatenate([i, o, f, c], axis=-1).T


class OnnxRuntime(Peer):
    """ONNX Runtime's LSTM operator (inference only).

    Its CPU LSTM takes time-major input only, so x is transposed once,
    outside the timed call, and the output comes back as a transposed view.
    Its worker threads spin after each run by design, so each call is
    followed by a short settle pause.
    """

    name = "onnxruntime"
    settle_seconds = 0.05

    def missing(self):
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError:
            return "ONNX Runtime is not installed (pip install onnx onnxruntime): skipped"
        return None

    def _session(self, problem, with_states):
        """A session for the whole sequence, or (with_states) for one step fed its states."""
        import onnxruntime
        from onnx import helper, numpy_helper
        from onnx.helper import np_dtype_to_tensor_dtype

        b, t, i, h = problem.shape
        element = np_dtype_to_tensor_dtype(np.dtype(problem.dtype))
        weights = {"W": _onnx_gates(problem.kernel)[None],
                   "R": _onnx_gates(problem.recurrent_kernel)[None],
                   "B": np.concatenate([_onnx_gates(problem.bias[None])[:, 0],
                                        np.zeros(4 * h, problem.dtype)])[None]}
        t = 1 if with_states else t
        inputs = [helper.make_tensor_value_info("X", element, [t, b, i])]
        names = ["X", "W", "R", "B"]
        outputs = [helper.make_tensor_value_info("Y", element, [t, 1, b, h])]
        if with_states:
            inputs += [helper.make_tensor_value_info(n, element, [1, b, h])
                       for n in ("initial_h", "initial_c")]
            names += ["", "initial_h", "initial_c"]
            outputs += [helper.make_tensor_value_info(n, element, [1, b, h])
                        for n in ("Y_h", "Y_c")]
        node = helper.make_node("LSTM", names, [o.name for o in outputs], hidden_size=h)
        graph = helper.make_graph([node], "lstm", inputs, outputs, initializer=[
            numpy_helper.from_array(np.ascontiguousarray(v, problem.dtype), k)
            for k, v in weights.items()])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        return onnxruntime.InferenceSession(model.SerializeToString(), options,
                                            providers=["CPUExecutionProvider"])

    def runner(self, problem):
        if problem.dtype != "float32":
            # Sessions build, but runs fail: "LSTM operator does not support double yet".
            raise Unsupported(f"ONNX Runtime's CPU LSTM runs float32 only, not {problem.dtype}")
        session = self._session(problem, with_states=False)
        x_time_major = np.ascontiguousarray(problem.x.transpose(1, 0, 2))

        def forward():
            return session.run(None, {"X": x_time_major})[0][:, 0].transpose(1, 0, 2)

        step_session = self._session(problem, with_states=True)
        steps = [np.ascontiguousarray(x_time_major[t:t + 1]) for t in range(problem.time_steps)]
        zeros = np.zeros((1, problem.batch, problem.units), problem.dtype)

        def stream():
            h = c = zeros
            ys = []
            for x_t in steps:
                y, h, c = step_session.run(None, {"X": x_t, "initial_h": h, "initial_c": c})
                ys.append(y[:, 0])
            return np.concatenate(ys).transpose(1, 0, 2)

        return Runner(forward, None, stream, settle_seconds=self.settle_seconds)


def all_peers():
    """Every peer the suite knows, fastlstm first."""
    return [FastLSTM(), Torch(), OnnxRuntime(), Reference()]
