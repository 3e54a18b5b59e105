// The only file that includes pybind11: turn torch tensors into views, check them, release the
// GIL when the work is big enough, and call the C++ core. Tensors are read through their Python
// API (data_ptr, numel, ...), so the module needs neither libtorch nor numpy at build time.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include "fastfl/aggregate.hpp"
#include "fastfl/compress.hpp"
#include "fastfl/dtype.hpp"
#include "fastfl/flat.hpp"
#include "fastfl/optim.hpp"
#include "fastfl/memory.hpp"
#include "fastfl/simd.hpp"

namespace py = pybind11;

// Bump whenever a signature or a semantic of this module changes; fastfl/ops/_native.py holds
// the same number and refuses a module built from other sources.
constexpr int FASTFL_ABI_VERSION = 2;

namespace {

// Below this many elements in a call, keeping the GIL is cheaper than giving it up.
constexpr std::size_t kReleaseGilFrom = 1 << 15;

// Tensor attributes by interned name: an interned name hits CPython's type cache, and
// PyObject_CallMethodNoArgs skips the bound-method object, so each query costs ~0.1 us.
struct Names {
    py::handle is_cpu = intern("is_cpu"), is_contiguous = intern("is_contiguous");
    py::handle element_size = intern("element_size"), data_ptr = intern("data_ptr"), numel = intern("numel");

    static py::handle intern(const char* text) {
        PyObject* s = PyUnicode_InternFromString(text);  // immortal for the process, like any identifier
        if (s == nullptr) throw py::error_already_set();
        return s;
    }
};

py::object call(const py::handle& t, const py::handle& method) {
    PyObject* r = PyObject_CallMethodNoArgs(t.ptr(), method.ptr());
    if (r == nullptr) throw py::error_already_set();
    return py::reinterpret_steal<py::object>(r);
}

// A contiguous CPU tensor of dtype `code`, as a writable view (checked: wrong inputs raise
// ValueError instead of reaching the kernels).
fastfl::MutView view_of(const py::handle& t, int code, const char* what) {
    static const Names n;
    const fastfl::DType dtype = fastfl::dtype_from_code(code);
    if (!t.attr(n.is_cpu).cast<bool>() || !call(t, n.is_contiguous).cast<bool>()) {
        throw std::invalid_argument(std::string(what) + " must be a contiguous CPU tensor");
    }
    if (call(t, n.element_size).cast<std::size_t>() != fastfl::size_of(dtype)) {
        throw std::invalid_argument(std::string(what) + " does not match its dtype code " + std::to_string(code));
    }
    auto* data = reinterpret_cast<void*>(call(t, n.data_ptr).cast<std::uintptr_t>());
    return {data, call(t, n.numel).cast<std::size_t>(), dtype};
}

fastfl::View in(const fastfl::MutView& v) { return {v.data, v.count, v.dtype}; }

std::vector<fastfl::MutView> views_of(const py::sequence& ts, const std::vector<int>& codes, const char* name) {
    if (ts.size() != codes.size()) throw std::invalid_argument(std::string(name) + ": one dtype code per tensor");
    std::vector<fastfl::MutView> out;
    out.reserve(codes.size());
    for (std::size_t i = 0; i < codes.size(); ++i) out.push_back(view_of(ts[i], codes[i], name));
    return out;
}

std::vector<fastfl::View> inputs_of(const py::sequence& ts, const std::vector<int>& codes, const char* name) {
    std::vector<fastfl::View> out;
    for (const auto& v : views_of(ts, codes, name)) out.push_back(in(v));
    return out;
}

std::size_t total(const std::vector<fastfl::View>& vs) {
    std::size_t n = 0;
    for (const auto& v : vs) n += v.count;
    return n;
}

// Releases the GIL for the rest of the scope if n elements make it worthwhile.
struct MaybeRelease {
    explicit MaybeRelease(std::size_t n) {
        if (n >= kReleaseGilFrom) release.emplace();
    }
    std::optional<py::gil_scoped_release> release;
};

void cast(const py::sequence& srcs, const std::vector<int>& src_codes, const py::sequence& dsts,
             const std::vector<int>& dst_codes, int threads) {
    const auto s = inputs_of(srcs, src_codes, "srcs");
    const auto d = views_of(dsts, dst_codes, "dsts");
    MaybeRelease nogil(total(s));
    fastfl::cast_many(s, d, threads);
}

void combine(const py::sequence& srcs, const std::vector<int>& src_codes, const py::sequence& dsts,
             const std::vector<int>& dst_codes, double alpha, int threads) {
    const auto s = inputs_of(srcs, src_codes, "srcs");
    const auto d = views_of(dsts, dst_codes, "dsts");
    MaybeRelease nogil(total(s));
    fastfl::combine_many(s, d, alpha, threads);
}

void weighted_sum(const py::sequence& inputs, const std::vector<int>& codes, const std::vector<double>& weights,
                  const py::handle& out, int out_code, bool acc_fp64, int threads) {
    const auto xs = inputs_of(inputs, codes, "inputs");
    const auto o = view_of(out, out_code, "out");
    MaybeRelease nogil(total(xs));
    fastfl::weighted_sum(xs, weights, o, acc_fp64, threads);
}

void accumulate(const py::handle& acc, int acc_code, const py::handle& x, int x_code, double weight, int threads) {
    const auto a = view_of(acc, acc_code, "acc");
    const auto v = in(view_of(x, x_code, "x"));
    MaybeRelease nogil(a.count);
    fastfl::accumulate(a, v, weight, threads);
}

void mix(const py::handle& s, int s_code, const py::handle& n, int n_code, double alpha, int threads) {
    const auto a = view_of(s, s_code, "s");
    const auto b = in(view_of(n, n_code, "n"));
    MaybeRelease nogil(a.count);
    fastfl::mix(a, b, alpha, threads);
}

// Instruction-set levels by name, as FASTFL_ISA and fastfl.ops.isa() spell them.
constexpr const char* kIsaNames[] = {"scalar", "avx2", "avx512"};

std::string isa_name(fastfl::Isa level) { return kIsaNames[static_cast<int>(level)]; }

fastfl::Isa isa_from(const std::string& name) {
    for (int i = 0; i < 3; ++i) {
        if (name == kIsaNames[i]) return static_cast<fastfl::Isa>(i);
    }
    throw std::invalid_argument("unknown instruction-set level '" + name + "'; use scalar, avx2 or avx512");
}

py::dict dtype_codes() {
    py::dict codes;
    for (int c = 0; c < fastfl::kDTypeCount; ++c) codes[fastfl::kDTypeNames[c]] = c;
    return codes;
}

}  // namespace

// ---- compression kernels (fastfl/ops/compress.py validates every argument first) ----
namespace compress_bind {

namespace cz = fastfl::compress;

// Run f(T{}) for a float32 (code 5) or float64 (code 6) tensor.
template <class F>
auto on_float(int code, F f) {
    if (code == static_cast<int>(fastfl::DType::Float32)) return f(float{});
    if (code == static_cast<int>(fastfl::DType::Float64)) return f(double{});
    throw std::invalid_argument("compression kernels take float32 or float64 tensors, got dtype code " +
                                std::to_string(code));
}

template <class T>
T* ptr(const py::handle& t, const char* what) {
    return static_cast<T*>(view_of(t, static_cast<int>(fastfl::dtype_of<T>()), what).data);
}

std::size_t count(const py::handle& t, int code, const char* what) { return view_of(t, code, what).count; }

double sum_squares(const py::handle& x, int code, int threads) {
    return on_float(code, [&](auto z) {
        using T = decltype(z);
        const std::size_t n = count(x, code, "x");
        const T* px = ptr<T>(x, "x");
        MaybeRelease nogil(n);
        return cz::sum_squares(px, n, threads);
    });
}

void qsgd_encode(const py::handle& x, int code, double scale, std::uint32_t s, std::uint32_t k0, std::uint32_t k1,
                 const py::handle& out, int threads) {
    on_float(code, [&](auto z) {
        using T = decltype(z);
        const std::size_t n = count(x, code, "x");
        const T* px = ptr<T>(x, "x");
        auto* po = ptr<std::uint8_t>(out, "out");
        MaybeRelease nogil(n);
        cz::qsgd_encode(px, n, scale, s, k0, k1, po, threads);
    });
}

std::size_t qsgd_decode(const py::handle& codes, double step, std::uint32_t s, const py::handle& out, int code,
                        int threads) {
    return on_float(code, [&](auto z) {
        using T = decltype(z);
        const std::size_t n = count(out, code, "out");
        const auto* pc = ptr<std::uint8_t>(codes, "codes");
        T* po = ptr<T>(out, "out");
        MaybeRelease nogil(n);
        return cz::qsgd_decode(pc, n, step, s, po, threads);
    });
}

void topk_select(const py::handle& x, int code, std::size_t k, const py::handle& idx, const py::handle& vals) {
    on_float(code, [&](auto z) {
        using T = decltype(z);
        const std::size_t n = count(x, code, "x");
        const T* px = ptr<T>(x, "x");
        auto* pi = ptr<std::int64_t>(idx, "idx");
        T* pv = ptr<T>(vals, "vals");
        MaybeRelease nogil(n);
        cz::topk_select(px, n, k, pi, pv);
    });
}

void gather(const py::handle& x, int code, const py::handle& idx, const py::handle& vals) {
    on_float(code, [&](auto z) {
        using T = decltype(z);
        const std::size_t k = count(idx, static_cast<int>(fastfl::DType::Int64), "idx");
        const T* px = ptr<T>(x, "x");
        const auto* pi = ptr<std::int64_t>(idx, "idx");
        T* pv = ptr<T>(vals, "vals");
        MaybeRelease nogil(k);
        cz::gather(px, pi, k, pv);
    });
}

void scatter(const py::handle& out, int code, const py::handle& idx, const py::object& vals) {
    on_float(code, [&](auto z) {
        using T = decltype(z);
        const std::size_t k = count(idx, static_cast<int>(fastfl::DType::Int64), "idx");
        T* po = ptr<T>(out, "out");
        const auto* pi = ptr<std::int64_t>(idx, "idx");
        const T* pv = vals.is_none() ? nullptr : ptr<T>(vals, "vals");
        MaybeRelease nogil(k);
        cz::scatter(po, pi, pv, k);
    });
}

void dgc_accumulate(const py::handle& u, const py::handle& v, const py::handle& g, int code, double momentum,
                    bool nesterov, int threads) {
    on_float(code, [&](auto z) {
        using T = decltype(z);
        const std::size_t n = count(g, code, "g");
        T* pu = ptr<T>(u, "u");
        T* pv = ptr<T>(v, "v");
        const T* pg = ptr<T>(g, "g");
        MaybeRelease nogil(n);
        cz::dgc_accumulate(pu, pv, pg, n, momentum, nesterov, threads);
    });
}

void define(py::module_& m) {
    // Checked by fastfl/ops/_native.py's compression functions: bump on any change below.
    m.attr("COMPRESS_ABI_VERSION") = 1;
    m.def("sum_squares", &sum_squares, py::arg("x"), py::arg("code"), py::arg("threads"));
    m.def("qsgd_encode", &qsgd_encode, py::arg("x"), py::arg("code"), py::arg("scale"), py::arg("s"), py::arg("k0"),
          py::arg("k1"), py::arg("out"), py::arg("threads"));
    m.def("qsgd_decode", &qsgd_decode, py::arg("codes"), py::arg("step"), py::arg("s"), py::arg("out"),
          py::arg("code"), py::arg("threads"));
    m.def("topk_select", &topk_select, py::arg("x"), py::arg("code"), py::arg("k"), py::arg("idx"), py::arg("vals"));
    m.def("gather", &gather, py::arg("x"), py::arg("code"), py::arg("idx"), py::arg("vals"));
    m.def("scatter_", &scatter, py::arg("out"), py::arg("code"), py::arg("idx"), py::arg("vals"));
    m.def("dgc_accumulate_", &dgc_accumulate, py::arg("u"), py::arg("v"), py::arg("g"), py::arg("code"),
          py::arg("momentum"), py::arg("nesterov"), py::arg("threads"));
}

}  // namespace compress_bind
void bind_optim(py::module_& m);
void bind_flat_plan(py::module_& m);
// ---- Large host buffers (memory.hpp) handed to torch as DLPack capsules: torch owns the tensor,
// and its deleter gives the pages back to fastfl's pool (never while any view is alive).
namespace {

struct DLDevice { std::int32_t device_type, device_id; };
struct DLDataType { std::uint8_t code, bits; std::uint16_t lanes; };
struct DLTensor {
    void* data; DLDevice device; std::int32_t ndim; DLDataType dtype;
    std::int64_t* shape; std::int64_t* strides; std::uint64_t byte_offset;
};
struct DLManagedTensor { DLTensor dl_tensor; void* manager_ctx; void (*deleter)(DLManagedTensor*); };

struct PagesOwner {
    DLManagedTensor managed{};
    std::vector<std::int64_t> shape, strides;
    std::size_t bytes = 0;
};

void delete_pages(DLManagedTensor* m) {
    auto* owner = static_cast<PagesOwner*>(m->manager_ctx);
    fastfl::free_pages(m->dl_tensor.data, owner->bytes);
    delete owner;
}

// A "dltensor" capsule over alloc_pages memory of the given shape and DLPack dtype (code, bits).
py::capsule empty_pages(const std::vector<std::int64_t>& shape, int dl_code, int dl_bits) {
    auto owner = std::make_unique<PagesOwner>();
    owner->shape = shape;
    owner->strides.assign(shape.size(), 1);
    std::size_t count = 1;
    for (std::size_t i = shape.size(); i-- > 0;) {
        if (shape[i] < 0) throw std::invalid_argument("shape must not be negative");
        owner->strides[i] = static_cast<std::int64_t>(count);
        count *= static_cast<std::size_t>(shape[i]);
    }
    if (dl_bits <= 0 || dl_bits % 8 != 0) throw std::invalid_argument("dl_bits must be a positive multiple of 8");
    owner->bytes = count * static_cast<std::size_t>(dl_bits / 8);
    DLTensor& t = owner->managed.dl_tensor;
    t.data = fastfl::alloc_pages(owner->bytes);
    t.device = {1, 0};  // kDLCPU
    t.ndim = static_cast<std::int32_t>(shape.size());
    t.dtype = {static_cast<std::uint8_t>(dl_code), static_cast<std::uint8_t>(dl_bits), 1};
    t.shape = owner->shape.data();
    t.strides = owner->strides.data();
    t.byte_offset = 0;
    owner->managed.manager_ctx = owner.get();
    owner->managed.deleter = &delete_pages;
    DLManagedTensor* managed = &owner.release()->managed;
    PyObject* capsule = PyCapsule_New(managed, "dltensor", [](PyObject* c) {
        if (PyCapsule_IsValid(c, "dltensor")) {  // never consumed by torch: free it here
            auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(c, "dltensor"));
            m->deleter(m);
        }
    });
    if (capsule == nullptr) {
        managed->deleter(managed);
        throw py::error_already_set();
    }
    return py::reinterpret_steal<py::capsule>(capsule);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
    m.doc() = "fastfl's compiled kernels; use them through fastfl.ops, which validates arguments.";
    m.attr("ABI_VERSION") = FASTFL_ABI_VERSION;
    m.def("cast", &cast, py::arg("srcs"), py::arg("src_codes"), py::arg("dsts"), py::arg("dst_codes"),
          py::arg("threads"));
    m.def("combine", &combine, py::arg("srcs"), py::arg("src_codes"), py::arg("dsts"), py::arg("dst_codes"),
          py::arg("alpha"), py::arg("threads"));
    m.def("weighted_sum", &weighted_sum, py::arg("inputs"), py::arg("codes"), py::arg("weights"), py::arg("out"),
          py::arg("out_code"), py::arg("acc_fp64"), py::arg("threads"));
    m.def("accumulate_", &accumulate, py::arg("acc"), py::arg("acc_code"), py::arg("x"), py::arg("x_code"),
          py::arg("weight"), py::arg("threads"));
    m.def("mix_", &mix, py::arg("s"), py::arg("s_code"), py::arg("n"), py::arg("n_code"), py::arg("alpha"),
          py::arg("threads"));
    m.def("dtype_codes", &dtype_codes);
    m.def("isa_available", [] { return isa_name(fastfl::isa_available()); });
    m.def("isa", [] { return isa_name(fastfl::isa()); });
    m.def("set_isa", [](const std::string& cap) { return isa_name(fastfl::set_isa(isa_from(cap))); }, py::arg("cap"));
    m.def("empty_pages", &empty_pages, py::arg("shape"), py::arg("dl_code"), py::arg("dl_bits"));
    m.def("set_pool_limit", &fastfl::set_pool_limit, py::arg("bytes"));
    m.def("pooled_bytes", &fastfl::pooled_bytes);
    compress_bind::define(m);
    bind_optim(m);
    bind_flat_plan(m);
}

// ---- Optimizer kernels of fastfl.ops.optim (float32 buffers; Python validated everything) ----

namespace {

float* f32_or_null(const py::handle& t, int code, const char* what) {
    if (t.is_none()) return nullptr;
    return static_cast<float*>(view_of(t, code, what).data);
}

void optim_local_step(const py::handle& w, const py::handle& g, const py::handle& anchor, const py::handle& lin,
                      int code, double lr, double mu, int threads) {
    const auto wv = view_of(w, code, "w");
    const float* gp = f32_or_null(g, code, "g");
    const float* ap = f32_or_null(anchor, code, "anchor");
    const float* lp = f32_or_null(lin, code, "lin");
    MaybeRelease nogil(wv.count);
    fastfl::local_step(static_cast<float*>(wv.data), gp, ap, lp, wv.count, static_cast<float>(lr),
                       static_cast<float>(mu), threads);
}

void optim_control_update(const py::handle& state, const py::handle& x, const py::handle& y,
                          const py::handle& shift, const py::handle& delta, int code, double scale, int threads) {
    const auto sv = view_of(state, code, "state");
    const float* xp = f32_or_null(x, code, "x");
    const float* yp = f32_or_null(y, code, "y");
    const float* sp = f32_or_null(shift, code, "shift");
    float* dp = f32_or_null(delta, code, "delta");
    MaybeRelease nogil(sv.count);
    fastfl::control_update(static_cast<float*>(sv.data), xp, yp, sp, dp, sv.count, static_cast<float>(scale),
                           threads);
}

void optim_server_step(const py::handle& x, const py::handle& d, const py::handle& m, const py::handle& v, int code,
                       int kind, double lr, double beta1, double beta2, double tau, int threads) {
    const auto xv = view_of(x, code, "x");
    const float* dp = f32_or_null(d, code, "delta");
    float* mp = f32_or_null(m, code, "m");
    float* vp = f32_or_null(v, code, "v");
    MaybeRelease nogil(xv.count);
    fastfl::server_step(static_cast<float*>(xv.data), dp, mp, vp, xv.count, kind, static_cast<float>(lr),
                        static_cast<float>(beta1), static_cast<float>(beta2), static_cast<float>(tau), threads);
}

}  // namespace

void bind_optim(py::module_& m) {
    m.def("optim_local_step", &optim_local_step, py::arg("w"), py::arg("g"), py::arg("anchor"), py::arg("lin"),
          py::arg("code"), py::arg("lr"), py::arg("mu"), py::arg("threads"));
    m.def("optim_control_update", &optim_control_update, py::arg("state"), py::arg("x"), py::arg("y"),
          py::arg("shift"), py::arg("delta"), py::arg("code"), py::arg("scale"), py::arg("threads"));
    m.def("optim_server_step", &optim_server_step, py::arg("x"), py::arg("delta"), py::arg("m"), py::arg("v"),
          py::arg("code"), py::arg("kind"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("tau"),
          py::arg("threads"));
}

// ---- Flat plans (fastfl/utils/_layout.py): a model's layout, re-checked and copied in one call ----
// A plan remembers which tensors a model held when its layout was built (the objects met walking
// `_modules`, `_parameters` and the persistent `_buffers` from the root, in torch's order) and each
// tensor's data pointer, dtype, shape, contiguity and device. Every call walks the model again and
// compares all of it before a byte moves; on any difference it returns False and Python rebuilds
// the layout. The plan keeps the tensors (and their detached aliases) alive, never the modules.
namespace {

struct PlanNames {
    py::handle modules = Names::intern("_modules"), parameters = Names::intern("_parameters");
    py::handle buffers = Names::intern("_buffers"), transient = Names::intern("_non_persistent_buffers_set");
    py::handle data_ptr = Names::intern("data_ptr"), is_contiguous = Names::intern("is_contiguous");
    py::handle dtype = Names::intern("dtype"), shape = Names::intern("shape"), is_cpu = Names::intern("is_cpu");
};

const PlanNames& plan_names() {
    static const PlanNames n;
    return n;
}

// attr of obj as a new reference, or an empty object when it is missing (the error is cleared).
py::object attr_or_empty(PyObject* obj, const py::handle& name) {
    PyObject* r = PyObject_GetAttr(obj, name.ptr());
    if (r == nullptr) PyErr_Clear();
    return py::reinterpret_steal<py::object>(r);
}

// The modules under root in `named_modules()` order, each once (borrowed: root keeps them alive).
// False when a module's `_modules` is not a dict (not a torch module tree this walk understands).
bool modules_of(PyObject* root, std::vector<PyObject*>& order) {
    const auto& n = plan_names();
    std::vector<PyObject*> stack{root};
    std::unordered_set<PyObject*> seen;
    while (!stack.empty()) {
        PyObject* m = stack.back();
        stack.pop_back();
        if (!seen.insert(m).second) continue;
        order.push_back(m);
        py::object children = attr_or_empty(m, n.modules);
        if (!children || !PyDict_Check(children.ptr())) return false;
        const std::size_t mark = stack.size();
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(children.ptr(), &pos, &key, &value)) {
            if (value != Py_None) stack.push_back(value);  // borrowed: the dict lives in the module
        }
        std::reverse(stack.begin() + static_cast<std::ptrdiff_t>(mark), stack.end());  // first child on top
    }
    return true;
}

// The walk of a model as a sequence of objects: per module its parameters then nullptr; then,
// with buffers, per module its persistent buffers then nullptr. False if the tree is not walkable.
bool stream_of(PyObject* root, bool with_buffers, std::vector<PyObject*>& out) {
    const auto& n = plan_names();
    std::vector<PyObject*> modules;
    if (!modules_of(root, modules)) return false;
    PyObject *key, *value;
    for (PyObject* m : modules) {
        py::object params = attr_or_empty(m, n.parameters);
        if (!params || !PyDict_Check(params.ptr())) return false;
        Py_ssize_t pos = 0;
        while (PyDict_Next(params.ptr(), &pos, &key, &value)) {
            if (value != Py_None) out.push_back(value);
        }
        out.push_back(nullptr);
    }
    if (!with_buffers) return true;
    for (PyObject* m : modules) {
        py::object bufs = attr_or_empty(m, n.buffers);
        py::object skip = attr_or_empty(m, n.transient);
        if (!bufs || !PyDict_Check(bufs.ptr()) || !skip || !PyAnySet_Check(skip.ptr())) return false;
        Py_ssize_t pos = 0;
        while (PyDict_Next(bufs.ptr(), &pos, &key, &value)) {
            if (value == Py_None) continue;
            const int transient = PySet_Contains(skip.ptr(), key);
            if (transient < 0) {
                PyErr_Clear();
                return false;
            }
            if (!transient) out.push_back(value);
        }
        out.push_back(nullptr);
    }
    return true;
}

class FlatPlan {
public:
    // sources: the layout's tensors (the module's own objects) in flat order; aliases: their
    // detached aliases (what gets written); codes: their dtype codes.
    FlatPlan(const py::handle& root, bool include_buffers, const py::sequence& sources, const py::sequence& aliases,
             const std::vector<int>& codes)
        : with_buffers_(include_buffers), sources_(sources), aliases_(aliases) {
        if (sources.size() != aliases.size() || sources.size() != codes.size()) {
            throw std::invalid_argument("one alias and one dtype code per source tensor");
        }
        if (!stream_of(root.ptr(), with_buffers_, stream_)) throw std::invalid_argument("not a walkable module tree");
        const auto& n = plan_names();
        for (std::size_t i = 0; i < codes.size(); ++i) {
            const fastfl::MutView v = view_of(aliases[i], codes[i], "aliases");
            const py::handle src = sources[i];
            if (!state_matches_ptr(src, v.data)) throw std::invalid_argument("an alias does not view its source");
            expect_.push_back({src.ptr(), src.attr(n.dtype), src.attr(n.shape)});
            views_.push_back(v);
            if (fastfl::is_floating(v.dtype)) {
                if (floats_ == i) ++floats_;
                ++all_floats_;
            }
            numel_ += v.count;
        }
    }

    // The distinct objects of the walk, parameters then buffers (Python checks them at build time).
    py::list walked(const py::handle& root) const {
        std::vector<PyObject*> stream;
        if (!stream_of(root.ptr(), with_buffers_, stream)) throw std::invalid_argument("not a walkable module tree");
        py::list out;
        std::unordered_set<PyObject*> seen;
        for (PyObject* o : stream) {
            if (o != nullptr && seen.insert(o).second) out.append(py::handle(o));
        }
        return out;
    }

    // True when root still holds exactly the tensors of the plan, unchanged in place, size and kind.
    bool valid(const py::handle& root) const {
        std::vector<PyObject*> stream;
        stream.reserve(stream_.size());
        if (!stream_of(root.ptr(), with_buffers_, stream) || stream != stream_) return false;
        const auto& n = plan_names();
        for (std::size_t i = 0; i < expect_.size(); ++i) {
            const Expect& e = expect_[i];
            const py::handle t(e.obj);
            if (!state_matches_ptr(t, views_[i].data)) return false;
            py::object dtype = attr_or_empty(e.obj, n.dtype);
            if (!dtype || !dtype.is(e.dtype)) return false;
            py::object shape = attr_or_empty(e.obj, n.shape);
            if (!shape) return false;
            const int same = PyObject_RichCompareBool(shape.ptr(), e.shape.ptr(), Py_EQ);
            if (same < 0) throw py::error_already_set();
            if (!same) return false;
        }
        return true;
    }

    // Write flat into the tensors (mode 0 copy, +1 add, -1 sub; add/sub skip the integer tail).
    // False, writing nothing, when the model changed, or for add/sub when an integer tensor comes
    // before a floating one (an integer parameter: then there is no single floating prefix).
    bool unflatten(const py::handle& root, const py::handle& flat, int flat_code, int mode, int threads) const {
        if ((mode != 0 && floats_ != all_floats_) || !valid(root)) return false;
        const fastfl::View f = in(view_of(flat, flat_code, "flat"));
        if (f.count != numel_) throw std::invalid_argument("flat does not hold the layout's element count");
        std::vector<fastfl::View> pieces;
        pieces.reserve(views_.size());
        const std::size_t item = fastfl::size_of(f.dtype);
        std::size_t off = 0;
        for (const auto& v : views_) {
            pieces.push_back({static_cast<const char*>(f.data) + off * item, v.count, f.dtype});
            off += v.count;
        }
        MaybeRelease nogil(numel_);
        if (mode == 0) {
            fastfl::cast_many(pieces, views_, threads);
        } else {
            pieces.resize(floats_);
            const std::vector<fastfl::MutView> dsts(views_.begin(), views_.begin() + static_cast<std::ptrdiff_t>(floats_));
            fastfl::combine_many(pieces, dsts, mode > 0 ? 1.0 : -1.0, threads);
        }
        return true;
    }

    // Copy the tensors into out (a contiguous tensor of the layout's element count), casting.
    bool flatten(const py::handle& root, const py::handle& out, int out_code, int threads) const {
        if (!valid(root)) return false;
        const fastfl::MutView o = view_of(out, out_code, "out");
        if (o.count != numel_) throw std::invalid_argument("out does not hold the layout's element count");
        std::vector<fastfl::View> srcs;
        std::vector<fastfl::MutView> dsts;
        srcs.reserve(views_.size());
        dsts.reserve(views_.size());
        const std::size_t item = fastfl::size_of(o.dtype);
        std::size_t off = 0;
        for (const auto& v : views_) {
            srcs.push_back(in(v));
            dsts.push_back({static_cast<char*>(o.data) + off * item, v.count, o.dtype});
            off += v.count;
        }
        MaybeRelease nogil(numel_);
        fastfl::cast_many(srcs, dsts, threads);
        return true;
    }

    std::size_t numel() const { return numel_; }
    std::size_t size() const { return views_.size(); }

private:
    struct Expect {
        PyObject* obj;      // borrowed: sources_ holds it
        py::object dtype;   // torch dtypes are singletons: compared by identity
        py::object shape;   // a torch.Size
    };

    // A contiguous CPU tensor whose data starts at `data`.
    static bool state_matches_ptr(const py::handle& t, const void* data) {
        const auto& n = plan_names();
        PyObject* cpu = PyObject_GetAttr(t.ptr(), n.is_cpu.ptr());
        if (cpu == nullptr) {
            PyErr_Clear();
            return false;
        }
        const bool on_cpu = cpu == Py_True;
        Py_DECREF(cpu);
        if (!on_cpu) return false;
        py::object contiguous = call(t, n.is_contiguous);
        if (!contiguous.is(py::handle(Py_True))) return false;
        return reinterpret_cast<const void*>(call(t, n.data_ptr).cast<std::uintptr_t>()) == data;
    }

    bool with_buffers_;
    py::list sources_, aliases_;  // keep every tensor written or compared alive
    std::vector<PyObject*> stream_;  // borrowed: each non-null entry is one of sources_
    std::vector<Expect> expect_;
    std::vector<fastfl::MutView> views_;
    std::size_t floats_ = 0;      // how many leading tensors are floating
    std::size_t all_floats_ = 0;  // how many tensors are floating
    std::size_t numel_ = 0;
};

}  // namespace

void bind_flat_plan(py::module_& m) {
    m.attr("FLAT_PLAN_ABI") = 1;  // fastfl/utils/_layout.py uses FlatPlan only at this version
    py::class_<FlatPlan>(m, "FlatPlan")
        .def(py::init<const py::handle&, bool, const py::sequence&, const py::sequence&, const std::vector<int>&>(),
             py::arg("root"), py::arg("include_buffers"), py::arg("sources"), py::arg("aliases"), py::arg("codes"))
        .def("walked", &FlatPlan::walked, py::arg("root"))
        .def("valid", &FlatPlan::valid, py::arg("root"))
        .def("unflatten", &FlatPlan::unflatten, py::arg("root"), py::arg("flat"), py::arg("flat_code"),
             py::arg("mode"), py::arg("threads"))
        .def("flatten", &FlatPlan::flatten, py::arg("root"), py::arg("out"), py::arg("out_code"), py::arg("threads"))
        .def_property_readonly("numel", &FlatPlan::numel)
        .def("__len__", &FlatPlan::size);
}
