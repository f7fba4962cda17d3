"""Fixed-shape inference replayed from a CUDA graph: one launch per forward instead of hundreds of kernels."""
import torch


class CudaGraphInference:
    """`CudaGraphInference(forward, amp_dtype)(video)`: `forward(video)` (a tensor or a tuple of tensors, no
    gradient) captured in a CUDA graph on the first call with each input shape and dtype, then replayed with
    the input copied into the graph's buffer; autocast to `amp_dtype` inside the graph (weight-cast cache
    off, as graph capture requires). Inputs on another device run `forward` as it is: nothing is captured
    and no CUDA call is made, so CPU runs are unaffected. The outputs are copies (the next replay overwrites
    the graph's own). The weights are read at replay, so later in-place weight updates are seen."""

    def __init__(self, forward, amp_dtype=None, warmup_calls=3):
        self.forward, self.amp_dtype, self.warmup_calls = forward, amp_dtype, warmup_calls
        self.graphs = {}  # (shape, dtype, device) -> (graph, static input, static output)

    def __call__(self, video):
        if video.device.type != "cuda":
            return self.forward(video)
        key = (tuple(video.shape), video.dtype, video.device)
        if key not in self.graphs:
            self.graphs[key] = self._capture(video)
        graph, static_input, static_output = self.graphs[key]
        static_input.copy_(video)
        graph.replay()
        return tuple(t.clone() for t in static_output) if isinstance(static_output, tuple) else static_output.clone()

    def _run(self, video):
        with torch.no_grad(), torch.autocast("cuda", dtype=self.amp_dtype, enabled=self.amp_dtype is not None,
                                             cache_enabled=False):
            return self.forward(video)

    def _capture(self, video):
        static_input = video.clone()
        side = torch.cuda.Stream(video.device)  # warm-up (cuDNN/cuBLAS choices, lazy init) off the default stream
        side.wait_stream(torch.cuda.current_stream(video.device))
        with torch.cuda.stream(side):
            for _ in range(self.warmup_calls):
                self._run(static_input)
        torch.cuda.current_stream(video.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_output = self._run(static_input)
        return graph, static_input, static_output
