"""Record small PyTorch models for tests/test_convert_torch_onnx.py.

Run once with the peers' environment (PyTorch and onnx installed):

    PYTHONPATH=. /work/venv-bench/bin/python tests/data/make_torch_onnx_files.py

For each case it writes into tests/data/torch_onnx_files/:

- CASE.pt: ``torch.save(model.state_dict())``, the modules' weights under
  their attribute names (``rnn.weight_ih_l0``, ``fc.weight`` ...);
- CASE.onnx: ``torch.onnx.export`` of the model (the TorchScript exporter,
  ``dynamo=False``, which needs no other package), a dynamic batch axis;
  for FIXED_SHAPE_CASES the export's defaults, every axis fixed (PyTorch
  then builds the zero initial states with Expand, not ConstantOfShape);
- CASE.npz: ``x`` (in the model's own layout), ``y`` (PyTorch's output),
  ``batch_first``, ``read`` (what the Linear reads, as from_torch names
  it), ``nonlinearity`` ("" for LSTM and GRU), and the state_dict again as
  ``state_dict/NAME`` arrays, for tests without PyTorch.
"""
import pathlib
import warnings

import numpy as np
import torch

OUT = pathlib.Path(__file__).resolve().parent / "torch_onnx_files"

# name: (module class, constructor arguments, what the Linear reads)
CASES = {
    "lstm_stacked_last_step": (torch.nn.LSTM, dict(num_layers=2, batch_first=True),
                               "last_step"),
    "gru_bidirectional_final_state": (torch.nn.GRU, dict(bidirectional=True,
                                                         batch_first=True), "final_state"),
    "rnn_relu_bidirectional_time_major_all_steps": (
        torch.nn.RNN, dict(num_layers=2, bidirectional=True, nonlinearity="relu"), "all_steps"),
    "lstm_bidirectional_stacked_all_steps": (torch.nn.LSTM, dict(num_layers=2,
                                                                 bidirectional=True,
                                                                 batch_first=True),
                                             "all_steps"),
    "gru_time_major_last_step": (torch.nn.GRU, dict(), "last_step"),
    "rnn_tanh_final_state": (torch.nn.RNN, dict(batch_first=True), "final_state"),
}
# Exported without dynamic_axes; seeded after CASES.
FIXED_SHAPE_CASES = {
    "lstm_fixed_shape_all_steps": (torch.nn.LSTM, dict(batch_first=True), "all_steps"),
    "gru_fixed_shape_time_major_last_step": (torch.nn.GRU, dict(num_layers=2), "last_step"),
}
FEATURES, UNITS, OUTPUTS, BATCH, TIME = 3, 4, 2, 2, 5


class Recorded(torch.nn.Module):
    """A recurrent module and a Linear reading it as `read` says."""

    def __init__(self, rnn_class, options, read):
        super().__init__()
        self.rnn = rnn_class(FEATURES, UNITS, **options)
        directions = 2 if options.get("bidirectional") else 1
        self.fc = torch.nn.Linear(UNITS * directions, OUTPUTS)
        self.read = read
        self.batch_first = options.get("batch_first", False)
        self.bidirectional = directions == 2

    def forward(self, x):
        out, state = self.rnn(x)
        h_n = state[0] if isinstance(state, tuple) else state
        if self.read == "last_step":
            return self.fc(out[:, -1] if self.batch_first else out[-1])
        if self.read == "final_state":
            return self.fc(torch.cat([h_n[-2], h_n[-1]], dim=1) if self.bidirectional
                           else h_n[-1])
        return self.fc(out)


def record(name, rnn_class, options, read, seed, dynamic=True):
    torch.manual_seed(seed)
    model = Recorded(rnn_class, options, read).eval()
    batch_first = options.get("batch_first", False)
    x = torch.randn(BATCH, TIME, FEATURES) if batch_first else torch.randn(TIME, BATCH, FEATURES)
    with torch.no_grad():
        y = model(x)
    state_dict = model.state_dict()
    torch.save(state_dict, OUT / f"{name}.pt")
    batch_axis = 0 if batch_first else 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        axes = {"dynamic_axes": {"x": {batch_axis: "batch"}, "y": {0: "batch"}}} \
            if dynamic else {}
        torch.onnx.export(model, (x,), str(OUT / f"{name}.onnx"), dynamo=False,
                          input_names=["x"], output_names=["y"], **axes)
    np.savez(OUT / f"{name}.npz", x=x.numpy(), y=y.numpy(), batch_first=batch_first, read=read,
             nonlinearity=options.get("nonlinearity", "tanh" if rnn_class is torch.nn.RNN
                                      else ""),
             **{f"state_dict/{key}": value.numpy() for key, value in state_dict.items()})


def main():
    OUT.mkdir(exist_ok=True)
    for seed, (name, (rnn_class, options, read)) in enumerate(sorted(CASES.items())):
        record(name, rnn_class, options, read, seed)
        print("wrote", name)
    for seed, (name, (rnn_class, options, read)) in enumerate(sorted(FIXED_SHAPE_CASES.items()),
                                                             start=len(CASES)):
        record(name, rnn_class, options, read, seed, dynamic=False)
        print("wrote", name)


if __name__ == "__main__":
    main()
