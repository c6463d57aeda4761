/*
 * Scarab's native addon: AEGIS-128L checksums with AES-NI, sector-aligned buffers and an
 * io_uring ring driven through raw system calls. Only N-API (plus the libuv loop Node hands
 * out through N-API) is used, so one build loads in every Node version.
 */
#ifndef SCARAB_H
#define SCARAB_H

#include <stddef.h>
#include <stdint.h>
#include <node_api.h>

/* 1 when the CPU has AES-NI; scarab_aegis_checksum must not be called otherwise. */
int scarab_aegis_supported(void);

/* The checksum of wire-protocol.md §6.1: 16 tag bytes written to `tag`. */
void scarab_aegis_checksum(const uint8_t *data, size_t length, uint8_t tag[16]);

/*
 * Error handling inside N-API callbacks: throw a JavaScript error and return NULL. CHECK wraps an
 * N-API call that should never fail; SCARAB_REQUIRE refuses bad arguments with an error code
 * (each file names its own, so JavaScript can tell which part refused).
 */
#define CHECK(env, call)                                                      \
  do {                                                                        \
    if ((call) != napi_ok) {                                                  \
      napi_throw_error((env), NULL, "scarab: N-API call failed: " #call);      \
      return NULL;                                                            \
    }                                                                         \
  } while (0)

#define SCARAB_REQUIRE(env, condition, code, message)       \
  do {                                                      \
    if (!(condition)) {                                     \
      napi_throw_error((env), (code), (message));           \
      return NULL;                                          \
    }                                                       \
  } while (0)

/* Adds the ring functions (ringCreate, ringPrepare, ringSubmit, ringClose) to `exports`. */
napi_status scarab_ring_init(napi_env env, napi_value exports);

#endif
