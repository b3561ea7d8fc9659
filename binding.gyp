{
  "targets": [
    {
      "target_name": "cqseg_native",
      "sources": [
        "native/src/addon.cc",
        "native/src/allocator.cc",
        "native/src/ops/math.cc",
        "native/src/ops/nn.cc",
        "native/src/ops/augment.cc",
        "native/src/ops/serialize.cc",
        "native/src/ops/dist.cc",
        "native/src/kernels/conv.cc",
        "native/src/kernels/bn_act.cc",
        "native/src/kernels/upcat_conv.cc",
        "native/src/kernels/scaled_conv.cc",
        "native/src/kernels/winograd.cc",
        "native/src/kernels/depthwise.cc",
        "native/src/kernels/histogram.cc",
        "native/src/kernels/int8_dot.cc",
        "native/src/kernels/cpu.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/libtorch.js --gyp include)"
      ],
      "defines": [ "NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED" ],
      "cflags!": [ "-fno-exceptions", "-fno-rtti" ],
      "cflags_cc!": [ "-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20" ],
      "cflags_cc": [ "<!(node scripts/libtorch.js --gyp std)", "-fexceptions", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations", "<!@(node scripts/libtorch.js --gyp cflags)" ],
      "libraries": [
        "-L<!(node scripts/libtorch.js --gyp libdir)",
        "-Wl,--no-as-needed",
        "<!@(node scripts/libtorch.js --gyp libs)",
        "-Wl,--as-needed",
        "<!(node scripts/libtorch.js --gyp rpath)"
      ]
    }
  ]
}
