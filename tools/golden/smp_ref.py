"""A faithful PyTorch re-implementation of segmentation_models_pytorch 0.3.4's Unet with
its EfficientNet encoders (efficientnet_pytorch 0.7.1) and ResNet encoders (torchvision),
used as the reference for cqseg's golden files and the PyTorch side of `bench/models`.

smp and efficientnet_pytorch are not installable here (no PyPI); this file reproduces
their module trees (hence their state_dict names and order), their numerics (static
TF-"same" padding computed from the model's image size, BatchNorm eps 1e-3 and
momentum 0.01, swish, squeeze-excitation, drop-connect) and smp's stage split.
`models_golden.py --check-fixture` proves it against the fixture made with the real
smp 0.3.4 (test/data/smp-unet-efficientnet-b2).
"""
import collections
import math
import re
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- efficientnet_pytorch

GlobalParams = collections.namedtuple('GlobalParams', [
    'width_coefficient', 'depth_coefficient', 'image_size', 'dropout_rate', 'num_classes',
    'batch_norm_momentum', 'batch_norm_epsilon', 'drop_connect_rate', 'depth_divisor',
    'min_depth', 'include_top', 'stem_filters', 'head_filters'])
BlockArgs = collections.namedtuple('BlockArgs', [
    'num_repeat', 'kernel_size', 'stride', 'expand_ratio', 'input_filters', 'output_filters',
    'se_ratio', 'id_skip'])

B0_BLOCKS = [
    'r1_k3_s11_e1_i32_o16_se0.25', 'r2_k3_s22_e6_i16_o24_se0.25',
    'r2_k5_s22_e6_i24_o40_se0.25', 'r3_k3_s22_e6_i40_o80_se0.25',
    'r3_k5_s11_e6_i80_o112_se0.25', 'r4_k5_s22_e6_i112_o192_se0.25',
    'r1_k3_s11_e6_i192_o320_se0.25',
]
# width, depth, resolution, dropout (efficientnet_pytorch utils.efficientnet_params)
SCALING = {
    'efficientnet-b0': (1.0, 1.0, 224, 0.2), 'efficientnet-b1': (1.0, 1.1, 240, 0.2),
    'efficientnet-b2': (1.1, 1.2, 260, 0.3), 'efficientnet-b3': (1.2, 1.4, 300, 0.3),
    'efficientnet-b4': (1.4, 1.8, 380, 0.4), 'efficientnet-b5': (1.6, 2.2, 456, 0.4),
    'efficientnet-b6': (1.8, 2.6, 528, 0.5), 'efficientnet-b7': (2.0, 3.1, 600, 0.5),
}
# smp 0.3.4 encoders/efficientnet.py: out_channels and stage_idxs
SMP_EFFICIENTNET = {
    'efficientnet-b0': ((3, 32, 24, 40, 112, 320), (3, 5, 9, 16)),
    'efficientnet-b1': ((3, 32, 24, 40, 112, 320), (5, 8, 16, 23)),
    'efficientnet-b2': ((3, 32, 24, 48, 120, 352), (5, 8, 16, 23)),
    'efficientnet-b3': ((3, 40, 32, 48, 136, 384), (5, 8, 18, 26)),
    'efficientnet-b4': ((3, 48, 32, 56, 160, 448), (6, 10, 22, 32)),
    'efficientnet-b5': ((3, 48, 40, 64, 176, 512), (8, 13, 27, 39)),
    'efficientnet-b6': ((3, 56, 40, 72, 200, 576), (9, 15, 31, 45)),
    'efficientnet-b7': ((3, 64, 48, 80, 224, 640), (11, 18, 38, 55)),
}
# the tiny test spec, the same as src/models/registry.ts 'efficientnet-test'
TEST_BLOCKS = [
    'r1_k3_s11_e1_i8_o8_se0.25', 'r2_k3_s22_e2_i8_o16_se0.25', 'r1_k5_s22_e3_i16_o24_se0.25',
    'r2_k3_s22_e2_i24_o32_se0.25', 'r1_k5_s22_e2_i32_o40_se0.25',
]
TEST_SMP = ((3, 8, 16, 24, 32, 40), (3, 4, 6, 7))


def decode_block(s):
    ops = s.split('_')
    opts = {}
    for op in ops:
        m = re.split(r'(\d.*)', op)
        if len(m) >= 2:
            opts[m[0]] = m[1]
    return BlockArgs(num_repeat=int(opts['r']), kernel_size=int(opts['k']), stride=[int(opts['s'][0])],
                     expand_ratio=int(opts['e']), input_filters=int(opts['i']), output_filters=int(opts['o']),
                     se_ratio=float(opts['se']) if 'se' in opts else None, id_skip='noskip' not in s)


def round_filters(filters, gp):
    multiplier = gp.width_coefficient
    if not multiplier:
        return filters
    divisor = gp.depth_divisor
    min_depth = gp.min_depth
    filters *= multiplier
    min_depth = min_depth or divisor
    new_filters = max(min_depth, int(filters + divisor / 2) // divisor * divisor)
    if new_filters < 0.9 * filters:
        new_filters += divisor
    return int(new_filters)


def round_repeats(repeats, gp):
    multiplier = gp.depth_coefficient
    if not multiplier:
        return repeats
    return int(math.ceil(multiplier * repeats))


def drop_connect(inputs, p, training):
    if not training:
        return inputs
    keep_prob = 1 - p
    # drawn in float32 whatever the model's dtype (float32: as efficientnet_pytorch), so a
    # float64 run of a golden case keeps the same generator stream and the same decisions
    random_tensor = (keep_prob + torch.rand([inputs.shape[0], 1, 1, 1], dtype=torch.float32, device=inputs.device)).to(inputs.dtype)
    return inputs / keep_prob * torch.floor(random_tensor)


def calculate_output_image_size(image_size, stride):
    if image_size is None:
        return None
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    stride = stride if isinstance(stride, int) else stride[0]
    return [int(math.ceil(h / stride)), int(math.ceil(w / stride))]


class SwishImplementation(torch.autograd.Function):
    @staticmethod
    def forward(ctx, i):
        result = i * torch.sigmoid(i)
        ctx.save_for_backward(i)
        return result

    @staticmethod
    def backward(ctx, grad_output):
        i = ctx.saved_tensors[0]
        sigmoid_i = torch.sigmoid(i)
        return grad_output * (sigmoid_i * (1 + i * (1 - sigmoid_i)))


class MemoryEfficientSwish(nn.Module):
    def forward(self, x):
        return SwishImplementation.apply(x)


class NativeSwish(nn.Module):
    """torch's fused silu: the same function; used by the bench's 'torch-silu' variant."""

    def forward(self, x):
        return F.silu(x)


SWISH = {'memory-efficient': MemoryEfficientSwish, 'silu': NativeSwish}


class Conv2dStaticSamePadding(nn.Conv2d):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, image_size=None, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, stride, **kwargs)
        self.stride = self.stride if len(self.stride) == 2 else [self.stride[0]] * 2
        ih, iw = (image_size, image_size) if isinstance(image_size, int) else image_size
        kh, kw = self.weight.size()[-2:]
        sh, sw = self.stride
        oh, ow = math.ceil(ih / sh), math.ceil(iw / sw)
        pad_h = max((oh - 1) * self.stride[0] + (kh - 1) * self.dilation[0] + 1 - ih, 0)
        pad_w = max((ow - 1) * self.stride[1] + (kw - 1) * self.dilation[1] + 1 - iw, 0)
        if pad_h > 0 or pad_w > 0:
            self.static_padding = nn.ZeroPad2d((pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        else:
            self.static_padding = nn.Identity()

    def forward(self, x):
        x = self.static_padding(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def get_same_padding_conv2d(image_size):
    # smp always builds with the table's image_size, so always the static variant
    return partial(Conv2dStaticSamePadding, image_size=image_size)


class MBConvBlock(nn.Module):
    def __init__(self, block_args, global_params, image_size=None, swish='memory-efficient'):
        super().__init__()
        self._block_args = block_args
        self._bn_mom = 1 - global_params.batch_norm_momentum
        self._bn_eps = global_params.batch_norm_epsilon
        self.has_se = (block_args.se_ratio is not None) and (0 < block_args.se_ratio <= 1)
        self.id_skip = block_args.id_skip
        inp = block_args.input_filters
        oup = block_args.input_filters * block_args.expand_ratio
        if block_args.expand_ratio != 1:
            Conv2d = get_same_padding_conv2d(image_size=image_size)
            self._expand_conv = Conv2d(in_channels=inp, out_channels=oup, kernel_size=1, bias=False)
            self._bn0 = nn.BatchNorm2d(num_features=oup, momentum=self._bn_mom, eps=self._bn_eps)
        k = block_args.kernel_size
        s = block_args.stride
        Conv2d = get_same_padding_conv2d(image_size=image_size)
        self._depthwise_conv = Conv2d(in_channels=oup, out_channels=oup, groups=oup, kernel_size=k, stride=s, bias=False)
        self._bn1 = nn.BatchNorm2d(num_features=oup, momentum=self._bn_mom, eps=self._bn_eps)
        image_size = calculate_output_image_size(image_size, s)
        if self.has_se:
            Conv2d = get_same_padding_conv2d(image_size=(1, 1))
            num_squeezed_channels = max(1, int(block_args.input_filters * block_args.se_ratio))
            self._se_reduce = Conv2d(in_channels=oup, out_channels=num_squeezed_channels, kernel_size=1)
            self._se_expand = Conv2d(in_channels=num_squeezed_channels, out_channels=oup, kernel_size=1)
        final_oup = block_args.output_filters
        Conv2d = get_same_padding_conv2d(image_size=image_size)
        self._project_conv = Conv2d(in_channels=oup, out_channels=final_oup, kernel_size=1, bias=False)
        self._bn2 = nn.BatchNorm2d(num_features=final_oup, momentum=self._bn_mom, eps=self._bn_eps)
        self._swish = SWISH[swish]()

    def forward(self, inputs, drop_connect_rate=None):
        x = inputs
        if self._block_args.expand_ratio != 1:
            x = self._swish(self._bn0(self._expand_conv(inputs)))
        x = self._swish(self._bn1(self._depthwise_conv(x)))
        if self.has_se:
            x_squeezed = F.adaptive_avg_pool2d(x, 1)
            x_squeezed = self._se_expand(self._swish(self._se_reduce(x_squeezed)))
            x = torch.sigmoid(x_squeezed) * x
        x = self._bn2(self._project_conv(x))
        # note: the stride of a stage's first block is a list ([1]), so `== 1` is False there
        if self.id_skip and self._block_args.stride == 1 and self._block_args.input_filters == self._block_args.output_filters:
            if drop_connect_rate:
                x = drop_connect(x, p=drop_connect_rate, training=self.training)
            x = x + inputs
        return x


class EfficientNet(nn.Module):
    def __init__(self, blocks_args, global_params, swish='memory-efficient'):
        super().__init__()
        self._global_params = global_params
        self._blocks_args = blocks_args
        bn_mom = 1 - global_params.batch_norm_momentum
        bn_eps = global_params.batch_norm_epsilon
        image_size = global_params.image_size
        Conv2d = get_same_padding_conv2d(image_size=image_size)
        out_channels = round_filters(global_params.stem_filters, global_params)
        self._conv_stem = Conv2d(3, out_channels, kernel_size=3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(num_features=out_channels, momentum=bn_mom, eps=bn_eps)
        image_size = calculate_output_image_size(image_size, 2)
        self._blocks = nn.ModuleList([])
        for block_args in blocks_args:
            block_args = block_args._replace(
                input_filters=round_filters(block_args.input_filters, global_params),
                output_filters=round_filters(block_args.output_filters, global_params),
                num_repeat=round_repeats(block_args.num_repeat, global_params))
            self._blocks.append(MBConvBlock(block_args, global_params, image_size=image_size, swish=swish))
            image_size = calculate_output_image_size(image_size, block_args.stride)
            if block_args.num_repeat > 1:
                block_args = block_args._replace(input_filters=block_args.output_filters, stride=1)
            for _ in range(block_args.num_repeat - 1):
                self._blocks.append(MBConvBlock(block_args, global_params, image_size=image_size, swish=swish))
        in_channels = block_args.output_filters
        out_channels = round_filters(global_params.head_filters, global_params)
        Conv2d = get_same_padding_conv2d(image_size=image_size)
        self._conv_head = Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self._bn1 = nn.BatchNorm2d(num_features=out_channels, momentum=bn_mom, eps=bn_eps)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        if global_params.include_top:
            self._dropout = nn.Dropout(global_params.dropout_rate)
            self._fc = nn.Linear(out_channels, global_params.num_classes)
        self._swish = SWISH[swish]()


def get_model_params(model_name):
    if model_name == 'efficientnet-test':
        w, d, s, p = 1.0, 1.0, 72, 0.2
        blocks, stem, head = TEST_BLOCKS, 8, 48
    else:
        w, d, s, p = SCALING[model_name]
        blocks, stem, head = B0_BLOCKS, 32, 1280
    gp = GlobalParams(width_coefficient=w, depth_coefficient=d, image_size=s, dropout_rate=p, num_classes=1000,
                      batch_norm_momentum=0.99, batch_norm_epsilon=1e-3, drop_connect_rate=0.2, depth_divisor=8,
                      min_depth=None, include_top=True, stem_filters=stem, head_filters=head)
    return [decode_block(b) for b in blocks], gp


class EfficientNetEncoder(EfficientNet):
    """smp 0.3.4 encoders/efficientnet.py EfficientNetEncoder (deletes only _fc)."""

    def __init__(self, model_name, depth=5, swish='memory-efficient'):
        blocks_args, global_params = get_model_params(model_name)
        super().__init__(blocks_args, global_params, swish=swish)
        out_channels, stage_idxs = TEST_SMP if model_name == 'efficientnet-test' else SMP_EFFICIENTNET[model_name]
        self._stage_idxs = stage_idxs
        self._out_channels = out_channels
        self._depth = depth
        del self._fc

    @property
    def out_channels(self):
        return self._out_channels[: self._depth + 1]

    def get_stages(self):
        return [
            nn.Identity(),
            nn.Sequential(self._conv_stem, self._bn0, self._swish),
            self._blocks[: self._stage_idxs[0]],
            self._blocks[self._stage_idxs[0]: self._stage_idxs[1]],
            self._blocks[self._stage_idxs[1]: self._stage_idxs[2]],
            self._blocks[self._stage_idxs[2]:],
        ]

    def forward(self, x):
        stages = self.get_stages()
        block_number = 0.0
        drop_connect_rate = self._global_params.drop_connect_rate
        features = []
        for i in range(self._depth + 1):
            if i < 2:
                x = stages[i](x)
            else:
                for module in stages[i]:
                    drop_connect = drop_connect_rate * block_number / len(self._blocks)
                    block_number += 1.0
                    x = module(x, drop_connect)
            features.append(x)
        return features


# ----------------------------------------------------------------------------- ResNet

class ResNetEncoder(nn.Module):
    """smp's ResNetEncoder: torchvision's ResNet without fc and avgpool."""

    def __init__(self, name, depth=5):
        super().__init__()
        import torchvision
        net = getattr(torchvision.models, name)()
        for k in ['conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4']:
            setattr(self, k, getattr(net, k))
        self._depth = depth
        self._out_channels = (3, 64, 64, 128, 256, 512) if name in ('resnet18', 'resnet34') else (3, 64, 256, 512, 1024, 2048)

    @property
    def out_channels(self):
        return self._out_channels[: self._depth + 1]

    def get_stages(self):
        return [nn.Identity(), nn.Sequential(self.conv1, self.bn1, self.relu),
                nn.Sequential(self.maxpool, self.layer1), self.layer2, self.layer3, self.layer4]

    def forward(self, x):
        features = []
        for stage in self.get_stages()[: self._depth + 1]:
            x = stage(x)
            features.append(x)
        return features


def get_encoder(name, depth=5, swish='memory-efficient'):
    if name.startswith('efficientnet-'):
        return EfficientNetEncoder(name, depth, swish=swish)
    if name in ('resnet18', 'resnet34', 'resnet50'):
        return ResNetEncoder(name, depth)
    raise KeyError(name)


# ------------------------------------------------------------------------------- U-Net

class Conv2dReLU(nn.Sequential):
    def __init__(self, in_channels, out_channels, kernel_size, padding=0, stride=1, use_batchnorm=True):
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=not use_batchnorm)
        super().__init__(conv, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    def __init__(self, in_channels, skip_channels, out_channels):
        super().__init__()
        self.conv1 = Conv2dReLU(in_channels + skip_channels, out_channels, kernel_size=3, padding=1)
        self.attention1 = nn.Identity()
        self.conv2 = Conv2dReLU(out_channels, out_channels, kernel_size=3, padding=1)
        self.attention2 = nn.Identity()

    def forward(self, x, skip=None):
        x = F.interpolate(x, scale_factor=2, mode='nearest')
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
            x = self.attention1(x)
        x = self.conv1(x)
        x = self.conv2(x)
        return self.attention2(x)


class UnetDecoder(nn.Module):
    def __init__(self, encoder_channels, decoder_channels, n_blocks=5):
        super().__init__()
        encoder_channels = encoder_channels[1:][::-1]
        head_channels = encoder_channels[0]
        in_channels = [head_channels] + list(decoder_channels[:-1])
        skip_channels = list(encoder_channels[1:]) + [0]
        self.center = nn.Identity()
        self.blocks = nn.ModuleList([DecoderBlock(i, s, o) for i, s, o in zip(in_channels, skip_channels, decoder_channels)])

    def forward(self, *features):
        features = features[1:][::-1]
        x = self.center(features[0])
        skips = features[1:]
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
        return x


class SegmentationHead(nn.Sequential):
    def __init__(self, in_channels, out_channels, kernel_size=3):
        conv2d = nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, padding=kernel_size // 2)
        super().__init__(conv2d, nn.Identity(), nn.Identity())


class Unet(nn.Module):
    """smp 0.3.4 Unet with encoder_depth 5, no attention, no aux head, activation None."""

    def __init__(self, encoder_name='resnet34', decoder_channels=(256, 128, 64, 32, 16), classes=1, swish='memory-efficient'):
        super().__init__()
        self.encoder = get_encoder(encoder_name, swish=swish)
        self.decoder = UnetDecoder(self.encoder.out_channels, decoder_channels, n_blocks=5)
        self.segmentation_head = SegmentationHead(decoder_channels[-1], classes, kernel_size=3)

    def forward(self, x):
        h, w = x.shape[-2:]
        if h % 32 != 0 or w % 32 != 0:
            raise RuntimeError(f'Wrong input shape height={h}, width={w}. Expected image height and width divisible by 32.')
        features = self.encoder(x)
        return self.segmentation_head(self.decoder(*features))


# ------------------------------------------------------------------ deterministic fills

def fill_by_role(name, t, base, weight_scale):
    """A state-dict tensor from `base` values by its role: BatchNorm running statistics,
    weights of 2+ dims (`base * weight_scale`), 1-D weights near 1, biases near 0."""
    n = t.numel()
    if name.endswith('num_batches_tracked'):
        v = torch.zeros(n, dtype=torch.float64)
    elif name.endswith('running_var'):
        v = 1 + 0.25 * base ** 2
    elif name.endswith('running_mean'):
        v = 0.1 * base
    elif t.dim() >= 2:
        v = base * weight_scale
    elif name.endswith('.weight'):
        v = 1 + 0.1 * base
    else:
        v = 0.1 * base
    return v.reshape(t.shape).to(t.dtype)


def fill_tensor(name, t, j, gain=6.0):
    """The fixture README's rule, for the j-th tensor of the state dict (`gain` replaces
    the 6 of sqrt(6 / fan_in); the fixture uses 6)."""
    n = t.numel()
    base = torch.sin(0.37 * torch.arange(n, dtype=torch.float64) + 0.11 * j)
    return fill_by_role(name, t, base, math.sqrt(gain / (n / t.shape[0])) if t.dim() >= 2 else 1.0)


def hash_uniform(n, j):
    """n values in [0, 1) from a 32-bit integer hash of (index k, stream j): exact in any
    language with 32-bit unsigned arithmetic (test/helpers/models.ts hashUniform).
    h = k * 0x9E3779B1 + j * 0x85EBCA77 + 0x165667B1, then three xorshift-multiply rounds."""
    import numpy as np
    m32 = np.uint64(0xFFFFFFFF)
    k = np.arange(n, dtype=np.uint64)
    h = (k * np.uint64(0x9E3779B1) + np.uint64(j) * np.uint64(0x85EBCA77) + np.uint64(0x165667B1)) & m32
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(0x2C1B3C6D)) & m32
    h ^= h >> np.uint64(12)
    h = (h * np.uint64(0x297A2D39)) & m32
    h ^= h >> np.uint64(15)
    return torch.from_numpy(h.astype(np.float64) / 4294967296.0)


def fill_tensor_hash(name, t, j):
    """Pseudo-random fill of the j-th state-dict tensor: u = 2 * hash_uniform - 1, weights of
    2+ dims u * sqrt(6 / fan_in) (Kaiming-uniform scale), BatchNorm near identity. Unlike
    the sine rule, neighbouring weights are uncorrelated, so convolutions do not cancel
    and training-mode BatchNorm does not amplify rounding (float32 stays ~1e-6 of float64)."""
    n = t.numel()
    u = 2 * hash_uniform(n, j) - 1
    return fill_by_role(name, t, u, math.sqrt(6.0 / (n / t.shape[0])) if t.dim() >= 2 else 1.0)


def fill_model_hash(model):
    with torch.no_grad():
        for j, (name, t) in enumerate(model.state_dict().items()):
            t.copy_(fill_tensor_hash(name, t, j))
    return model


def hash_input(shape, j=1000003):
    """An input in [-1, 1) from hash_uniform (stream j), made in float64."""
    n = 1
    for s in shape:
        n *= s
    return (2 * hash_uniform(n, j) - 1).reshape(shape)


def fill_model(model, gain=6.0):
    with torch.no_grad():
        for j, (name, t) in enumerate(model.state_dict().items()):
            t.copy_(fill_tensor(name, t, j, gain))
    return model


def sine_input(shape, scale=0.01):
    n = 1
    for s in shape:
        n *= s
    return torch.sin(scale * torch.arange(n, dtype=torch.float64)).to(torch.float32).reshape(shape)
