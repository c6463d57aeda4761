/*
 * Module entry: exports the checksum, aligned buffer allocation and the ring functions.
 *
 *   aesNi: boolean                         whether `checksum` may be called
 *   checksum(data, target, targetOffset)   AEGIS-128L tag of `data` into target[offset .. +16)
 *   allocateAligned(size, alignment)       zeroed ArrayBuffer whose memory starts on `alignment`
 *   lockExclusive(fd)                      non-blocking exclusive flock: 0 or the errno
 *   allocateFile(fd, size)                 fallocate(2) of bytes [0, size): 0 or the errno
 *   ringCreate / ringPrepare / ringSubmit / ringClose   see ring.c
 */
/* fallocate(2) is a Linux call: glibc declares it only with _GNU_SOURCE. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "scarab.h"

/* Larger buffers are a sizing mistake: the largest Scarab I/O is one 1 MiB message or a batch of grid blocks. */
#define ALIGNED_SIZE_MAX ((size_t)1 << 31)

#define REQUIRE(env, condition, message) SCARAB_REQUIRE(env, condition, "ERR_SCARAB_ARGUMENT", message)

static napi_value checksum(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  REQUIRE(env, argc == 3, "checksum(data, target, targetOffset)");
  REQUIRE(env, scarab_aegis_supported(), "checksum: this CPU has no AES-NI");
  napi_typedarray_type data_type, target_type;
  size_t data_length, target_length;
  void *data, *target;
  uint32_t target_offset;
  CHECK(env, napi_get_typedarray_info(env, argv[0], &data_type, &data_length, &data, NULL, NULL));
  CHECK(env, napi_get_typedarray_info(env, argv[1], &target_type, &target_length, &target, NULL, NULL));
  CHECK(env, napi_get_value_uint32(env, argv[2], &target_offset));
  REQUIRE(env, data_type == napi_uint8_array && target_type == napi_uint8_array, "Uint8Array arguments expected");
  REQUIRE(env, (size_t)target_offset + 16 <= target_length, "target too small for a checksum");
  scarab_aegis_checksum(data, data_length, (uint8_t *)target + target_offset);
  return NULL;
}

static void free_aligned(napi_env env, void *data, void *hint) {
  (void)hint;
  int64_t adjusted;
  napi_adjust_external_memory(env, -(int64_t)(size_t)hint, &adjusted);
  free(data);
}

static napi_value allocate_aligned(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  REQUIRE(env, argc == 2, "allocateAligned(size, alignment)");
  int64_t size, alignment;
  CHECK(env, napi_get_value_int64(env, argv[0], &size));
  CHECK(env, napi_get_value_int64(env, argv[1], &alignment));
  REQUIRE(env, size > 0 && (size_t)size <= ALIGNED_SIZE_MAX, "size must be in 1..2^31");
  REQUIRE(env, alignment >= 8 && alignment <= 65536 && (alignment & (alignment - 1)) == 0,
          "alignment must be a power of two in 8..65536");
  void *memory = NULL;
  REQUIRE(env, posix_memalign(&memory, (size_t)alignment, (size_t)size) == 0, "posix_memalign failed");
  /* Zeroed, like every other ArrayBuffer: no stale heap bytes can reach the disk. */
  memset(memory, 0, (size_t)size);
  int64_t adjusted;
  napi_adjust_external_memory(env, size, &adjusted);
  napi_value buffer;
  napi_status status = napi_create_external_arraybuffer(env, memory, (size_t)size, free_aligned,
                                                        (void *)(size_t)size, &buffer);
  if (status != napi_ok) {
    free(memory);
    napi_adjust_external_memory(env, -size, &adjusted);
    napi_throw_error(env, "ERR_SCARAB_EXTERNAL_BUFFER", "external ArrayBuffers are not allowed in this runtime");
    return NULL;
  }
  return buffer;
}

/* Node has no flock; the data file must not be opened by two replicas at once (storage.md §5.1). */
static napi_value lock_exclusive(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  REQUIRE(env, argc == 1, "lockExclusive(fd)");
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  REQUIRE(env, fd >= 0, "fd must be a file descriptor");
  int result = 0;
  /* Bounded: only signals interrupt a non-blocking flock. */
  for (int attempt = 0; attempt < 16; attempt++) {
    result = flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
    if (result != EINTR) break;
  }
  napi_value value;
  CHECK(env, napi_create_int32(env, result, &value));
  return value;
}

/*
 * Node has no fallocate. Format reserves the data file's space with it (storage.md §2.1), so a
 * disk too small is found at format rather than by a write in the middle of running. Mode 0, not
 * posix_fallocate: glibc's posix_fallocate emulates an unsupported call by writing single bytes,
 * which O_DIRECT refuses; the caller handles EOPNOTSUPP itself.
 */
static napi_value allocate_file(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  REQUIRE(env, argc == 2, "allocateFile(fd, size)");
  int32_t fd;
  int64_t size;
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  CHECK(env, napi_get_value_int64(env, argv[1], &size));
  REQUIRE(env, fd >= 0, "fd must be a file descriptor");
  /* Below 2^53: JavaScript hands the size over as a double. */
  REQUIRE(env, size > 0 && size <= ((int64_t)1 << 53), "size must be in 1..2^53");
  int result = 0;
  /* Bounded: a signal may interrupt a long allocation; anything else is the answer. */
  for (int attempt = 0; attempt < 16; attempt++) {
    result = fallocate(fd, 0, 0, (off_t)size) == 0 ? 0 : errno;
    if (result != EINTR) break;
  }
  napi_value value;
  CHECK(env, napi_create_int32(env, result, &value));
  return value;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value aes_ni;
  CHECK(env, napi_get_boolean(env, scarab_aegis_supported() != 0, &aes_ni));
  napi_property_descriptor properties[] = {
    {"aesNi", NULL, NULL, NULL, NULL, aes_ni, napi_enumerable, NULL},
    {"checksum", NULL, checksum, NULL, NULL, NULL, napi_enumerable, NULL},
    {"allocateAligned", NULL, allocate_aligned, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lockExclusive", NULL, lock_exclusive, NULL, NULL, NULL, napi_enumerable, NULL},
    {"allocateFile", NULL, allocate_file, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties));
  CHECK(env, scarab_ring_init(env, exports));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
