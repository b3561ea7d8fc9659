{
  "targets": [
    {
      "target_name": "cqseg_native",
      "sources": [
        "native/src/addon.cc",
        "native/src/ops_math.cc",
        "native/src/ops_nn.cc",
        "native/src/ops_augment.cc",
        "native/src/ops_kernels.cc",
        "native/src/ops_fused.cc",
        "native/src/allocator.cc",
        "native/src/winograd.cc"
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
