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
    """fastlstm.functional and fastlstm.reference share one signature per cell."""

    module = None

    def runner(self, problem):
        spec = problem.spec
        cell_forward, cell_backward = spec.forward(self.module), spec.backward(self.module)

        def forward():
            return cell_forward(*problem.weights)[0]

        def train_step():
            y, *_, cache = cell_forward(*problem.weights, return_cache=True)
            cell_backward(cache, problem.dy)
            return y

        steps = [np.ascontiguousarray(problem.x[:, t:t + 1]) for t in range(problem.time_steps)]

        def stream():
            states = (None,) * spec.states
            ys = []
            for x_t in steps:
                y, *states = cell_forward(x_t, problem.kernel, problem.recurrent_kernel,
                                          problem.bias, *states)
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


# Where each peer's gate blocks come from: indices into Keras' blocks (LSTM
# i, f, c, o; GRU z, r, h). PyTorch orders the GRU's r, z, n; ONNX orders
# the LSTM's i, o, f, c.
TORCH_GATES = {"lstm": (0, 1, 2, 3), "gru": (1, 0, 2), "simple_rnn": (0,)}
ONNX_GATES = {"lstm": (0, 3, 1, 2), "gru": (0, 1, 2), "simple_rnn": (0,)}


def reorder_gates(array, order):
    """`array`'s gate blocks along its last axis, taken in `order`."""
    blocks = np.split(array, len(order), axis=-1)
    return np.concatenate([blocks[k] for k in order], axis=-1)


def _bias_rows(bias):
    """(input bias, recurrent bias) of a Keras bias; a one-row bias is the
    input bias, its recurrent bias zero."""
    if bias.ndim == 2:
        return bias[0], bias[1]
    return bias, np.zeros_like(bias)


def torch_weights(cell, kernel, recurrent_kernel, bias):
    """A cell's Keras weights as PyTorch's layer-0 parameters.

    Parameters
    ----------
    cell : {"lstm", "gru", "simple_rnn"}
    kernel, recurrent_kernel, bias : ndarray
        Keras' layout: (features, G), (units, G), (G,) or the GRU's (2, G).

    Returns
    -------
    dict of str -> ndarray
        ``weight_ih_l0`` (G, features), ``weight_hh_l0`` (G, units),
        ``bias_ih_l0`` and ``bias_hh_l0`` (G,), in PyTorch's gate order, for
        nn.LSTM, nn.GRU or nn.RNN.
    """
    order = TORCH_GATES[cell]
    b_ih, b_hh = _bias_rows(bias)
    return {"weight_ih_l0": reorder_gates(kernel, order).T,
            "weight_hh_l0": reorder_gates(recurrent_kernel, order).T,
            "bias_ih_l0": reorder_gates(b_ih, order), "bias_hh_l0": reorder_gates(b_hh, order)}


def onnx_weights(cell, kernel, recurrent_kernel, bias):
    """A cell's Keras weights as the W, R and B inputs of ONNX's LSTM, GRU or RNN.

    Parameters
    ----------
    cell : {"lstm", "gru", "simple_rnn"}
    kernel, recurrent_kernel, bias : ndarray
        Keras' layout, as for torch_weights.

    Returns
    -------
    dict of str -> ndarray
        ``W`` (1, G, features), ``R`` (1, G, units) and ``B`` (1, 2G): one
        direction, ONNX's gate order, B the input bias then the recurrent one.
    """
    order = ONNX_GATES[cell]
    b_input, b_recurrent = _bias_rows(bias)
    return {"W": reorder_gates(kernel, order).T[None],
            "R": reorder_gates(recurrent_kernel, order).T[None],
            "B": np.concatenate([reorder_gates(b_input, order),
                                 reorder_gates(b_recurrent, order)])[None]}


# Each cell's PyTorch module and the options that make it compute Keras' cell
# (nn.GRU has the reset gate after the recurrent product, Keras' reset_after).
_TORCH_MODULES = {"lstm": ("LSTM", {}), "gru": ("GRU", {}),
                  "simple_rnn": ("RNN", {"nonlinearity": "tanh"})}


class Torch(Peer):
    """PyTorch's nn.LSTM, nn.GRU or nn.RNN (tanh), weights from torch_weights."""

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

    def _module(self, problem):
        """nn.LSTM, nn.GRU or nn.RNN (tanh) holding the problem's weights."""
        import torch

        name, options = _TORCH_MODULES[problem.cell]
        module = getattr(torch.nn, name)(problem.features, problem.units, batch_first=True,
                                         **options).to(getattr(torch, problem.dtype))
        with torch.no_grad():
            for name, value in torch_weights(problem.cell, problem.kernel,
                                             problem.recurrent_kernel, problem.bias).items():
                getattr(module, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))
        return module

    def runner(self, problem):
        import torch

        module = self._module(problem)
        x, dy = torch.from_numpy(problem.x), torch.from_numpy(problem.dy)

        def forward():
            with torch.no_grad():
                return module(x)[0].numpy()

        def train_step():
            xg = x.clone().requires_grad_(True)
            y = module(xg)[0]
            y.backward(dy)
            return y.detach().numpy()

        steps = [x[:, t:t + 1].contiguous() for t in range(problem.time_steps)]

        def stream():
            state, ys = None, []
            with torch.no_grad():
                for x_t in steps:
                    y, state = module(x_t, state)
                    ys.append(y)
                return torch.cat(ys, dim=1).numpy()

        return Runner(forward, train_step, stream)


# Each cell's ONNX operator and the attributes that make it compute Keras' cell.
_ONNX_OPERATORS = {"lstm": ("LSTM", {}), "gru": ("GRU", {"linear_before_reset": 1}),
                   "simple_rnn": ("RNN", {"activations": ["Tanh"]})}
# (initial state inputs, final state outputs) by the number of states.
_ONNX_STATES = {2: (("initial_h", "initial_c"), ("Y_h", "Y_c")), 1: (("initial_h",), ("Y_h",))}


class OnnxRuntime(Peer):
    """ONNX Runtime's LSTM, GRU (linear_before_reset=1, Keras' reset_after) or
    RNN (tanh) operator: inference only.

    Its CPU operators take time-major input only, so x is transposed once,
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
        weights = onnx_weights(problem.cell, problem.kernel, problem.recurrent_kernel,
                               problem.bias)
        t = 1 if with_states else t
        inputs = [helper.make_tensor_value_info("X", element, [t, b, i])]
        names = ["X", "W", "R", "B"]
        outputs = [helper.make_tensor_value_info("Y", element, [t, 1, b, h])]
        if with_states:
            initial, final = _ONNX_STATES[problem.spec.states]
            inputs += [helper.make_tensor_value_info(n, element, [1, b, h]) for n in initial]
            names += ["", *initial]
            outputs += [helper.make_tensor_value_info(n, element, [1, b, h]) for n in final]
        operator, attributes = _ONNX_OPERATORS[problem.cell]
        node = helper.make_node(operator, names, [o.name for o in outputs], hidden_size=h,
                                **attributes)
        graph = helper.make_graph([node], problem.cell, inputs, outputs, initializer=[
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
            # LSTM and GRU sessions build, but runs fail ("... operator does not
            # support double yet"); RNN has no double kernel at all.
            raise Unsupported(f"ONNX Runtime's CPU {_ONNX_OPERATORS[problem.cell][0]} runs "
                              f"float32 only, not {problem.dtype}")
        session = self._session(problem, with_states=False)
        x_time_major = np.ascontiguousarray(problem.x.transpose(1, 0, 2))

        def forward():
            return session.run(None, {"X": x_time_major})[0][:, 0].transpose(1, 0, 2)

        step_session = self._session(problem, with_states=True)
        steps = [np.ascontiguousarray(x_time_major[t:t + 1]) for t in range(problem.time_steps)]
        zeros = np.zeros((1, problem.batch, problem.units), problem.dtype)
        initial, _ = _ONNX_STATES[problem.spec.states]

        def stream():
            states = [zeros] * len(initial)
            ys = []
            for x_t in steps:
                y, *states = step_session.run(None, {"X": x_t, **dict(zip(initial, states))})
                ys.append(y[:, 0])
            return np.concatenate(ys).transpose(1, 0, 2)

        return Runner(forward, None, stream, settle_seconds=self.settle_seconds)


def all_peers():
    """Every peer the suite knows, fastlstm first."""
    return [FastLSTM(), Torch(), OnnxRuntime(), Reference()]
