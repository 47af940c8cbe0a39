{
  "targets": [
    {
      "target_name": "dmd_torch",
      "sources": ["<!@(node scripts/libtorch-paths.mjs sources)"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/libtorch-paths.mjs include)"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "<!@(node scripts/libtorch-paths.mjs defines)"
      ],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++14", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["<!@(node scripts/libtorch-paths.mjs cxxflags)", "-fexceptions", "-frtti", "-Wno-unused-parameter"],
      "libraries": ["<!@(node scripts/libtorch-paths.mjs libs)"],
      "ldflags": ["<!@(node scripts/libtorch-paths.mjs rpath)"]
    }
  ]
}
