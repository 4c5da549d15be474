{
  "targets": [
    {
      "target_name": "tap",
      "sources": ["native/tap.cc", "native/if-config.cc", "native/links.cc", "native/udp.cc", "native/udp-recv.cc", "native/udp-send.cc", "native/floor.cc", "native/flow.cc", "native/flow-crypto.cc", "native/flow-napi.cc", "native/flow-thread.cc", "native/flow-io.cc", "native/flow-queue.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"]
    }
  ]
}
