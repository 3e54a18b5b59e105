// Compression kernels (fastfl.contrib.compressor): QSGD quantize+pack and unpack+dequantize, exact
// top-k selection by magnitude, sparse gather/scatter, and DGC's momentum-corrected accumulation.
// Plain loops over caller-owned contiguous buffers of float (float32) or double (float64).
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastfl::compress {

/// The uniform number in [0, 1) (a multiple of 2^-24) that QSGD's stochastic rounding draws for
/// element i under the 64-bit key (k0, k1): a counter-based hash, so every backend and every
/// thread split draws the same numbers for the same seed.
double uniform_at(std::uint64_t i, std::uint32_t k0, std::uint32_t k1);

/// Bits of one QSGD code for s levels: one sign bit plus the bits of the level 0..s.
int qsgd_bits(std::uint32_t s);

/// Sum of squares of x, accumulated in double.
template <class T>
double sum_squares(const T* x, std::size_t n, int threads);

/// QSGD quantize + pack: level_i = floor(|x_i| * scale + [u_i < frac]) clamped to s, code_i =
/// level_i << 1 | (x_i < 0), written as a little-endian bit stream of qsgd_bits(s) bits per code
/// into out (ceil(n * bits / 8) bytes; pad bits zero). scale = s / ||x||_2 (0 for a zero vector).
template <class T>
void qsgd_encode(const T* x, std::size_t n, double scale, std::uint32_t s, std::uint32_t k0, std::uint32_t k1,
                 std::uint8_t* out, int threads);

/// QSGD unpack + dequantize: out_i = (-1)^sign * level * step (computed in double, rounded to T).
/// Returns the number of codes whose level exceeds s (a corrupt blob); those decode as level s.
template <class T>
std::size_t qsgd_decode(const std::uint8_t* codes, std::size_t n, double step, std::uint32_t s, T* out,
                        int threads);

/// Exact top-k by magnitude: the k elements of largest |x| (NaN above every number; ties go to
/// the lower index), written with ascending indices to idx (int64) and their values to vals.
template <class T>
void topk_select(const T* x, std::size_t n, std::size_t k, std::int64_t* idx, T* vals);

/// vals[j] = x[idx[j]] for j < k (indices already checked to lie in range).
template <class T>
void gather(const T* x, const std::int64_t* idx, std::size_t k, T* vals);

/// out[idx[j]] = vals[j] for j < k, or 0 where vals is null (indices already checked).
template <class T>
void scatter(T* out, const std::int64_t* idx, const T* vals, std::size_t k);

/// DGC momentum correction in place: u = m*u + g; v += u (nesterov: u = (u + g)*m; v += u + g).
template <class T>
void dgc_accumulate(T* u, T* v, const T* g, std::size_t n, double momentum, bool nesterov, int threads);

}  // namespace fastfl::compress
