// Shoal's WebAssembly build of hnswlib (engine/hnswlib, v0.8.0): wasm SIMD distance kernels and a
// flat C API over pointers into the WASM heap. Nothing here touches a file system: indexes are
// saved to and loaded from heap buffers in hnswlib's own saveIndex layout (wasm32: size_t = 4
// bytes), so shards written by the hnswlib-wasm@0.8.2 package load unchanged.
//
// Every entry point catches C++ exceptions and reports them as an error code plus a message
// (shoal_error_code / shoal_error_message); JS never sees a C++ exception.
#define NO_MANUAL_VECTORIZATION
#include "../hnswlib/hnswlib.h"

#include <malloc.h>
#include <wasm_simd128.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>

#define API extern "C" __attribute__((used, visibility("default")))

namespace {

// ---- Distance kernels: 8 floats per step in two accumulators, then 4, then scalar tails. ----

inline float hsum(v128_t v) {
  return wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1) + wasm_f32x4_extract_lane(v, 2) +
         wasm_f32x4_extract_lane(v, 3);
}

float l2_sqr(const void* pa, const void* pb, const void* pdim) {
  const float* a = static_cast<const float*>(pa);
  const float* b = static_cast<const float*>(pb);
  const size_t d = *static_cast<const size_t*>(pdim);
  v128_t s0 = wasm_f32x4_splat(0.0f);
  v128_t s1 = wasm_f32x4_splat(0.0f);
  size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    v128_t d0 = wasm_f32x4_sub(wasm_v128_load(a + i), wasm_v128_load(b + i));
    v128_t d1 = wasm_f32x4_sub(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4));
    s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(d0, d0));
    s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(d1, d1));
  }
  if (i + 4 <= d) {
    v128_t d0 = wasm_f32x4_sub(wasm_v128_load(a + i), wasm_v128_load(b + i));
    s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(d0, d0));
    i += 4;
  }
  float r = hsum(wasm_f32x4_add(s0, s1));
  for (; i < d; i++) {
    const float t = a[i] - b[i];
    r += t * t;
  }
  return r;
}

float dot(const float* a, const float* b, size_t d) {
  v128_t s0 = wasm_f32x4_splat(0.0f);
  v128_t s1 = wasm_f32x4_splat(0.0f);
  size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4)));
  }
  if (i + 4 <= d) {
    s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    i += 4;
  }
  float r = hsum(wasm_f32x4_add(s0, s1));
  for (; i < d; i++) r += a[i] * b[i];
  return r;
}

// hnswlib's inner-product distance: 1 − a·b (cosine = the same over normalised vectors).
float ip_distance(const void* pa, const void* pb, const void* pdim) {
  return 1.0f - dot(static_cast<const float*>(pa), static_cast<const float*>(pb), *static_cast<const size_t*>(pdim));
}

class SimdSpace : public hnswlib::SpaceInterface<float> {
 public:
  SimdSpace(size_t dim, bool l2) : dim_(dim), l2_(l2) {}
  size_t get_data_size() override { return dim_ * sizeof(float); }
  hnswlib::DISTFUNC<float> get_dist_func() override { return l2_ ? l2_sqr : ip_distance; }
  void* get_dist_func_param() override { return &dim_; }

 private:
  size_t dim_;
  bool l2_;
};

// ---- Errors ----

enum ErrorCode : int { OK = 0, OUT_OF_MEMORY = 1, INVALID = 2, CORRUPT = 3, FAILED = 4 };
int g_error_code = OK;
std::string g_error_message;

void set_error(int code, const char* message) {
  g_error_code = code;
  try {
    g_error_message = message;
  } catch (...) {
    g_error_message.clear();
  }
}

int fail_from_current_exception() {
  try {
    throw;
  } catch (const std::bad_alloc&) {
    set_error(OUT_OF_MEMORY, "out of memory (std::bad_alloc)");
  } catch (const std::exception& e) {
    const char* what = e.what();
    set_error(std::strstr(what, "Not enough memory") ? OUT_OF_MEMORY : FAILED, what);
  } catch (...) {
    set_error(FAILED, "unknown C++ exception");
  }
  return -1;
}

#define GUARD_BEGIN \
  g_error_code = OK; \
  try {
#define GUARD_END(fallback)               \
  }                                       \
  catch (...) {                           \
    fail_from_current_exception();        \
    return fallback;                      \
  }

// ---- Index handle ----

enum Space : int { SPACE_L2 = 0, SPACE_IP = 1, SPACE_COSINE = 2 };

struct Index {
  Index(int space_, size_t dim_) : space(space_), dim(dim_), simd(dim_, space_ == SPACE_L2), scratch(dim_) {}
  int space;
  size_t dim;
  SimdSpace simd;
  std::vector<float> scratch;  // a normalised copy of the current vector (cosine)
  hnswlib::HierarchicalNSW<float>* hnsw = nullptr;

  // The vector hnswlib should see: cosine vectors are normalised like hnswlib's bindings do.
  const float* prepare(const float* v) {
    if (space != SPACE_COSINE) return v;
    float norm = 0.0f;
    for (size_t i = 0; i < dim; i++) norm += v[i] * v[i];
    norm = 1.0f / (std::sqrt(norm) + 1e-30f);
    for (size_t i = 0; i < dim; i++) scratch[i] = v[i] * norm;
    return scratch.data();
  }
};

class BitmapFilter : public hnswlib::BaseFilterFunctor {
 public:
  BitmapFilter(const uint8_t* bits, size_t rows) : bits_(bits), rows_(rows) {}
  bool operator()(hnswlib::labeltype id) override {
    return id < rows_ && ((bits_[id >> 3] >> (id & 7)) & 1) != 0;
  }

 private:
  const uint8_t* bits_;
  size_t rows_;
};

bool valid_space(int space) { return space == SPACE_L2 || space == SPACE_IP || space == SPACE_COSINE; }

// hnswlib's saveIndex header, field by field (the same order as hnswalg.h saveIndex/loadIndex).
struct Writer {
  uint8_t* p;
  template <typename T>
  void pod(const T& v) {
    std::memcpy(p, &v, sizeof(T));
    p += sizeof(T);
  }
  void bytes(const void* src, size_t n) {
    std::memcpy(p, src, n);
    p += n;
  }
};

struct Reader {
  const uint8_t* p;
  const uint8_t* end;
  template <typename T>
  T pod() {
    if (static_cast<size_t>(end - p) < sizeof(T))
      throw std::runtime_error("Index seems to be corrupted or unsupported");
    T v;
    std::memcpy(&v, p, sizeof(T));
    p += sizeof(T);
    return v;
  }
  const uint8_t* take(size_t n) {
    if (static_cast<size_t>(end - p) < n) throw std::runtime_error("Index seems to be corrupted or unsupported");
    const uint8_t* at = p;
    p += n;
    return at;
  }
};


// wasm32 size_t arithmetic wraps at 4 GiB: refuse a level-0 block that cannot exist before
// hnswlib computes max_elements × size_per_element in 32 bits.
void check_capacity(uint64_t max_elements, uint64_t size_per_element) {
  if (max_elements * size_per_element >= (uint64_t{1} << 32)) {
    throw std::runtime_error("Not enough memory: the level-0 block would exceed the 4 GiB wasm32 address space");
  }
}

}  // namespace

// ---- C API. Pointers are offsets into the WASM heap; sizes are 32-bit. ----

API int shoal_abi_version() { return 1; }
API int shoal_error_code() { return g_error_code; }
API const char* shoal_error_message() { return g_error_message.c_str(); }
API void* shoal_alloc(size_t bytes) { return std::malloc(bytes); }
API void shoal_free(void* p) { std::free(p); }

/** Bytes malloc holds for live allocations (dlmalloc's uordblks). */
API size_t shoal_heap_used() { return mallinfo().uordblks; }

/** A new empty index, or 0 (see shoal_error_*). */
API Index* shoal_create(int space, int dim, int max_elements, int m, int ef_construction, int seed) {
  GUARD_BEGIN
  if (!valid_space(space) || dim <= 0 || max_elements < 0 || m < 2 || ef_construction < 1) {
    set_error(INVALID, "invalid index parameters");
    return nullptr;
  }
  check_capacity(static_cast<uint64_t>(max_elements),
                 uint64_t{2} * static_cast<uint64_t>(m) * 4 + 4 + static_cast<uint64_t>(dim) * 4 + 4);
  Index* index = new Index(space, static_cast<size_t>(dim));
  try {
    index->hnsw = new hnswlib::HierarchicalNSW<float>(&index->simd, static_cast<size_t>(max_elements),
                                                      static_cast<size_t>(m), static_cast<size_t>(ef_construction),
                                                      static_cast<size_t>(seed));
  } catch (...) {
    delete index;
    throw;
  }
  return index;
  GUARD_END(nullptr)
}

API void shoal_destroy(Index* index) {
  if (!index) return;
  delete index->hnsw;
  delete index;
}

/** Adds `count` row-major vectors labelled first_label.. ; returns how many were added, or -1. */
API int shoal_add(Index* index, const float* vectors, int count, int first_label) {
  GUARD_BEGIN
  int added = 0;
  for (; added < count; added++) {
    const float* v = vectors + static_cast<size_t>(added) * index->dim;
    index->hnsw->addPoint(index->prepare(v), static_cast<hnswlib::labeltype>(first_label + added), false);
  }
  return added;
  GUARD_END(-1)
}

/**
 * Searches `nq` row-major queries. For query q, up to k hits go to labels[q*k..] / distances[q*k..]
 * best first, and their number to counts[q]. `allowed` (nullable) is a bitmap over labels
 * (bit r of byte r>>3): only labels with a set bit below `allowed_rows` are returned.
 * Returns 0, or -1 on error.
 */
API int shoal_search(Index* index, const float* queries, int nq, int k, int ef, const uint8_t* allowed,
                     int allowed_rows, int* labels, float* distances, int* counts) {
  GUARD_BEGIN
  index->hnsw->setEf(static_cast<size_t>(ef));
  BitmapFilter filter(allowed, allowed ? static_cast<size_t>(allowed_rows) : 0);
  for (int q = 0; q < nq; q++) {
    const float* v = index->prepare(queries + static_cast<size_t>(q) * index->dim);
    auto result = index->hnsw->searchKnn(v, static_cast<size_t>(k), allowed ? &filter : nullptr);
    int n = static_cast<int>(result.size());
    counts[q] = n;
    // The priority queue pops worst first.
    for (int i = n - 1; i >= 0; i--) {
      labels[q * k + i] = static_cast<int>(result.top().second);
      distances[q * k + i] = result.top().first;
      result.pop();
    }
  }
  return 0;
  GUARD_END(-1)
}

namespace {

constexpr size_t HEADER_BYTES = 6 * sizeof(size_t) + sizeof(int) + sizeof(hnswlib::tableint) + 3 * sizeof(size_t) +
                                sizeof(double) + sizeof(size_t);

void write_header(const hnswlib::HierarchicalNSW<float>& h, Writer& w) {
  w.pod(h.offsetLevel0_);
  w.pod(h.max_elements_);
  w.pod(static_cast<size_t>(h.cur_element_count));
  w.pod(h.size_data_per_element_);
  w.pod(h.label_offset_);
  w.pod(h.offsetData_);
  w.pod(h.maxlevel_);
  w.pod(h.enterpoint_node_);
  w.pod(h.maxM_);
  w.pod(h.maxM0_);
  w.pod(h.M_);
  w.pod(h.mult_);
  w.pod(h.ef_construction_);
}

void write_links(const hnswlib::HierarchicalNSW<float>& h, Writer& w) {
  for (size_t i = 0; i < h.cur_element_count; i++) {
    unsigned int size = h.element_levels_[i] > 0 ? h.size_links_per_element_ * h.element_levels_[i] : 0;
    w.pod(size);
    if (size) w.bytes(h.linkLists_[i], size);
  }
}

size_t links_size(const hnswlib::HierarchicalNSW<float>& h) {
  size_t total = 0;
  for (size_t i = 0; i < h.cur_element_count; i++) {
    total += sizeof(unsigned int);
    if (h.element_levels_[i] > 0) total += h.size_links_per_element_ * h.element_levels_[i];
  }
  return total;
}

// Rebuilds what hnswlib derives from level 0 once it is in place: the label map, deleted count.
void finish_load(hnswlib::HierarchicalNSW<float>* h) {
  const size_t count = h->cur_element_count;
  h->label_lookup_.reserve(count);
  h->num_deleted_ = 0;
  for (size_t i = 0; i < count; i++) {
    const auto id = static_cast<hnswlib::tableint>(i);
    h->label_lookup_[h->getExternalLabel(id)] = id;
    if (h->isMarkedDeleted(id)) h->num_deleted_ += 1;
  }
}

/**
 * hnswalg.h loadIndex, from memory: the header (HEADER_BYTES), level 0 (nullable: then it is
 * allocated but left for the caller to fill) and the link-list section. Validates before
 * allocating, so corrupt bytes are refused rather than read past their end.
 */
Index* load_impl(int space, int dim, const uint8_t* header, const uint8_t* level0, const uint8_t* links,
                 size_t links_len, int max_elements) {
  if (!valid_space(space) || dim <= 0) {
    set_error(INVALID, "invalid index parameters");
    return nullptr;
  }
  Index* index = new Index(space, static_cast<size_t>(dim));
  try {
    auto* h = new hnswlib::HierarchicalNSW<float>(&index->simd);
    index->hnsw = h;
    Reader r{header, header + HEADER_BYTES};
    h->offsetLevel0_ = r.pod<size_t>();
    const size_t stored_max = r.pod<size_t>();
    const size_t count = r.pod<size_t>();
    h->cur_element_count = count;
    size_t max = static_cast<size_t>(max_elements < 0 ? 0 : max_elements);
    if (max < count) max = stored_max < count ? count : stored_max;
    h->max_elements_ = max;
    h->size_data_per_element_ = r.pod<size_t>();
    h->label_offset_ = r.pod<size_t>();
    h->offsetData_ = r.pod<size_t>();
    h->maxlevel_ = r.pod<int>();
    h->enterpoint_node_ = r.pod<hnswlib::tableint>();
    h->maxM_ = r.pod<size_t>();
    h->maxM0_ = r.pod<size_t>();
    h->M_ = r.pod<size_t>();
    h->mult_ = r.pod<double>();
    h->ef_construction_ = r.pod<size_t>();
    h->data_size_ = index->simd.get_data_size();
    h->fstdistfunc_ = index->simd.get_dist_func();
    h->dist_func_param_ = index->simd.get_dist_func_param();
    h->size_links_per_element_ = h->maxM_ * sizeof(hnswlib::tableint) + sizeof(hnswlib::linklistsizeint);
    h->size_links_level0_ = h->maxM0_ * sizeof(hnswlib::tableint) + sizeof(hnswlib::linklistsizeint);
    if (h->offsetLevel0_ != 0 || h->offsetData_ != h->size_links_level0_ ||
        h->offsetData_ + h->data_size_ != h->label_offset_ ||
        h->label_offset_ + sizeof(hnswlib::labeltype) != h->size_data_per_element_ || h->maxM0_ == 0 ||
        h->maxM_ == 0 || (count > 0 && h->enterpoint_node_ >= count)) {
      throw std::runtime_error("Index seems to be corrupted or unsupported: the layout does not match the dimension");
    }
    check_capacity(max, h->size_data_per_element_);
    // The link-list section must hold exactly `count` lists of whole upper levels.
    Reader lr{links, links + links_len};
    for (size_t i = 0; i < count; i++) {
      const unsigned int size = lr.pod<unsigned int>();
      if (size % h->size_links_per_element_ != 0)
        throw std::runtime_error("Index seems to be corrupted or unsupported");
      lr.take(size);
    }
    if (lr.p != lr.end) throw std::runtime_error("Index seems to be corrupted or unsupported");
    lr.p = links;

    h->data_level0_memory_ = static_cast<char*>(std::malloc(max * h->size_data_per_element_));
    if (!h->data_level0_memory_) throw std::runtime_error("Not enough memory: loadIndex failed to allocate level0");
    std::vector<std::mutex>(max).swap(h->link_list_locks_);
    std::vector<std::mutex>(hnswlib::HierarchicalNSW<float>::MAX_LABEL_OPERATION_LOCKS).swap(h->label_op_locks_);
    h->visited_list_pool_.reset(new hnswlib::VisitedListPool(1, max));
    h->linkLists_ = static_cast<char**>(std::calloc(max, sizeof(void*)));
    if (!h->linkLists_) throw std::runtime_error("Not enough memory: loadIndex failed to allocate linklists");
    h->element_levels_ = std::vector<int>(max);
    h->revSize_ = 1.0 / h->mult_;
    h->ef_ = 10;
    for (size_t i = 0; i < count; i++) {
      const unsigned int size = lr.pod<unsigned int>();
      if (size == 0) continue;
      h->element_levels_[i] = static_cast<int>(size / h->size_links_per_element_);
      h->linkLists_[i] = static_cast<char*>(std::malloc(size));
      if (!h->linkLists_[i]) throw std::runtime_error("Not enough memory: loadIndex failed to allocate linklist");
      std::memcpy(h->linkLists_[i], lr.take(size), size);
    }
    if (level0) {
      std::memcpy(h->data_level0_memory_, level0, count * h->size_data_per_element_);
      finish_load(h);
    }
  } catch (...) {
    delete index->hnsw;
    delete index;
    throw;
  }
  return index;
}

}  // namespace

API int shoal_header_bytes() { return static_cast<int>(HEADER_BYTES); }

/** Level 0 of an index (count × size_per_element bytes): vectors, labels, base-layer links. */
API char* shoal_level0(Index* index) { return index->hnsw->data_level0_memory_; }
API int shoal_level0_bytes(Index* index) {
  return static_cast<int>(index->hnsw->cur_element_count * index->hnsw->size_data_per_element_);
}

/** Bytes shoal_save will write (hnswlib's saveIndex layout: header, level 0, link lists). */
API int shoal_save_size(Index* index) {
  GUARD_BEGIN
  const auto& h = *index->hnsw;
  return static_cast<int>(HEADER_BYTES + h.cur_element_count * h.size_data_per_element_ + links_size(h));
  GUARD_END(-1)
}

/** Writes hnswlib's saveIndex layout to `out` (shoal_save_size bytes); returns bytes written or -1. */
API int shoal_save(Index* index, uint8_t* out) {
  GUARD_BEGIN
  const auto& h = *index->hnsw;
  Writer w{out};
  write_header(h, w);
  w.bytes(h.data_level0_memory_, h.cur_element_count * h.size_data_per_element_);
  write_links(h, w);
  return static_cast<int>(w.p - out);
  GUARD_END(-1)
}

/** Bytes of the saved layout without level 0 (header + link lists), for shoal_save_meta. */
API int shoal_meta_size(Index* index) {
  GUARD_BEGIN
  return static_cast<int>(HEADER_BYTES + links_size(*index->hnsw));
  GUARD_END(-1)
}

/**
 * Writes the header and the link lists only: the caller copies level 0 (shoal_level0) between
 * them itself, so a save never needs a second full copy of the index in the heap.
 */
API int shoal_save_meta(Index* index, uint8_t* out) {
  GUARD_BEGIN
  Writer w{out};
  write_header(*index->hnsw, w);
  write_links(*index->hnsw, w);
  return static_cast<int>(w.p - out);
  GUARD_END(-1)
}

/**
 * Loads hnswlib saveIndex bytes. max_elements below the stored count keeps the stored
 * capacity. Returns the index or 0.
 */
API Index* shoal_load(int space, int dim, const uint8_t* bytes, int length, int max_elements) {
  GUARD_BEGIN
  if (length < static_cast<int>(HEADER_BYTES)) throw std::runtime_error("Index seems to be corrupted or unsupported");
  size_t count, per_element;
  std::memcpy(&count, bytes + 2 * sizeof(size_t), sizeof(size_t));
  std::memcpy(&per_element, bytes + 3 * sizeof(size_t), sizeof(size_t));
  const uint64_t level0 = static_cast<uint64_t>(count) * per_element;
  if (level0 > static_cast<uint64_t>(length) - HEADER_BYTES) {
    throw std::runtime_error("Index seems to be corrupted or unsupported");
  }
  const uint8_t* links = bytes + HEADER_BYTES + level0;
  return load_impl(space, dim, bytes, bytes + HEADER_BYTES, links, static_cast<size_t>(bytes + length - links),
                   max_elements);
  GUARD_END(nullptr)
}

/**
 * Loads from the header + link lists only (shoal_save_meta's layout); level 0 is allocated but
 * not filled: the caller copies it to shoal_level0 and then calls shoal_load_finish. Cold loads
 * thus copy the big block once, straight from the shard bytes into its final place.
 */
API Index* shoal_load_meta(int space, int dim, const uint8_t* meta, int length, int max_elements) {
  GUARD_BEGIN
  if (length < static_cast<int>(HEADER_BYTES)) throw std::runtime_error("Index seems to be corrupted or unsupported");
  return load_impl(space, dim, meta, nullptr, meta + HEADER_BYTES, static_cast<size_t>(length) - HEADER_BYTES,
                   max_elements);
  GUARD_END(nullptr)
}

API int shoal_load_finish(Index* index) {
  GUARD_BEGIN
  finish_load(index->hnsw);
  return 0;
  GUARD_END(-1)
}

API int shoal_resize(Index* index, int max_elements) {
  GUARD_BEGIN
  if (max_elements < static_cast<int>(index->hnsw->cur_element_count)) {
    set_error(INVALID, "cannot resize below the current element count");
    return -1;
  }
  check_capacity(static_cast<uint64_t>(max_elements), index->hnsw->size_data_per_element_);
  index->hnsw->resizeIndex(static_cast<size_t>(max_elements));
  return 0;
  GUARD_END(-1)
}

API int shoal_mark_deleted(Index* index, int label) {
  GUARD_BEGIN
  index->hnsw->markDelete(static_cast<hnswlib::labeltype>(label));
  return 0;
  GUARD_END(-1)
}

API int shoal_unmark_deleted(Index* index, int label) {
  GUARD_BEGIN
  index->hnsw->unmarkDelete(static_cast<hnswlib::labeltype>(label));
  return 0;
  GUARD_END(-1)
}

API int shoal_count(Index* index) { return static_cast<int>(index->hnsw->cur_element_count); }
API int shoal_deleted_count(Index* index) { return static_cast<int>(index->hnsw->num_deleted_); }
API int shoal_max_elements(Index* index) { return static_cast<int>(index->hnsw->max_elements_); }

/** Heap bytes held by the index's graph and vectors (level 0 at capacity + upper-level links). */
API size_t shoal_index_bytes(Index* index) {
  const auto& h = *index->hnsw;
  size_t total = h.max_elements_ * (h.size_data_per_element_ + sizeof(void*) + sizeof(int) + sizeof(std::mutex) +
                                    sizeof(hnswlib::vl_type));
  for (size_t i = 0; i < h.cur_element_count; i++) {
    if (h.element_levels_[i] > 0) total += h.size_links_per_element_ * h.element_levels_[i];
  }
  return total;
}
