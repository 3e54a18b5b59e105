// The one dtype table of the C++ core: codes (same values as fastfl/dtypes.py), element types,
// and the one dtype switch (`visit`) that turns a runtime code into a C++ type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace fastfl {

/// Dtype codes. 0-6 are FedLab 1.2.1's wire codes; 7-9 are fastfl additions.
enum class DType : std::uint8_t {
    Int8 = 0,
    Int16 = 1,
    Int32 = 2,
    Int64 = 3,
    Float16 = 4,
    Float32 = 5,
    Float64 = 6,
    BFloat16 = 7,
    UInt8 = 8,
    Bool = 9,
};

constexpr int kDTypeCount = 10;

/// Names of the codes, indexed by code, as in fastfl.dtypes.DType.
constexpr const char* kDTypeNames[kDTypeCount] = {"INT8",    "INT16",   "INT32",    "INT64", "FLOAT16",
                                                  "FLOAT32", "FLOAT64", "BFLOAT16", "UINT8", "BOOL"};

/// IEEE binary16, stored as its bits.
struct Half {
    std::uint16_t bits;
};

/// bfloat16 (the upper half of a float32), stored as its bits.
struct BFloat16 {
    std::uint16_t bits;
};

template <class T>
constexpr bool is_half_v = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

/// The code of a C++ element type.
template <class T>
constexpr DType dtype_of() {
    if constexpr (std::is_same_v<T, std::int8_t>) return DType::Int8;
    else if constexpr (std::is_same_v<T, std::int16_t>) return DType::Int16;
    else if constexpr (std::is_same_v<T, std::int32_t>) return DType::Int32;
    else if constexpr (std::is_same_v<T, std::int64_t>) return DType::Int64;
    else if constexpr (std::is_same_v<T, Half>) return DType::Float16;
    else if constexpr (std::is_same_v<T, float>) return DType::Float32;
    else if constexpr (std::is_same_v<T, double>) return DType::Float64;
    else if constexpr (std::is_same_v<T, BFloat16>) return DType::BFloat16;
    else if constexpr (std::is_same_v<T, std::uint8_t>) return DType::UInt8;
    else {
        static_assert(std::is_same_v<T, bool>, "not a fastfl element type");
        return DType::Bool;
    }
}

/// Tag carrying an element type through `visit`.
template <class T>
struct Tag {
    using type = T;
};

/// Call f(Tag<T>{}) with the element type T of `d`: the only dtype switch of the core.
template <class F>
decltype(auto) visit(DType d, F&& f) {
    switch (d) {
        case DType::Int8: return f(Tag<std::int8_t>{});
        case DType::Int16: return f(Tag<std::int16_t>{});
        case DType::Int32: return f(Tag<std::int32_t>{});
        case DType::Int64: return f(Tag<std::int64_t>{});
        case DType::Float16: return f(Tag<Half>{});
        case DType::Float32: return f(Tag<float>{});
        case DType::Float64: return f(Tag<double>{});
        case DType::BFloat16: return f(Tag<BFloat16>{});
        case DType::UInt8: return f(Tag<std::uint8_t>{});
        case DType::Bool: return f(Tag<bool>{});
    }
    throw std::invalid_argument("unknown dtype code " + std::to_string(static_cast<int>(d)));
}

/// Bytes per element of `d`.
inline std::size_t size_of(DType d) {
    return visit(d, [](auto tag) { return sizeof(typename decltype(tag)::type); });
}

/// Whether `d` is one of the four floating dtypes.
inline bool is_floating(DType d) {
    return d == DType::Float16 || d == DType::BFloat16 || d == DType::Float32 || d == DType::Float64;
}

/// The code `c` as a DType; throws std::invalid_argument when it is not a known code.
inline DType dtype_from_code(int c) {
    if (c < 0 || c >= kDTypeCount) {
        throw std::invalid_argument("unknown dtype code " + std::to_string(c) + "; known codes are 0..9");
    }
    return static_cast<DType>(c);
}

/// A read-only contiguous run of `count` elements of type `dtype`.
struct View {
    const void* data;
    std::size_t count;
    DType dtype;
};

/// A writable contiguous run of `count` elements of type `dtype`.
struct MutView {
    void* data;
    std::size_t count;
    DType dtype;
};

}  // namespace fastfl
