// Runtime-selected vector paths: each loop that benefits is compiled for three instruction-set
// levels (portable, AVX2 + F16C, AVX-512 F/BW/VL/DQ with AVX-512-BF16 where present) and the
// widest level the CPU has is chosen at run time. `set_isa` caps the level (tests force the lower
// paths on an AVX-512 machine; FASTFL_ISA does it from the environment, see fastfl/ops/_native.py).
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastfl {

/// Instruction-set levels, lowest first.
enum class Isa : int { Scalar = 0, Avx2 = 1, Avx512 = 2 };

/// The widest level this CPU supports (Avx512 needs F, BW, VL and DQ; Avx2 needs AVX2 and F16C).
Isa isa_available();

/// Whether the CPU also has AVX-512-BF16 (used for float32 -> bfloat16 at the Avx512 level).
bool has_avx512_bf16();

/// The level in use: the lower of isa_available() and the cap set by set_isa.
Isa isa();

/// Cap the level for the whole process (a test and tuning hook); returns the previous cap.
/// Thread-safe; calls running concurrently may use either level (results are identical).
Isa set_isa(Isa cap);

// The loops below run at isa(). For all of them, n or len elements, src and dst must not
// overlap, and results are bitwise identical at every level.

/// memcpy with non-temporal (cache-bypassing) stores at the vector levels: for copies larger
/// than the caches it saves the read-for-ownership of every destination line. The regions must
/// not overlap. Plain memcpy at the Scalar level.
void copy_stream(void* dst, const void* src, std::size_t bytes);

/// float32 -> float16 bits, round-to-nearest-even (F16C / AVX-512F, else scalar code).
void half_from_float(const float* src, std::uint16_t* dst, std::size_t n);
/// float16 bits -> float32, exact.
void float_from_half(const std::uint16_t* src, float* dst, std::size_t n);
/// float32 -> bfloat16 bits, round-to-nearest-even, NaN -> 0xffff (torch's result).
void bf16_from_float(const float* src, std::uint16_t* dst, std::size_t n);
/// bfloat16 bits -> float32, exact.
void float_from_bf16(const std::uint16_t* src, float* dst, std::size_t n);
/// float32 <-> float64.
void double_from_float(const float* src, double* dst, std::size_t n);
void float_from_double(const double* src, float* dst, std::size_t n);
/// acc[j] += w[0]*x[0][j] + ... + w[m-1]*x[m-1][j] (m in 1..4), left to right in acc's type;
/// acc must not overlap any x.
void add_group(float* acc, const float* const* x, const float* w, std::size_t m, std::size_t len);
void add_group(double* acc, const double* const* x, const double* w, std::size_t m, std::size_t len);
void add_group(double* acc, const float* const* x, const double* w, std::size_t m, std::size_t len);

/// acc[j] += w * x[j]; acc must not overlap x.
void axpy(float* acc, const float* x, float w, std::size_t len);
void axpy(double* acc, const double* x, double w, std::size_t len);
/// r[j] = old[j] * keep + alpha * nu[j]; r may be old itself, nu must not overlap r.
void mix_loop(float* r, const float* old, const float* nu, float keep, float alpha, std::size_t len);
void mix_loop(double* r, const double* old, const double* nu, double keep, double alpha, std::size_t len);

/// Most inputs `sum_rows` takes per call.
constexpr std::size_t kMaxRows = 16;

/// dst[j] = (partial ? partial[j] : 0) + w[0]*x[0][j] + ... + w[m-1]*x[m-1][j] (m in 1..kMaxRows,
/// else std::invalid_argument), added left to right in float32 with the sum in a register (the
/// same roundings as m separate passes). With `stream`, dst is written with non-temporal stores
/// (for outputs larger than the caches; the function fences them). dst must not overlap any x;
/// partial may be dst itself.
void sum_rows(float* dst, const float* partial, const float* const* x, const float* w, std::size_t m,
              std::size_t len, bool stream);

}  // namespace fastfl
