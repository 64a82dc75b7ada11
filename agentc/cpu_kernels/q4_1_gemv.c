/* A row block of y = W x with W in GGUF's Q4_1 form, for an IREE dispatch on x86-64 with
 * AVX-512 VNNI (linked into IREE's embedded ELF: no libc, no globals, no TLS).
 *
 * W is (n, k) in blocks of 32 along k: 4-bit values q with a scale d and a minimum m per
 * block, w = q * d + m (GGUF's Q4_1). The activations are quantized to int8 per block of 32
 * (scale s = max|x| / 127), as llama.cpp does, so a block's dot product is
 * d * s * sum(q * xq) + m * sum(x): the first sum is unsigned-by-signed byte products
 * (vpdpbusd), the second needs only x.
 *
 * The values are repacked at build time (agentc.cpu_kernels.blocks.pack_q4_1) so that one vpdpbusd lane is
 * one block: a row's blocks go in groups of 16, and each group is 4 runs of 64 bytes whose
 * byte 4j + e holds, in its low nibble, value 8u + e of block j (u: the run) and, in its
 * high nibble, value 8u + 4 + e. The group's 16 dot products then accumulate in one
 * register, and its scales multiply them as one vector. Blocks past the last whole group
 * (k = 576 leaves 2) go in pairs of 32 bytes: 16 bytes a block, value e in byte e % 16,
 * low nibble for e < 16.
 *
 * Each memref argument arrives as MLIR's descriptor of a 1-D memref: allocated and aligned
 * pointers, offset, size, stride (IREE 3.13 passes all five to a `hal.import.static`
 * function). */
#include <stddef.h>
#include <stdint.h>
#include <immintrin.h>

#define QK 32
#define MAXK 8192
#define MEMREF(T, name) T *name##_base, T *restrict name, size_t name##_off, size_t name##_size, size_t name##_stride

static inline uint8_t value_at(const uint8_t *row, size_t groups, size_t b, size_t e) {
  size_t at;
  int high;
  if (b < groups * 16) {
    size_t t = e / 4;
    at = (b / 16) * 256 + (t / 2) * 64 + 4 * (b % 16) + e % 4;
    high = t % 2;
  } else {
    size_t rest = b - groups * 16;
    at = groups * 256 + (rest / 2) * 32 + (rest % 2) * 16 + e % 16;
    high = e >= 16;
  }
  return high ? row[at] >> 4 : row[at] & 15;
}

/* Block b of x quantized to int8 (v), with its scale (the return value) and, if wanted, its
 * sum. */
static inline float quantize_block(const float *xb, int8_t v[QK], float *sum) {
  __m512 lo = _mm512_loadu_ps(xb), hi = _mm512_loadu_ps(xb + 16);
  float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
  float inv = amax > 0 ? 127.0f / amax : 0.0f;
  if (sum) *sum = _mm512_reduce_add_ps(_mm512_add_ps(lo, hi));
  _mm_storeu_si128((__m128i *)v, _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(lo, _mm512_set1_ps(inv)))));
  _mm_storeu_si128((__m128i *)(v + 16), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(hi, _mm512_set1_ps(inv)))));
  return amax / 127.0f;
}

void agentc_q4_1_gemv(MEMREF(const uint8_t, qs), MEMREF(const float, d), MEMREF(const float, m),
                      MEMREF(const float, x), MEMREF(float, y), size_t n, size_t k, size_t row0, size_t rows) {
  qs += qs_off; d += d_off; m += m_off; x += x_off; y += y_off;
  const size_t nb = k / QK, groups = nb / 16; /* k is a multiple of 64 */
  const size_t end = row0 + rows < n ? row0 + rows : n;
#ifdef AGENTC_EMPTY
  return; /* no work: what the step costs without its linears (for timing only) */
#endif
#ifdef AGENTC_EXACT
  /* float activations, scalar: what the product is without int8 activations (for checks) */
  for (size_t r = row0; r < end; ++r) {
    float acc = 0.0f;
    for (size_t b = 0; b < nb; ++b)
      for (size_t e = 0; e < QK; ++e)
        acc += ((float)value_at(qs + r * (k / 2), groups, b, e) * d[r * nb + b] + m[r * nb + b]) * x[b * QK + e];
    y[r] = acc;
  }
  return;
#endif
  /* x quantized per block, laid out as the weights are (above) */
  int8_t xq[MAXK] __attribute__((aligned(64)));
  float xs[MAXK / QK] __attribute__((aligned(64))), xsum[MAXK / QK] __attribute__((aligned(64)));
  for (size_t b = 0; b < nb; ++b) {
    int8_t v[QK] __attribute__((aligned(16)));
    xs[b] = quantize_block(x + b * QK, v, &xsum[b]);
    if (b < groups * 16) { /* value 4t + e of block j at run t, byte 4j + e */
      int8_t *g = xq + (b / 16) * 512 + 4 * (b % 16);
      for (int t = 0; t < 8; ++t) *(int32_t *)(g + 64 * t) = *(const int32_t *)(v + 4 * t);
    } else { /* pairs: [A 0..15, B 0..15, A 16..31, B 16..31] */
      size_t rest = b - groups * 16;
      int8_t *p = xq + groups * 512 + (rest / 2) * 64 + (rest % 2) * 16;
      _mm_storeu_si128((__m128i *)p, _mm_load_si128((const __m128i *)v));
      _mm_storeu_si128((__m128i *)(p + 32), _mm_load_si128((const __m128i *)(v + 16)));
    }
  }
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m256i low4h = _mm256_set1_epi8(0x0F);
  for (size_t r = row0; r < end; ++r) {
    const uint8_t *wr = qs + r * (k / 2);
    const float *dr = d + r * nb, *mr = m + r * nb;
    __m512 acc = _mm512_setzero_ps(), mins = _mm512_setzero_ps();
    for (size_t g = 0; g < groups; ++g) {
      const uint8_t *wg = wr + g * 256;
      const int8_t *xg = xq + g * 512;
      __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
      for (int u = 0; u < 4; ++u) {
        __m512i v = _mm512_loadu_si512((const void *)(wg + 64 * u));
        a0 = _mm512_dpbusd_epi32(a0, _mm512_and_si512(v, low4), _mm512_load_si512((const void *)(xg + 128 * u)));
        a1 = _mm512_dpbusd_epi32(a1, _mm512_and_si512(_mm512_srli_epi16(v, 4), low4),
                                 _mm512_load_si512((const void *)(xg + 128 * u + 64)));
      }
      __m512 t = _mm512_mul_ps(_mm512_loadu_ps(dr + 16 * g), _mm512_load_ps(xs + 16 * g));
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a0, a1)), t, acc);
      mins = _mm512_fmadd_ps(_mm512_loadu_ps(mr + 16 * g), _mm512_load_ps(xsum + 16 * g), mins);
    }
    float tail = 0.0f;
    for (size_t b = groups * 16; b < nb; b += 2) { /* the pairs after the groups */
      size_t p = (b - groups * 16) / 2;
      __m256i v = _mm256_loadu_si256((const __m256i *)(wr + groups * 256 + p * 32));
      __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, low4h)),
                                     _mm256_and_si256(_mm256_srli_epi16(v, 4), low4h), 1);
      __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q,
                                        _mm512_load_si512((const void *)(xq + groups * 512 + p * 64)));
      __m512 sv = _mm512_mask_blend_ps((__mmask16)0xF0F0, _mm512_set1_ps(dr[b] * xs[b]),
                                       _mm512_set1_ps(dr[b + 1] * xs[b + 1]));
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sv, acc);
      tail += mr[b] * xsum[b] + mr[b + 1] * xsum[b + 1];
    }
    y[r] = _mm512_reduce_add_ps(acc) + _mm512_reduce_add_ps(mins) + tail;
  }
}

/* The same product for GGUF's Q8_0 (blocks of 32 signed bytes q with a scale d: w = q * d),
 * with the activations offset to unsigned bytes (xu = xq + 128) for vpdpbusd, so a block's dot
 * product is d * s * (sum(q * xu) - 128 * sum(q)): the second term, 128 * d * sum(q) per
 * block, is precomputed at build time and passed as `c`. Layout (agentc.cpu_kernels.blocks.pack_q8_0):
 * groups of 16 blocks as 8 runs of 64 bytes, byte 4j + e of run t holding value 4t + e of
 * block j; the rest of the blocks as they are, 32 bytes each. */
void agentc_q8_0_gemv(MEMREF(const int8_t, qs), MEMREF(const float, d), MEMREF(const float, c),
                      MEMREF(const float, x), MEMREF(float, y), size_t n, size_t k, size_t row0, size_t rows) {
  qs += qs_off; d += d_off; c += c_off; x += x_off; y += y_off;
  const size_t nb = k / QK, groups = nb / 16;
  const size_t end = row0 + rows < n ? row0 + rows : n;
#ifdef AGENTC_EMPTY
  return;
#endif
#ifdef AGENTC_EXACT
  for (size_t r = row0; r < end; ++r) {
    float acc = 0.0f;
    const int8_t *row = qs + r * k;
    for (size_t b = 0; b < nb; ++b)
      for (size_t e = 0; e < QK; ++e) {
        size_t at = b < groups * 16 ? (b / 16) * 512 + (e / 4) * 64 + 4 * (b % 16) + e % 4 : b * QK + e;
        acc += (float)row[at] * d[r * nb + b] * x[b * QK + e];
      }
    y[r] = acc;
  }
  return;
#endif
  uint8_t xu[MAXK] __attribute__((aligned(64)));
  float xs[MAXK / QK] __attribute__((aligned(64)));
  for (size_t b = 0; b < nb; ++b) {
    int8_t s8[QK] __attribute__((aligned(32)));
    xs[b] = quantize_block(x + b * QK, s8, 0);
    uint8_t v[QK] __attribute__((aligned(32)));
    _mm256_store_si256((__m256i *)v, _mm256_xor_si256(_mm256_load_si256((const __m256i *)s8), _mm256_set1_epi8((char)0x80)));
    if (b < groups * 16) {
      uint8_t *g = xu + (b / 16) * 512 + 4 * (b % 16);
      for (int t = 0; t < 8; ++t) *(int32_t *)(g + 64 * t) = *(const int32_t *)(v + 4 * t);
    } else {
      for (int e = 0; e < QK; ++e) xu[b * QK + e] = v[e];
    }
  }
  for (size_t r = row0; r < end; ++r) {
    const int8_t *wr = qs + r * k;
    const float *dr = d + r * nb, *cr = c + r * nb;
    __m512 acc = _mm512_setzero_ps(), corr = _mm512_setzero_ps();
    for (size_t g = 0; g < groups; ++g) {
      __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
      for (int t = 0; t < 8; t += 2) {
        a0 = _mm512_dpbusd_epi32(a0, _mm512_load_si512((const void *)(xu + g * 512 + 64 * t)),
                                 _mm512_loadu_si512((const void *)(wr + g * 512 + 64 * t)));
        a1 = _mm512_dpbusd_epi32(a1, _mm512_load_si512((const void *)(xu + g * 512 + 64 * t + 64)),
                                 _mm512_loadu_si512((const void *)(wr + g * 512 + 64 * t + 64)));
      }
      __m512 s = _mm512_load_ps(xs + 16 * g);
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a0, a1)), _mm512_mul_ps(_mm512_loadu_ps(dr + 16 * g), s),
                            acc);
      corr = _mm512_fmadd_ps(_mm512_loadu_ps(cr + 16 * g), s, corr);
    }
    float tail = 0.0f;
    for (size_t b = groups * 16; b < nb; ++b) {
      __m256i dot8 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_loadu_si256((const __m256i *)(xu + b * QK)),
                                         _mm256_loadu_si256((const __m256i *)(wr + b * QK)));
      __m128i h = _mm_add_epi32(_mm256_castsi256_si128(dot8), _mm256_extracti128_si256(dot8, 1));
      h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
      h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
      tail += ((float)_mm_cvtsi128_si32(h) * dr[b] - cr[b]) * xs[b];
    }
    y[r] = _mm512_reduce_add_ps(acc) - _mm512_reduce_add_ps(corr) + tail;
  }
}
