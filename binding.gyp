{
  "targets": [
    {
      "target_name": "scarab",
      "sources": ["native/addon.c", "native/aegis.c", "native/ring.c"],
      "cflags": ["-O3", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
