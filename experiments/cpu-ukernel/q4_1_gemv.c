/* A row block of y = W x with W in GGUF's Q4_1 form, for an IREE dispatch on x86-64 with
 * AVX-512 VNNI (linked into IREE's embedded ELF: no libc, no globals, no TLS).
 *
 * W is (n, k) in blocks of 32 along k: 16 bytes of 4-bit values q (low nibbles: the block's
 * first 16, high nibbles: its last 16) with a scale d and a minimum m, w = q * d + m. The
 * activations are quantized to int8 per block of 32 (scale s = max|x| / 127), as llama.cpp
 * does, so a block's dot product is d * s * sum(q * xq) + m * sum(x): the first sum is one
 * unsigned-by-signed byte product (vpdpbusd) per 64 weights, the second needs only x.
 *
 * Each memref argument arrives as MLIR's descriptor of a 1-D memref: allocated and aligned
 * pointers, offset, size, stride (IREE 3.13 passes all five to a `hal.import.static`
 * function). */
#include <stddef.h>
#include <stdint.h>
#include <immintrin.h>

#define QK 32
#define MAXK 8192

static float hmax(__m512 v) { return _mm512_reduce_max_ps(v); }

#define MEMREF(T, name) T *name##_base, T *restrict name, size_t name##_off, size_t name##_size, size_t name##_stride

void agentc_q4_1_gemv(MEMREF(const uint8_t, qs), MEMREF(const float, d), MEMREF(const float, m),
                      MEMREF(const float, x), MEMREF(float, y), size_t n, size_t k, size_t row0, size_t rows) {
  qs += qs_off; d += d_off; m += m_off; x += x_off; y += y_off;
  const size_t nb = k / QK; /* k is a multiple of 64 */
#ifdef AGENTC_EMPTY
  return; /* no work: what the step costs without its linears (for timing only) */
#endif
#ifdef AGENTC_EXACT
  /* float activations, scalar: what the product is without int8 activations (for checks) */
  for (size_t r = row0; r < row0 + rows && r < n; ++r) {
    float acc = 0.0f;
    for (size_t b = 0; b < nb; ++b) {
      const uint8_t *blk = qs + r * (k / 2) + b * 16;
      for (int j = 0; j < 16; ++j) {
        acc += ((float)(blk[j] & 15) * d[r * nb + b] + m[r * nb + b]) * x[b * QK + j];
        acc += ((float)(blk[j] >> 4) * d[r * nb + b] + m[r * nb + b]) * x[b * QK + 16 + j];
      }
    }
    y[r] = acc;
  }
  return;
#endif
  /* x quantized per block and laid out as the nibbles come out of a pair of blocks:
   * [A 0..15, B 0..15, A 16..31, B 16..31]. */
  int8_t xq[MAXK] __attribute__((aligned(64)));
  float xs[MAXK / QK], xsum[MAXK / QK];
  for (size_t b = 0; b < nb; ++b) {
    const float *xb = x + b * QK;
    __m512 lo = _mm512_loadu_ps(xb), hi = _mm512_loadu_ps(xb + 16);
    float amax = hmax(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
    float s = amax / 127.0f;
    float inv = amax > 0 ? 127.0f / amax : 0.0f;
    xs[b] = s;
    xsum[b] = _mm512_reduce_add_ps(_mm512_add_ps(lo, hi));
    __m512i ql = _mm512_cvtps_epi32(_mm512_mul_ps(lo, _mm512_set1_ps(inv)));
    __m512i qh = _mm512_cvtps_epi32(_mm512_mul_ps(hi, _mm512_set1_ps(inv)));
    int8_t *dst = xq + (b / 2) * 64 + (b % 2) * 16;
    _mm_storeu_si128((__m128i *)dst, _mm512_cvtsepi32_epi8(ql));
    _mm_storeu_si128((__m128i *)(dst + 32), _mm512_cvtsepi32_epi8(qh));
  }
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  /* Lane j of pair p's dot product belongs to block 2p (lanes 0-3, 8-11) or 2p + 1 (4-7,
   * 12-15): its scale is picked from 16 blocks' scales by one permute. */
  __m512i pick[8];
  for (int j = 0; j < 8; ++j)
    pick[j] = _mm512_set_epi32(2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j, 2 * j, 2 * j, 2 * j,
                               2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j, 2 * j, 2 * j, 2 * j);
  size_t end = row0 + rows < n ? row0 + rows : n;
  for (size_t r = row0; r < end; ++r) {
    const uint8_t *wr = qs + r * (k / 2);
    const float *dr = d + r * nb, *mr = m + r * nb;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), mins = _mm512_setzero_ps();
    for (size_t g = 0; g < nb; g += 16) { /* 16 blocks: 8 pairs */
      size_t left = nb - g < 16 ? nb - g : 16;
      __mmask16 valid = (__mmask16)((1u << left) - 1);
      __m512 t = _mm512_mul_ps(_mm512_maskz_loadu_ps(valid, dr + g), _mm512_maskz_loadu_ps(valid, xs + g));
      mins = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(valid, mr + g), _mm512_maskz_loadu_ps(valid, xsum + g), mins);
      for (size_t j = 0; j < left / 2; ++j) {
        size_t p = g / 2 + j;
        __m256i v = _mm256_loadu_si256((const __m256i *)(wr + p * 32));
        __m256i lo = _mm256_and_si256(v, low4);
        __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
        __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, _mm512_load_si512((const void *)(xq + p * 64)));
        __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(pick[j], t));
        if (j & 1) acc1 = _mm512_add_ps(acc1, f); else acc0 = _mm512_add_ps(acc0, f);
      }
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + _mm512_reduce_add_ps(mins);
  }
}
