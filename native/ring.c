/*
 * An io_uring ring for Direct I/O, through the raw system calls (no liburing).
 *
 * JavaScript prepares read, write and fsync operations (`ringPrepare`), submits them in one
 * system call per batch (`ringSubmit`), and receives completions in batches: the ring signals
 * an eventfd (IORING_REGISTER_EVENTFD), libuv watches that eventfd, and on wake-up every
 * available completion is copied into a JavaScript Int32Array as (id, result) pairs before one
 * call of the completion callback. Nothing polls: an idle ring costs nothing.
 *
 * Bounds: at most `entries` operations are in flight (prepared or submitted, not completed);
 * the completion queue holds twice that, so it can never overflow. Buffers are not referenced
 * here: the JavaScript side keeps every in-flight buffer alive until its completion arrives.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <linux/io_uring.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include "scarab.h"

/* A ring of more entries than this is a configuration mistake (the design needs ~110). */
#define RING_ENTRIES_MAX 4096

enum { OP_READ = 0, OP_WRITE = 1, OP_FSYNC = 2 };

typedef struct {
  int ring_fd;
  int event_fd;
  unsigned entries;
  unsigned in_flight;
  unsigned prepared; /* prepared but not yet submitted */
  int closed;        /* ringClose was called: no more operations */
  int handle_closed; /* libuv has released the poll handle; the kernel resources are gone */
  int finalized;     /* the JavaScript handle was collected; nothing can reach the struct */

  void *sq_map;
  size_t sq_map_size;
  void *cq_map;
  size_t cq_map_size;
  struct io_uring_sqe *sqes;
  size_t sqes_size;
  unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
  unsigned *cq_head, *cq_tail, *cq_mask;
  struct io_uring_cqe *cqes;

  napi_env env;
  napi_ref callback;
  napi_ref results_ref;
  int32_t *results; /* (id, res) pairs */
  size_t results_pairs;
  napi_async_context async_context;
  uv_poll_t poll;
} ring_t;

static int sys_setup(unsigned entries, struct io_uring_params *params) {
  return (int)syscall(__NR_io_uring_setup, entries, params);
}
static int sys_enter(int fd, unsigned submit, unsigned wait, unsigned flags) {
  return (int)syscall(__NR_io_uring_enter, fd, submit, wait, flags, NULL, 0);
}
static int sys_register(int fd, unsigned opcode, void *arg, unsigned count) {
  return (int)syscall(__NR_io_uring_register, fd, opcode, arg, count);
}

/* Throws a JavaScript Error whose `code` is the errno name, e.g. "EPERM", for the fallback log. */
static void throw_errno(napi_env env, const char *what, int error) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(error));
  napi_value code, text, exception;
  const char *name = error == EPERM ? "EPERM" : error == ENOSYS ? "ENOSYS" : error == ENOMEM ? "ENOMEM"
                   : error == EINVAL ? "EINVAL" : error == EAGAIN ? "EAGAIN" : error == EBUSY ? "EBUSY"
                   : error == EMFILE ? "EMFILE" : "EIO_URING";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &exception);
  napi_value number;
  napi_create_int32(env, error, &number);
  napi_set_named_property(env, exception, "errno", number);
  napi_throw(env, exception);
}

#define REQUIRE(env, condition, message) SCARAB_REQUIRE(env, condition, "ERR_SCARAB_RING", message)

static void ring_unmap(ring_t *ring) {
  if (ring->sqes != NULL && ring->sqes != MAP_FAILED) munmap(ring->sqes, ring->sqes_size);
  if (ring->cq_map != NULL && ring->cq_map != MAP_FAILED && ring->cq_map != ring->sq_map)
    munmap(ring->cq_map, ring->cq_map_size);
  if (ring->sq_map != NULL && ring->sq_map != MAP_FAILED) munmap(ring->sq_map, ring->sq_map_size);
  if (ring->event_fd >= 0) close(ring->event_fd);
  if (ring->ring_fd >= 0) close(ring->ring_fd);
}

/* The struct lives until both libuv and JavaScript are done with it: a closed ring's handle may
 * still be passed to ringSubmit, which must find `closed` set rather than freed memory. */
static void on_poll_closed(uv_handle_t *handle) {
  ring_t *ring = handle->data;
  ring_unmap(ring);
  ring->handle_closed = 1;
  if (ring->finalized) free(ring);
}

/* Runs only after ringClose: until then the ring's strong reference to its callback (whose
 * closure holds this handle) keeps the handle alive, so an open ring is never collected. */
static void ring_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  ring_t *ring = data;
  ring->finalized = 1;
  if (ring->handle_closed) free(ring);
}

/* Copies up to `results_pairs` completions out of the CQ; returns how many. */
static size_t ring_reap(ring_t *ring) {
  unsigned head = *ring->cq_head;
  unsigned tail = __atomic_load_n(ring->cq_tail, __ATOMIC_ACQUIRE);
  size_t count = 0;
  while (head != tail && count < ring->results_pairs) {
    struct io_uring_cqe *cqe = &ring->cqes[head & *ring->cq_mask];
    ring->results[2 * count] = (int32_t)cqe->user_data;
    ring->results[2 * count + 1] = cqe->res;
    count++;
    head++;
  }
  __atomic_store_n(ring->cq_head, head, __ATOMIC_RELEASE);
  if (count > ring->in_flight) abort(); /* a completion nobody submitted: the ring is corrupt */
  ring->in_flight -= (unsigned)count;
  if (ring->in_flight == 0) uv_unref((uv_handle_t *)&ring->poll);
  return count;
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  (void)events;
  ring_t *ring = handle->data;
  if (status < 0 || ring->closed) return;
  uint64_t value;
  /* Non-blocking: EAGAIN only means a previous wake-up already drained it. */
  ssize_t ignored = read(ring->event_fd, &value, sizeof value);
  (void)ignored;

  napi_env env = ring->env;
  /* Bounded: each pass takes at least one completion, and at most `entries` are in flight. */
  for (unsigned pass = 0; pass <= ring->entries && !ring->closed; pass++) {
    size_t count = ring_reap(ring);
    if (count == 0) break;
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) abort();
    napi_value callback, receiver, argument, result;
    napi_get_reference_value(env, ring->callback, &callback);
    napi_get_global(env, &receiver);
    napi_create_uint32(env, (uint32_t)count, &argument);
    napi_status call = napi_make_callback(env, ring->async_context, receiver, callback, 1, &argument, &result);
    if (call == napi_pending_exception) {
      napi_value exception;
      napi_get_and_clear_last_exception(env, &exception);
      napi_fatal_exception(env, exception);
    }
    napi_close_handle_scope(env, scope);
  }
}

/* ringCreate(entries, results: Int32Array, onCompletions: (count) => void): External */
static napi_value ring_create(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  REQUIRE(env, argc == 3, "ringCreate(entries, results, onCompletions)");
  uint32_t entries;
  CHECK(env, napi_get_value_uint32(env, argv[0], &entries));
  REQUIRE(env, entries >= 1 && entries <= RING_ENTRIES_MAX && (entries & (entries - 1)) == 0,
          "entries must be a power of two in 1..4096");
  napi_typedarray_type type;
  size_t length;
  void *data;
  CHECK(env, napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL));
  REQUIRE(env, type == napi_int32_array && length >= 2 * (size_t)entries, "results: Int32Array of 2 x entries");

  ring_t *ring = calloc(1, sizeof *ring);
  REQUIRE(env, ring != NULL, "out of memory");
  ring->ring_fd = -1;
  ring->event_fd = -1;
  ring->entries = entries;

  struct io_uring_params params;
  memset(&params, 0, sizeof params);
  params.flags = IORING_SETUP_CQSIZE;
  params.cq_entries = 2 * entries;
  ring->ring_fd = sys_setup(entries, &params);
  if (ring->ring_fd < 0) {
    int error = errno;
    free(ring);
    throw_errno(env, "io_uring_setup", error);
    return NULL;
  }
  int error = 0;
  const char *failed = NULL;
  if (!(params.features & IORING_FEAT_SINGLE_MMAP)) { error = ENOSYS; failed = "io_uring lacks IORING_FEAT_SINGLE_MMAP (kernel < 5.4)"; }
  if (failed == NULL) {
    ring->sq_map_size = params.sq_off.array + params.sq_entries * sizeof(unsigned);
    size_t cq_size = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
    if (cq_size > ring->sq_map_size) ring->sq_map_size = cq_size;
    ring->sq_map = mmap(NULL, ring->sq_map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                        ring->ring_fd, IORING_OFF_SQ_RING);
    if (ring->sq_map == MAP_FAILED) { error = errno; failed = "mmap(sq ring)"; }
  }
  if (failed == NULL) {
    ring->cq_map = ring->sq_map;
    ring->sqes_size = params.sq_entries * sizeof(struct io_uring_sqe);
    ring->sqes = mmap(NULL, ring->sqes_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                      ring->ring_fd, IORING_OFF_SQES);
    if (ring->sqes == MAP_FAILED) { error = errno; failed = "mmap(sqes)"; }
  }
  if (failed == NULL) {
    ring->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ring->event_fd < 0) { error = errno; failed = "eventfd"; }
  }
  if (failed == NULL && sys_register(ring->ring_fd, IORING_REGISTER_EVENTFD, &ring->event_fd, 1) < 0) {
    error = errno;
    failed = "io_uring_register(EVENTFD)";
  }
  if (failed != NULL) {
    ring_unmap(ring);
    free(ring);
    throw_errno(env, failed, error);
    return NULL;
  }
  uint8_t *sq = ring->sq_map;
  ring->sq_head = (unsigned *)(sq + params.sq_off.head);
  ring->sq_tail = (unsigned *)(sq + params.sq_off.tail);
  ring->sq_mask = (unsigned *)(sq + params.sq_off.ring_mask);
  ring->sq_array = (unsigned *)(sq + params.sq_off.array);
  ring->cq_head = (unsigned *)(sq + params.cq_off.head);
  ring->cq_tail = (unsigned *)(sq + params.cq_off.tail);
  ring->cq_mask = (unsigned *)(sq + params.cq_off.ring_mask);
  ring->cqes = (struct io_uring_cqe *)(sq + params.cq_off.cqes);

  ring->env = env;
  ring->results = data;
  ring->results_pairs = length / 2;
  CHECK(env, napi_create_reference(env, argv[1], 1, &ring->results_ref));
  CHECK(env, napi_create_reference(env, argv[2], 1, &ring->callback));
  napi_value resource_name;
  CHECK(env, napi_create_string_utf8(env, "ScarabRing", NAPI_AUTO_LENGTH, &resource_name));
  CHECK(env, napi_async_init(env, NULL, resource_name, &ring->async_context));

  uv_loop_t *loop;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  REQUIRE(env, uv_poll_init(loop, &ring->poll, ring->event_fd) == 0, "uv_poll_init failed");
  ring->poll.data = ring;
  REQUIRE(env, uv_poll_start(&ring->poll, UV_READABLE, on_poll) == 0, "uv_poll_start failed");
  /* An idle ring must not keep the process alive; ringPrepare refs it while I/O is in flight. */
  uv_unref((uv_handle_t *)&ring->poll);

  napi_value external;
  CHECK(env, napi_create_external(env, ring, ring_finalize, NULL, &external));
  return external;
}

static ring_t *ring_from(napi_env env, napi_value value) {
  void *pointer = NULL;
  if (napi_get_value_external(env, value, &pointer) != napi_ok) return NULL;
  ring_t *ring = pointer;
  return ring == NULL || ring->closed ? NULL : ring;
}

/*
 * ringPrepare(ring, op, fd, buffer: Uint8Array | null, length, position, id): void
 * Queues one operation; it reaches the kernel at the next ringSubmit.
 */
static napi_value ring_prepare(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  REQUIRE(env, argc == 7, "ringPrepare(ring, op, fd, buffer, length, position, id)");
  ring_t *ring = ring_from(env, argv[0]);
  REQUIRE(env, ring != NULL, "ring is closed or invalid");
  uint32_t op, length;
  int32_t fd, id;
  int64_t position;
  CHECK(env, napi_get_value_uint32(env, argv[1], &op));
  CHECK(env, napi_get_value_int32(env, argv[2], &fd));
  CHECK(env, napi_get_value_uint32(env, argv[4], &length));
  CHECK(env, napi_get_value_int64(env, argv[5], &position));
  CHECK(env, napi_get_value_int32(env, argv[6], &id));
  REQUIRE(env, op <= OP_FSYNC && fd >= 0 && position >= 0, "invalid op, fd or position");
  REQUIRE(env, ring->in_flight < ring->entries, "too many operations in flight");

  void *address = NULL;
  if (op != OP_FSYNC) {
    napi_typedarray_type type;
    size_t buffer_length;
    CHECK(env, napi_get_typedarray_info(env, argv[3], &type, &buffer_length, &address, NULL, NULL));
    REQUIRE(env, type == napi_uint8_array && length > 0 && length <= buffer_length,
            "buffer: Uint8Array of at least `length` bytes");
  }

  unsigned tail = *ring->sq_tail;
  unsigned head = __atomic_load_n(ring->sq_head, __ATOMIC_ACQUIRE);
  REQUIRE(env, tail - head < ring->entries, "submission queue full");
  unsigned index = tail & *ring->sq_mask;
  struct io_uring_sqe *sqe = &ring->sqes[index];
  memset(sqe, 0, sizeof *sqe);
  sqe->opcode = op == OP_READ ? IORING_OP_READ : op == OP_WRITE ? IORING_OP_WRITE : IORING_OP_FSYNC;
  sqe->fd = fd;
  sqe->off = (uint64_t)position;
  sqe->addr = (uint64_t)(uintptr_t)address;
  sqe->len = op == OP_FSYNC ? 0 : length;
  sqe->user_data = (uint64_t)(uint32_t)id;
  ring->sq_array[index] = index;
  __atomic_store_n(ring->sq_tail, tail + 1, __ATOMIC_RELEASE);
  ring->prepared++;
  if (ring->in_flight == 0) uv_ref((uv_handle_t *)&ring->poll);
  ring->in_flight++;
  return NULL;
}

/* ringSubmit(ring): number — hands every prepared operation to the kernel in one system call. */
static napi_value ring_submit(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  ring_t *ring = ring_from(env, argv[0]);
  REQUIRE(env, ring != NULL, "ring is closed or invalid");
  unsigned submitted_total = 0;
  /* Bounded: EINTR retries plus one pass per prepared entry at most. */
  for (unsigned attempt = 0; ring->prepared > 0 && attempt <= ring->entries + 8; attempt++) {
    int submitted = sys_enter(ring->ring_fd, ring->prepared, 0, 0);
    if (submitted < 0) {
      if (errno == EINTR) continue;
      throw_errno(env, "io_uring_enter", errno);
      return NULL;
    }
    ring->prepared -= (unsigned)submitted;
    submitted_total += (unsigned)submitted;
  }
  napi_value result;
  CHECK(env, napi_create_uint32(env, submitted_total, &result));
  return result;
}

/* ringClose(ring): stops watching the eventfd and releases the ring once libuv lets go of it. */
static napi_value ring_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  ring_t *ring = ring_from(env, argv[0]);
  REQUIRE(env, ring != NULL, "ring is closed or invalid");
  REQUIRE(env, ring->in_flight == 0, "cannot close a ring with operations in flight");
  ring->closed = 1;
  uv_poll_stop(&ring->poll);
  napi_async_destroy(env, ring->async_context);
  napi_delete_reference(env, ring->callback);
  napi_delete_reference(env, ring->results_ref);
  uv_close((uv_handle_t *)&ring->poll, on_poll_closed);
  return NULL;
}

napi_status scarab_ring_init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
    {"ringCreate", NULL, ring_create, NULL, NULL, NULL, napi_enumerable, NULL},
    {"ringPrepare", NULL, ring_prepare, NULL, NULL, NULL, napi_enumerable, NULL},
    {"ringSubmit", NULL, ring_submit, NULL, NULL, NULL, napi_enumerable, NULL},
    {"ringClose", NULL, ring_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
}
