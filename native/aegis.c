/*
 * AEGIS-128L checksum (wire-protocol.md §6.1) with AES-NI: key = nonce = 0, the input absorbed
 * as associated data, an empty message and a 128-bit tag. `_mm_aesenc_si128(x, k)` is exactly
 * the spec's AESRound(x, k). The initial state is the precomputed constant of the spec, so the
 * ten initialisation updates never run.
 */
#include <immintrin.h>
#include <string.h>

#include "scarab.h"

#define AES_TARGET __attribute__((target("aes,sse2")))

/* State after initialisation with K = N = 0, bytes in memory order (spec §6.1 table). */
static const uint8_t state_init[8][16] = {
  {0x72, 0xf2, 0xf4, 0x5d, 0x9e, 0xc7, 0x42, 0x02, 0x3e, 0x84, 0xaa, 0x66, 0xae, 0xfd, 0x35, 0x92},
  {0x42, 0x07, 0x1d, 0xcd, 0x30, 0x1a, 0xf7, 0xcf, 0x8a, 0x7c, 0x6c, 0x4a, 0x20, 0xf6, 0x30, 0x65},
  {0xf8, 0x4e, 0xa4, 0xa1, 0xc6, 0xaa, 0x99, 0xce, 0xa5, 0x1d, 0x8b, 0x5c, 0x9c, 0xc3, 0x05, 0x8f},
  {0x0f, 0xc0, 0x5e, 0x11, 0x17, 0xaf, 0x10, 0x75, 0xa4, 0x11, 0x19, 0xf3, 0x29, 0xc5, 0xa8, 0xd2},
  {0x57, 0x88, 0x8c, 0x33, 0xd3, 0x16, 0x03, 0x55, 0x36, 0x40, 0x35, 0xc8, 0xf2, 0x1e, 0x79, 0x86},
  {0x48, 0xfa, 0x4b, 0x5d, 0xd5, 0x70, 0x42, 0xc4, 0x08, 0x4f, 0xe9, 0xf5, 0x15, 0x08, 0xb6, 0x44},
  {0x0b, 0x99, 0x89, 0xcc, 0x91, 0x05, 0x03, 0x85, 0x03, 0x05, 0xde, 0x7e, 0xf1, 0xa9, 0x8b, 0xfe},
  {0xb3, 0x0e, 0x75, 0x21, 0x39, 0x0c, 0xcf, 0x8e, 0xcf, 0xe9, 0x4a, 0xf6, 0x87, 0x95, 0x5d, 0xd7},
};

int scarab_aegis_supported(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("aes");
}

/* Update(A, B): every new block is computed from the old state, then S'4 ^= B. */
#define AEGIS_UPDATE(a, b)                                              \
  do {                                                                  \
    __m128i n0 = _mm_xor_si128(_mm_aesenc_si128(s7, s0), (a));          \
    __m128i n1 = _mm_aesenc_si128(s0, s1);                              \
    __m128i n2 = _mm_aesenc_si128(s1, s2);                              \
    __m128i n3 = _mm_aesenc_si128(s2, s3);                              \
    __m128i n4 = _mm_xor_si128(_mm_aesenc_si128(s3, s4), (b));          \
    __m128i n5 = _mm_aesenc_si128(s4, s5);                              \
    __m128i n6 = _mm_aesenc_si128(s5, s6);                              \
    __m128i n7 = _mm_aesenc_si128(s6, s7);                              \
    s0 = n0; s1 = n1; s2 = n2; s3 = n3; s4 = n4; s5 = n5; s6 = n6; s7 = n7; \
  } while (0)

AES_TARGET void scarab_aegis_checksum(const uint8_t *data, size_t length, uint8_t tag[16]) {
  __m128i s0 = _mm_loadu_si128((const __m128i *)state_init[0]);
  __m128i s1 = _mm_loadu_si128((const __m128i *)state_init[1]);
  __m128i s2 = _mm_loadu_si128((const __m128i *)state_init[2]);
  __m128i s3 = _mm_loadu_si128((const __m128i *)state_init[3]);
  __m128i s4 = _mm_loadu_si128((const __m128i *)state_init[4]);
  __m128i s5 = _mm_loadu_si128((const __m128i *)state_init[5]);
  __m128i s6 = _mm_loadu_si128((const __m128i *)state_init[6]);
  __m128i s7 = _mm_loadu_si128((const __m128i *)state_init[7]);

  size_t offset = 0;
  for (; offset + 32 <= length; offset += 32) {
    __m128i a = _mm_loadu_si128((const __m128i *)(data + offset));
    __m128i b = _mm_loadu_si128((const __m128i *)(data + offset + 16));
    AEGIS_UPDATE(a, b);
  }
  if (offset < length) {
    /* The last short chunk is zero-padded to 32 bytes. */
    uint8_t chunk[32] = {0};
    memcpy(chunk, data + offset, length - offset);
    __m128i a = _mm_loadu_si128((const __m128i *)chunk);
    __m128i b = _mm_loadu_si128((const __m128i *)(chunk + 16));
    AEGIS_UPDATE(a, b);
  }

  /* T = S2 ^ (LE64(8 * length) || LE64(0)), then 7 x Update(T, T). */
  __m128i t = _mm_xor_si128(s2, _mm_set_epi64x(0, (long long)((uint64_t)length * 8)));
  for (int round = 0; round < 7; round++) AEGIS_UPDATE(t, t);

  __m128i result = _mm_xor_si128(_mm_xor_si128(_mm_xor_si128(s0, s1), _mm_xor_si128(s2, s3)),
                                 _mm_xor_si128(_mm_xor_si128(s4, s5), s6));
  _mm_storeu_si128((__m128i *)tag, result);
}
