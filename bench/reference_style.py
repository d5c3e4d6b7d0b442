"""The reference design's styling step, reproduced as a peer for `bench/compare`.

It styles every JPEG of a folder with a fast-neural-style network and writes JPEGs of the same
names into another folder, one frame at a time, the way the reference design does (ffmpeg
writes the frames before and stitches them after; see bench/compare.py).

Engines:
- `torch` (the reference's own): an eager PyTorch TransformerNet (Johnson et al. 2016, the
  PyTorch examples' layout) whose weights are read from the ONNX file's initializers;
- `onnxruntime`: the ONNX file itself through Python's onnxruntime, for machines without torch.

The engine used is printed on the first line of output, and `--check` compares the torch
network against onnxruntime on one frame (they must agree to float rounding).
"""

import argparse
import os
import sys
import time

import numpy as np
from PIL import Image


def onnx_weights(path):
    """The Conv (weight, bias) and InstanceNormalization (scale, bias) initializers, in graph order."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    convs, norms = [], []
    for node in model.graph.node:
        if node.op_type == "Conv":
            convs.append((init[node.input[1]], init[node.input[2]]))
        elif node.op_type == "InstanceNormalization":
            norms.append((init[node.input[1]], init[node.input[2]]))
    if len(convs) != 16 or len(norms) != 15:
        sys.exit(
            f"{path}: expected the fast-neural-style graph (16 Conv, 15 InstanceNormalization), "
            f"found {len(convs)} Conv and {len(norms)} InstanceNormalization"
        )
    return convs, norms


def torch_transformer_net(path, threads):
    """The PyTorch examples' TransformerNet, with the ONNX file's weights."""
    import torch
    from torch import nn

    torch.set_num_threads(threads)

    class ConvLayer(nn.Module):
        def __init__(self, cin, cout, k, stride):
            super().__init__()
            self.pad = nn.ReflectionPad2d(k // 2)
            self.conv = nn.Conv2d(cin, cout, k, stride)

        def forward(self, x):
            return self.conv(self.pad(x))

    class UpsampleConvLayer(ConvLayer):
        def forward(self, x):
            x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
            return super().forward(x)

    class ResidualBlock(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1 = ConvLayer(c, c, 3, 1)
            self.in1 = nn.InstanceNorm2d(c, affine=True)
            self.conv2 = ConvLayer(c, c, 3, 1)
            self.in2 = nn.InstanceNorm2d(c, affine=True)

        def forward(self, x):
            y = torch.relu(self.in1(self.conv1(x)))
            return self.in2(self.conv2(y)) + x

    class TransformerNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = ConvLayer(3, 32, 9, 1)
            self.in1 = nn.InstanceNorm2d(32, affine=True)
            self.conv2 = ConvLayer(32, 64, 3, 2)
            self.in2 = nn.InstanceNorm2d(64, affine=True)
            self.conv3 = ConvLayer(64, 128, 3, 2)
            self.in3 = nn.InstanceNorm2d(128, affine=True)
            self.res = nn.Sequential(*[ResidualBlock(128) for _ in range(5)])
            self.deconv1 = UpsampleConvLayer(128, 64, 3, 1)
            self.in4 = nn.InstanceNorm2d(64, affine=True)
            self.deconv2 = UpsampleConvLayer(64, 32, 3, 1)
            self.in5 = nn.InstanceNorm2d(32, affine=True)
            self.deconv3 = ConvLayer(32, 3, 9, 1)

        def forward(self, x):
            y = torch.relu(self.in1(self.conv1(x)))
            y = torch.relu(self.in2(self.conv2(y)))
            y = torch.relu(self.in3(self.conv3(y)))
            y = self.res(y)
            y = torch.relu(self.in4(self.deconv1(y)))
            y = torch.relu(self.in5(self.deconv2(y)))
            return self.deconv3(y)

    net = TransformerNet().eval()
    convs, norms = onnx_weights(path)
    conv_layers = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    norm_layers = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    with torch.no_grad():
        for layer, (w, b) in zip(conv_layers, convs):
            if tuple(layer.weight.shape) != w.shape:
                sys.exit(f"{path}: conv weight {w.shape} does not fit {tuple(layer.weight.shape)}")
            layer.weight.copy_(torch.from_numpy(w.astype(np.float32)))
            layer.bias.copy_(torch.from_numpy(b.astype(np.float32)))
        for layer, (g, b) in zip(norm_layers, norms):
            layer.weight.copy_(torch.from_numpy(g.astype(np.float32)))
            layer.bias.copy_(torch.from_numpy(b.astype(np.float32)))

    def style(chw):
        with torch.inference_mode():
            return net(torch.from_numpy(chw)[None])[0].numpy()

    return style


def onnxruntime_net(path, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def style(chw):
        return session.run(None, {name: chw[None]})[0][0]

    return style


def load_chw(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32).transpose(2, 0, 1).copy()


def to_image(chw):
    return Image.fromarray(np.clip(chw, 0, 255).round().astype(np.uint8).transpose(1, 2, 0))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("frames", help="folder of input JPEGs")
    p.add_argument("styled", help="folder for the styled JPEGs")
    p.add_argument("--model", required=True, help="fast-neural-style ONNX file")
    p.add_argument("--engine", choices=["torch", "onnxruntime"], default="torch")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of the styled frames")
    p.add_argument("--check", action="store_true", help="compare torch with onnxruntime on the first frame and exit")
    args = p.parse_args()

    names = sorted(n for n in os.listdir(args.frames) if n.lower().endswith((".jpg", ".jpeg")))
    if not names:
        sys.exit(f"{args.frames}: no JPEG frames")
    if args.check:
        x = load_chw(os.path.join(args.frames, names[0]))
        a = torch_transformer_net(args.model, args.threads)(x)
        b = onnxruntime_net(args.model, args.threads)(x)
        diff = np.abs(a - b)
        print(f"torch vs onnxruntime on {names[0]}: max |diff| {diff.max():.4f}, mean {diff.mean():.5f} (0..255 scale)")
        return
    if args.engine == "torch":
        import torch

        style = torch_transformer_net(args.model, args.threads)
        print(f"engine: PyTorch {torch.__version__} eager TransformerNet, weights from {args.model}, {args.threads} threads", flush=True)
    else:
        import onnxruntime as ort

        style = onnxruntime_net(args.model, args.threads)
        print(f"engine: onnxruntime {ort.__version__} (Python), {args.model}, {args.threads} threads", flush=True)
    os.makedirs(args.styled, exist_ok=True)
    model_seconds = 0.0
    for name in names:
        x = load_chw(os.path.join(args.frames, name))
        t = time.perf_counter()
        y = style(x)
        model_seconds += time.perf_counter() - t
        to_image(y).save(os.path.join(args.styled, name), quality=args.quality)
    print(f"styled {len(names)} frames; model {model_seconds:.2f} s", flush=True)


if __name__ == "__main__":
    main()
