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

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>

#define API extern "C" __attribute__((used, visibility("default")))

namespace {

// ---- Distance kernels ----
//
// One arithmetic for every distance the engine computes, whether alone or in a batch: per vector two
// accumulators over 8-float steps, then one 4-float step, then the last 1–3 floats as zero-extended
// 64- and 32-bit loads (never reading past the vector), and one fixed horizontal sum. The batched form
// (N vectors against one query) interleaves N independent streams, so their cache misses overlap:
// WebAssembly has no prefetch instruction, and a graph walk's cost is mostly waiting for neighbour
// vectors. Every vector's result is bit-identical to the single kernel, so batching never changes a
// graph or an answer. The SIMD tail and the transposed sum of four (below) matter most at low dimension
// (GloVe's 50: six 8-float steps, then the tail and the sums).

/** The lanes' sum in one fixed order, (v0 + v2) + (v1 + v3): the order sum4 uses for each of its four. */
inline float hsum(v128_t v) {
  const v128_t t = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  return wasm_f32x4_extract_lane(t, 0) + wasm_f32x4_extract_lane(t, 1);
}

/** hsum of four vectors at once, lane n = hsum(vn), bit for bit (same additions, same order). */
inline v128_t sum4(v128_t a, v128_t b, v128_t c, v128_t d) {
  const v128_t ab = wasm_f32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5), wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  const v128_t cd = wasm_f32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5), wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  // ab = [a0+a2, b0+b2, a1+a3, b1+b3], cd likewise.
  return wasm_f32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5), wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}

template <bool L2>
inline v128_t term(v128_t q, v128_t x) {
  if (L2) {
    const v128_t t = wasm_f32x4_sub(q, x);
    return wasm_f32x4_mul(t, t);
  }
  return wasm_f32x4_mul(q, x);
}

/** Distances from q to v[0..N): l2 squared, or hnswlib's inner-product distance 1 − q·v. */
template <int N, bool L2>
inline void distances(const float* q, const float* const* v, size_t d, float* out) {
  v128_t s0[N], s1[N];
  for (int n = 0; n < N; n++) s0[n] = s1[n] = wasm_f32x4_splat(0.0f);
  size_t i = 0;
  for (; i + 8 <= d; i += 8) {
    const v128_t q0 = wasm_v128_load(q + i);
    const v128_t q1 = wasm_v128_load(q + i + 4);
    for (int n = 0; n < N; n++) {
      s0[n] = wasm_f32x4_add(s0[n], term<L2>(q0, wasm_v128_load(v[n] + i)));
      s1[n] = wasm_f32x4_add(s1[n], term<L2>(q1, wasm_v128_load(v[n] + i + 4)));
    }
  }
  if (i + 4 <= d) {
    const v128_t q0 = wasm_v128_load(q + i);
    for (int n = 0; n < N; n++) s0[n] = wasm_f32x4_add(s0[n], term<L2>(q0, wasm_v128_load(v[n] + i)));
    i += 4;
  }
  // The last 1–3 floats: zero lanes add 0 to either distance ((0 − 0)² and 0 · 0).
  if (i + 2 <= d) {
    const v128_t q0 = wasm_v128_load64_zero(q + i);
    for (int n = 0; n < N; n++) s1[n] = wasm_f32x4_add(s1[n], term<L2>(q0, wasm_v128_load64_zero(v[n] + i)));
    i += 2;
  }
  if (i < d) {
    const v128_t q0 = wasm_v128_load32_zero(q + i);
    for (int n = 0; n < N; n++) s0[n] = wasm_f32x4_add(s0[n], term<L2>(q0, wasm_v128_load32_zero(v[n] + i)));
  }
  int n = 0;
  for (; n + 4 <= N; n += 4) {
    v128_t r = sum4(wasm_f32x4_add(s0[n], s1[n]), wasm_f32x4_add(s0[n + 1], s1[n + 1]),
                    wasm_f32x4_add(s0[n + 2], s1[n + 2]), wasm_f32x4_add(s0[n + 3], s1[n + 3]));
    if (!L2) r = wasm_f32x4_sub(wasm_f32x4_splat(1.0f), r);
    wasm_v128_store(out + n, r);
  }
  for (; n < N; n++) {
    const float r = hsum(wasm_f32x4_add(s0[n], s1[n]));
    out[n] = L2 ? r : 1.0f - r;
  }
}

float l2_sqr(const void* pa, const void* pb, const void* pdim) {
  const float* b = static_cast<const float*>(pb);
  float r;
  distances<1, true>(static_cast<const float*>(pa), &b, *static_cast<const size_t*>(pdim), &r);
  return r;
}

// hnswlib's inner-product distance: 1 − a·b (cosine = the same over normalised vectors).
float ip_distance(const void* pa, const void* pb, const void* pdim) {
  const float* b = static_cast<const float*>(pb);
  float r;
  distances<1, false>(static_cast<const float*>(pa), &b, *static_cast<const size_t*>(pdim), &r);
  return r;
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

// ---- The graph walk: hnswlib's algorithms, with each node's unvisited neighbours measured in batches ----
//
// hnswlib measures a node's neighbours one at a time and, natively, prefetches the next one's vector. Here
// a node's unvisited neighbours are gathered first and measured BATCH at a time (distances<BATCH>), then
// applied in list order with hnswlib's own conditions, so every search and every insert takes exactly the
// path hnswlib would: same graphs, same answers, fewer stalls. Single-threaded (the module has no
// threads), so hnswlib's per-node locks are skipped.

using Hnsw = hnswlib::HierarchicalNSW<float>;
using hnswlib::tableint;
using Pair = std::pair<float, tableint>;

// libc++'s heap algorithms (LLVM 14's __sift_up and __sift_down, as emscripten 3.1.6 ships them) step for
// step, so every push and pop moves the same elements to the same places as std::push_heap / std::pop_heap
// and equal keys come out in the same order; only the choice of the larger child is made without a branch.
// That choice is a coin flip no branch predictor learns, and a walk pops a heap for every node it expands.
template <typename T, typename Less>
void sift_up(T* first, size_t len, Less less) {
  if (len <= 1) return;
  T* last = first + len - 1;
  size_t parent = (len - 2) / 2;
  T* ptr = first + parent;
  if (!less(*ptr, *last)) return;
  const T t = *last;
  do {
    *last = *ptr;
    last = ptr;
    if (parent == 0) break;
    parent = (parent - 1) / 2;
    ptr = first + parent;
  } while (less(*ptr, t));
  *last = t;
}

/** Sifts first[start] down a heap of len. Reads first[len] (never uses it): the caller keeps one slot spare. */
template <typename T, typename Less>
void sift_down(T* first, size_t len, size_t start, Less less) {
  if (len < 2 || (len - 2) / 2 < start) return;
  const size_t last_parent = (len - 2) / 2;
  size_t child = 2 * start + 1;
  T* ci = first + child;
  bool right = (child + 1 < len) & less(ci[0], ci[1]);
  child += right;
  ci += right;
  T* at = first + start;
  if (less(*ci, *at)) return;
  const T top = *at;
  do {
    *at = *ci;
    at = ci;
    if (last_parent < child) break;
    child = 2 * child + 1;
    ci = first + child;
    right = (child + 1 < len) & less(ci[0], ci[1]);
    child += right;
    ci += right;
  } while (!less(*ci, top));
  *at = top;
}

/** std::pop_heap on [first, first + len): the top moves to first[len − 1]. */
template <typename T, typename Less>
void pop_heap(T* first, size_t len, Less less) {
  if (len > 1) {
    std::swap(first[0], first[len - 1]);
    sift_down(first, len - 1, 0, less);
  }
}

// A heap element is one 64-bit word, (ordered(distance) << 32) | id: one load or store moves it, and an
// integer compare orders two (a pair of float and id took two of each, and a float compare). ordered() is
// monotone, so comparing the high words is hnswlib's CompareByFirst and comparing whole words is
// std::less<std::pair<float, id>> (the heuristic's candidate order): the same algorithms with the same
// answers to every comparison move the same elements to the same places, so the packing changes no graph
// and no tie order.

/** A float's bits made monotone: a < b as floats (no NaN; −0 = +0) iff ordered(a) < ordered(b). */
inline uint32_t ordered(float f) {
  const float c = f + 0.0f;  // −0 → +0: the float order has one zero
  uint32_t bits;
  std::memcpy(&bits, &c, sizeof bits);
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

inline float unordered(uint32_t u) {
  const uint32_t bits = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline uint64_t pack(float d, tableint id) { return (uint64_t{ordered(d)} << 32) | id; }
inline float first_of(uint64_t e) { return unordered(static_cast<uint32_t>(e >> 32)); }
inline tableint id_of(uint64_t e) { return static_cast<tableint>(e); }

/** hnswlib's CompareByFirst: the distance alone (ties in the order the heap algorithm leaves them). */
struct FirstLess {
  bool operator()(uint64_t a, uint64_t b) const { return (a >> 32) < (b >> 32); }
};

/**
 * A binary heap with std::priority_queue<std::pair<float, tableint>, …, CompareByFirst>'s exact semantics
 * (the algorithms above on a vector of packed elements), kept in the index's scratch so a walk allocates
 * nothing.
 */
class MaxHeap {
 public:
  void clear() { c_.clear(); }
  bool empty() const { return c_.empty(); }
  size_t size() const { return c_.size(); }
  Pair top() const { return Pair(first_of(c_.front()), id_of(c_.front())); }
  void emplace(float d, tableint id) {
    c_.push_back(pack(d, id));
    sift_up(c_.data(), c_.size(), FirstLess());
  }
  void pop() {
    // pop_heap's sift reads one slot past the shrunken heap: the popped element, still in the vector.
    pop_heap(c_.data(), c_.size(), FirstLess());
    c_.pop_back();
  }
  /** The packed elements in heap order (not sorted). */
  const std::vector<uint64_t>& items() const { return c_; }

 private:
  std::vector<uint64_t> c_;
};

/**
 * Vectors measured together (default 4, -DSHOAL_BATCH=n to try others): more = more cache misses in flight
 * per node; at 8 the 16 accumulators spill registers, at 2 fewer misses overlap (both were slower in an
 * ad-hoc A/B on SIFT, GloVe and MNIST).
 */
#ifndef SHOAL_BATCH
#define SHOAL_BATCH 4
#endif
constexpr int BATCH = SHOAL_BATCH;

/** Reused per index: no allocation per visited node. Sized for the longest link list (maxM0). */
struct WalkScratch {
  MaxHeap top;         // a layer search's result
  MaxHeap candidates;  // its frontier, (−distance, id)
  MaxHeap pruned;      // a full neighbour list being re-pruned
  std::vector<uint64_t> undecided;  // select()'s candidates not yet kept or rejected, packed (−distance, id)
  std::vector<tableint> undecided_ids;
  std::vector<float> undecided_dist;
  std::vector<tableint> id_buf;
  std::vector<float> dist_buf;
  tableint* ids = nullptr;
  float* dist = nullptr;
  size_t capacity = 0;
  void ensure(size_t n) {
    if (n <= capacity) return;
    id_buf.resize(n);
    dist_buf.resize(n);
    ids = id_buf.data();
    dist = dist_buf.data();
    capacity = n;
  }
};

template <bool L2>
struct Walk {
  const Hnsw& h;
  const size_t dim;
  WalkScratch& s;

  const float* vec(tableint id) const { return reinterpret_cast<const float*>(h.getDataByInternalId(id)); }

  float one(const float* q, tableint id) const {
    const float* v = vec(id);
    float r;
    distances<1, L2>(q, &v, dim, &r);
    return r;
  }

  /** out[i] = distance from q to ids[i], i < n. */
  void measure(const float* q, const tableint* ids, size_t n, float* out) const {
    const float* v[BATCH];
    size_t i = 0;
    for (; i + BATCH <= n; i += BATCH) {
      for (int b = 0; b < BATCH; b++) v[b] = vec(ids[i + b]);
      distances<BATCH, L2>(q, v, dim, out + i);
    }
    for (; i + 2 <= n; i += 2) {
      v[0] = vec(ids[i]);
      v[1] = vec(ids[i + 1]);
      distances<2, L2>(q, v, dim, out + i);
    }
    if (i < n) {
      v[0] = vec(ids[i]);
      distances<1, L2>(q, v, dim, out + i);
    }
  }

  /** s.dist[i] = distance from q to s.ids[i], i < n. */
  void measure(const float* q, size_t n) const { measure(q, s.ids, n, s.dist); }

  /**
   * hnswlib's getNeighborsByHeuristic2: taking candidates closest first, keep one only if no kept one is
   * closer to it than the query is — computed the other way round, with the same answer. The closest
   * candidate is always kept; then the new kept one is measured against every candidate still undecided,
   * in batches, and those it is closer to than the query are rejected; the closest survivor is the next
   * kept one (every candidate closer than it was kept or rejected already). Each candidate is still
   * measured against the kept ones closer than itself until the first that rejects it, as in hnswlib, and
   * the result stops at m the same way, so the same neighbours are kept in the same order (when m are kept
   * early, candidates hnswlib never reached were measured too; most inserts keep fewer than m). hnswlib instead
   * pops the candidates in order from a heap: nearly all of them (an insert keeps a few of its ~efConstruction
   * candidates and reads almost every one), so a full heapsort of scattered loads and branches, with each
   * rejection a lone distance waiting on the one before. Here the order is never materialised and the
   * distances run four streams at a time.
   */
  void select(MaxHeap& top, size_t m) const {
    if (top.size() < m) return;
    // Packed (−distance, id), so the largest word is the next candidate hnswlib would pop: closest first,
    // equal distances to the larger id (the total order of its (−distance, id) pairs).
    auto& left = s.undecided;
    left.clear();
    for (const uint64_t e : top.items()) left.push_back(pack(-first_of(e), id_of(e)));
    top.clear();
    size_t n = left.size();
    if (s.undecided_ids.size() < n) {
      s.undecided_ids.resize(n);
      s.undecided_dist.resize(n);
    }
    uint64_t* c = left.data();
    tableint* ids = s.undecided_ids.data();
    float* dist = s.undecided_dist.data();
    Pair kept[1024];
    size_t count = 0;
    size_t next = 0;
    for (size_t i = 1; i < n; i++) next = c[i] > c[next] ? i : next;
    while (n > 0 && count < m) {
      const uint64_t k = c[next];
      c[next] = c[--n];
      kept[count++] = Pair(first_of(k), id_of(k));
      if (count == m || n == 0) break;
      for (size_t i = 0; i < n; i++) ids[i] = id_of(c[i]);
      // dist(kept, candidate) = dist(candidate, kept) bit for bit: (a−b)² and a·b do not depend on the order.
      measure(vec(id_of(k)), ids, n, dist);
      // Compact the survivors and find the closest of them in the same pass, without a branch per candidate.
      size_t w = 0;
      uint64_t closest = 0;
      next = 0;
      for (size_t i = 0; i < n; i++) {
        const uint64_t e = c[i];
        const bool survives = !(dist[i] < -first_of(e));
        c[w] = e;
        const bool closer = survives & (e > closest);
        next = closer ? w : next;
        closest = closer ? e : closest;
        w += survives;
      }
      n = w;
    }
    for (size_t i = 0; i < count; i++) top.emplace(-kept[i].first, kept[i].second);
  }

  /** Copies a link list (count, then ids) to s.ids; returns the count. */
  size_t gather(hnswlib::linklistsizeint* list) const {
    const size_t n = h.getListCount(list);
    if (n > s.capacity) throw std::runtime_error("Index seems to be corrupted: a link list is longer than maxM0");
    std::memcpy(s.ids, list + 1, n * sizeof(tableint));
    return n;
  }

  /** Greedy descent through the upper layers (hnswlib's searchKnn / addPoint prologue). */
  tableint descend(const float* q, tableint node, float& node_dist, int from_level, int to_level) const {
    for (int level = from_level; level > to_level; level--) {
      bool changed = true;
      while (changed) {
        changed = false;
        const size_t n = gather(h.get_linklist(node, level));
        for (size_t i = 0; i < n; i++) {
          if (s.ids[i] > h.max_elements_) throw std::runtime_error("cand error");
        }
        measure(q, n);
        for (size_t i = 0; i < n; i++) {
          if (s.dist[i] < node_dist) {
            node_dist = s.dist[i];
            node = s.ids[i];
            changed = true;
          }
        }
      }
    }
    return node;
  }

  /** Unvisited neighbours of a link list into s.ids (marking them visited); returns their count. */
  size_t unvisited(hnswlib::linklistsizeint* list, hnswlib::vl_type* visited, hnswlib::vl_type tag) const {
    const size_t n = h.getListCount(list);
    if (n > s.capacity) throw std::runtime_error("Index seems to be corrupted: a link list is longer than maxM0");
    const tableint* ids = list + 1;
    size_t m = 0;
    // Without a branch: late in a walk most neighbours are visited already, unpredictably which. The id is
    // written either way and kept by advancing the count.
    for (size_t j = 0; j < n; j++) {
      const tableint id = ids[j];
      s.ids[m] = id;
      m += visited[id] != tag;
      visited[id] = tag;
    }
    return m;
  }

  /**
   * hnswlib's searchBaseLayerST on layer 0: bare (no deletes, no filter) or with both, and the same
   * stopping rules for each.
   */
  template <bool BARE>
  MaxHeap& search0(tableint ep, const float* q, size_t ef, hnswlib::BaseFilterFunctor* allowed) const {
    hnswlib::VisitedList* vl = h.visited_list_pool_->getFreeVisitedList();
    hnswlib::vl_type* visited = vl->mass;
    const hnswlib::vl_type tag = vl->curV;
    MaxHeap& top = s.top;
    MaxHeap& candidates = s.candidates;
    top.clear();
    candidates.clear();
    const auto admits = [&](tableint id) {
      return BARE || (!h.isMarkedDeleted(id) && (!allowed || (*allowed)(h.getExternalLabel(id))));
    };
    float lower;
    if (admits(ep)) {
      const float d = one(q, ep);
      lower = d;
      top.emplace(d, ep);
      candidates.emplace(-d, ep);
    } else {
      lower = std::numeric_limits<float>::max();
      candidates.emplace(-lower, ep);
    }
    visited[ep] = tag;
    while (!candidates.empty()) {
      const Pair current = candidates.top();
      const float cd = -current.first;
      if (BARE ? cd > lower : (cd > lower && top.size() == ef)) break;
      candidates.pop();
      const size_t n = unvisited(h.get_linklist0(current.second), visited, tag);
      measure(q, n);
      for (size_t i = 0; i < n; i++) {
        const float d = s.dist[i];
        if (!(top.size() < ef || lower > d)) continue;
        const tableint id = s.ids[i];
        candidates.emplace(-d, id);
        // A push then a pop, as hnswlib does: replacing the root in one sift would keep the same distances
        // but, between hits at exactly equal distance (common on integer data like SIFT), not always
        // the same ids.
        if (admits(id)) top.emplace(d, id);
        while (top.size() > ef) top.pop();
        if (!top.empty()) lower = top.top().first;
      }
    }
    h.visited_list_pool_->releaseVisitedList(vl);
    return top;
  }

  /** hnswlib's searchBaseLayer (the insert's search on one layer, ef = efConstruction). */
  /** DELETES: the index holds deleted elements (else hnswlib's per-candidate deleted check is skipped). */
  template <bool DELETES>
  MaxHeap& search_layer(tableint ep, const float* q, int layer) const {
    hnswlib::VisitedList* vl = h.visited_list_pool_->getFreeVisitedList();
    hnswlib::vl_type* visited = vl->mass;
    const hnswlib::vl_type tag = vl->curV;
    const size_t ef = h.ef_construction_;
    MaxHeap& top = s.top;
    MaxHeap& candidates = s.candidates;
    top.clear();
    candidates.clear();
    float lower;
    if (!DELETES || !h.isMarkedDeleted(ep)) {
      const float d = one(q, ep);
      top.emplace(d, ep);
      lower = d;
      candidates.emplace(-d, ep);
    } else {
      lower = std::numeric_limits<float>::max();
      candidates.emplace(-lower, ep);
    }
    visited[ep] = tag;
    while (!candidates.empty()) {
      const Pair current = candidates.top();
      if (-current.first > lower && top.size() == ef) break;
      candidates.pop();
      const tableint node = current.second;
      hnswlib::linklistsizeint* list = layer == 0 ? h.get_linklist0(node) : h.get_linklist(node, layer);
      const size_t n = unvisited(list, visited, tag);
      measure(q, n);
      for (size_t i = 0; i < n; i++) {
        const float d = s.dist[i];
        if (!(top.size() < ef || lower > d)) continue;
        const tableint id = s.ids[i];
        candidates.emplace(-d, id);
        if (!DELETES || !h.isMarkedDeleted(id)) top.emplace(d, id);
        if (top.size() > ef) top.pop();
        if (!top.empty()) lower = top.top().first;
      }
    }
    h.visited_list_pool_->releaseVisitedList(vl);
    return top;
  }
};

/** hnswlib's mutuallyConnectNewElement for a new element (no update): the rebuilt lists measured in batches. */
template <bool L2>
tableint connect(Hnsw& h, const Walk<L2>& w, tableint cur, MaxHeap& top, int level) {
  const size_t max_links = level ? h.maxM_ : h.maxM0_;
  w.select(top, h.M_);
  if (top.size() > h.M_) throw std::runtime_error("Should be not be more than M_ candidates returned by the heuristic");
  tableint selected[512];
  size_t count = 0;
  while (!top.empty()) {
    selected[count++] = top.top().second;
    top.pop();
  }
  const tableint next = selected[count - 1];
  hnswlib::linklistsizeint* own = level == 0 ? h.get_linklist0(cur) : h.get_linklist(cur, level);
  if (*own) throw std::runtime_error("The newly inserted element should have blank link list");
  h.setListCount(own, static_cast<unsigned short>(count));
  tableint* links = own + 1;
  for (size_t i = 0; i < count; i++) {
    if (links[i]) throw std::runtime_error("Possible memory corruption");
    if (level > h.element_levels_[selected[i]]) {
      throw std::runtime_error("Trying to make a link on a non-existent level");
    }
    links[i] = selected[i];
  }
  for (size_t i = 0; i < count; i++) {
    const tableint other = selected[i];
    hnswlib::linklistsizeint* list = level == 0 ? h.get_linklist0(other) : h.get_linklist(other, level);
    const size_t size = h.getListCount(list);
    if (size > max_links) throw std::runtime_error("Bad value of sz_link_list_other");
    if (other == cur) throw std::runtime_error("Trying to connect an element to itself");
    if (level > h.element_levels_[other]) throw std::runtime_error("Trying to make a link on a non-existent level");
    tableint* theirs = list + 1;
    if (size < max_links) {
      theirs[size] = cur;
      h.setListCount(list, static_cast<unsigned short>(size + 1));
      continue;
    }
    // Full: keep the best max_links of its links plus the new element, by the same heuristic. Distances
    // are symmetric bit for bit ((a−b)² and a·b do not depend on the order), so measuring from `other`
    // gives hnswlib's values.
    const float* other_vec = w.vec(other);
    MaxHeap& candidates = w.s.pruned;
    candidates.clear();
    candidates.emplace(w.one(w.vec(cur), other), cur);
    std::memcpy(w.s.ids, theirs, size * sizeof(tableint));
    w.measure(other_vec, size);
    for (size_t j = 0; j < size; j++) candidates.emplace(w.s.dist[j], w.s.ids[j]);
    w.select(candidates, max_links);
    unsigned short kept = 0;
    while (!candidates.empty()) {
      theirs[kept++] = candidates.top().second;
      candidates.pop();
    }
    h.setListCount(list, kept);
  }
  return next;
}

/** hnswlib's addPoint for a label the index does not hold yet (an existing label takes hnswlib's update path). */
template <bool L2>
void insert(Hnsw& h, WalkScratch& scratch, size_t dim, const float* v, hnswlib::labeltype label) {
  if (h.label_lookup_.find(label) != h.label_lookup_.end()) {
    h.addPoint(v, label, false);
    return;
  }
  if (h.cur_element_count >= h.max_elements_) {
    throw std::runtime_error("The number of elements exceeds the specified limit");
  }
  if (h.maxM0_ > 1024) throw std::runtime_error("M above 512 is not supported");  // select()'s stack arrays
  const auto cur = static_cast<tableint>(h.cur_element_count);
  h.cur_element_count++;
  h.label_lookup_[label] = cur;
  const int level = h.getRandomLevel(h.mult_);
  h.element_levels_[cur] = level;
  const int max_level = h.maxlevel_;
  const tableint entry = h.enterpoint_node_;
  std::memset(h.data_level0_memory_ + cur * h.size_data_per_element_ + h.offsetLevel0_, 0, h.size_data_per_element_);
  std::memcpy(h.getExternalLabeLp(cur), &label, sizeof(label));
  std::memcpy(h.getDataByInternalId(cur), v, h.data_size_);
  if (level) {
    h.linkLists_[cur] = static_cast<char*>(std::malloc(h.size_links_per_element_ * level + 1));
    if (!h.linkLists_[cur]) throw std::runtime_error("Not enough memory: addPoint failed to allocate linklist");
    std::memset(h.linkLists_[cur], 0, h.size_links_per_element_ * level + 1);
  }
  if (static_cast<int>(entry) != -1) {
    scratch.ensure(std::max(h.maxM0_, h.maxM_));
    const Walk<L2> w{h, dim, scratch};
    tableint node = entry;
    if (level < max_level) {
      float d = w.one(v, node);
      node = w.descend(v, node, d, max_level, level);
    }
    const bool entry_deleted = h.isMarkedDeleted(entry);
    for (int l = std::min(level, max_level); l >= 0; l--) {
      MaxHeap& top = h.num_deleted_ ? w.template search_layer<true>(node, v, l)
                                    : w.template search_layer<false>(node, v, l);
      if (entry_deleted) {
        top.emplace(w.one(v, entry), entry);
        if (top.size() > h.ef_construction_) top.pop();
      }
      node = connect<L2>(h, w, cur, top, l);
    }
  } else {
    h.enterpoint_node_ = 0;
    h.maxlevel_ = level;
  }
  if (level > max_level) {
    h.enterpoint_node_ = cur;
    h.maxlevel_ = level;
  }
}

/** hnswlib's searchKnn: worst hit on top. */
template <bool L2>
std::priority_queue<std::pair<float, hnswlib::labeltype>> knn(const Hnsw& h, WalkScratch& scratch, size_t dim,
                                                              const float* q, size_t k,
                                                              hnswlib::BaseFilterFunctor* allowed) {
  std::priority_queue<std::pair<float, hnswlib::labeltype>> result;
  if (h.cur_element_count == 0) return result;
  scratch.ensure(std::max(h.maxM0_, h.maxM_));
  const Walk<L2> w{h, dim, scratch};
  float d = w.one(q, h.enterpoint_node_);
  const tableint node = w.descend(q, h.enterpoint_node_, d, h.maxlevel_, 0);
  const size_t ef = std::max(h.ef_, k);
  MaxHeap& top = !h.num_deleted_ && !allowed ? w.template search0<true>(node, q, ef, nullptr)
                                            : w.template search0<false>(node, q, ef, allowed);
  while (top.size() > k) top.pop();
  while (!top.empty()) {
    result.emplace(top.top().first, h.getExternalLabel(top.top().second));
    top.pop();
  }
  return result;
}

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
  WalkScratch walk;
  std::vector<uint64_t> exact_best;  // shoal_exact's top k

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

/**
 * Adds `count` row-major vectors labelled first_label.. ; returns how many were added, or -1.
 * `reference` != 0 takes hnswlib's own addPoint instead of the batched walk (tests prove the two build
 * byte-identical indexes).
 */
API int shoal_add_with(Index* index, const float* vectors, int count, int first_label, int reference) {
  GUARD_BEGIN
  int added = 0;
  for (; added < count; added++) {
    const float* v = index->prepare(vectors + static_cast<size_t>(added) * index->dim);
    const auto label = static_cast<hnswlib::labeltype>(first_label + added);
    if (reference) {
      index->hnsw->addPoint(v, label, false);
    } else if (index->space == SPACE_L2) {
      insert<true>(*index->hnsw, index->walk, index->dim, v, label);
    } else {
      insert<false>(*index->hnsw, index->walk, index->dim, v, label);
    }
  }
  return added;
  GUARD_END(-1)
}

API int shoal_add(Index* index, const float* vectors, int count, int first_label) {
  return shoal_add_with(index, vectors, count, first_label, 0);
}

/**
 * Searches `nq` row-major queries. For query q, up to k hits go to labels[q*k..] / distances[q*k..]
 * best first, and their number to counts[q]. `allowed` (nullable) is a bitmap over labels
 * (bit r of byte r>>3): only labels with a set bit below `allowed_rows` are returned.
 * `reference` != 0 takes hnswlib's own searchKnn instead of the batched walk (for tests).
 * Returns 0, or -1 on error.
 */
API int shoal_search_with(Index* index, const float* queries, int nq, int k, int ef, const uint8_t* allowed,
                          int allowed_rows, int* labels, float* distances, int* counts, int reference) {
  GUARD_BEGIN
  index->hnsw->setEf(static_cast<size_t>(ef));
  BitmapFilter filter(allowed, allowed ? static_cast<size_t>(allowed_rows) : 0);
  hnswlib::BaseFilterFunctor* f = allowed ? &filter : nullptr;
  const auto kk = static_cast<size_t>(k);
  for (int q = 0; q < nq; q++) {
    const float* v = index->prepare(queries + static_cast<size_t>(q) * index->dim);
    auto result = reference                    ? index->hnsw->searchKnn(v, kk, f)
                  : index->space == SPACE_L2 ? knn<true>(*index->hnsw, index->walk, index->dim, v, kk, f)
                                             : knn<false>(*index->hnsw, index->walk, index->dim, v, kk, f);
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

API int shoal_search(Index* index, const float* queries, int nq, int k, int ef, const uint8_t* allowed,
                     int allowed_rows, int* labels, float* distances, int* counts) {
  return shoal_search_with(index, queries, nq, k, ef, allowed, allowed_rows, labels, distances, counts, 0);
}

/**
 * Exact top k of one query over the index's own vectors (level 0, where the graph reads them): every row, or
 * only rows[0..n) when rows is not null (a filter's matches; internal ids, which are rows in a shard). The
 * graph walk's batched measure, so an exact plan's distances are the graph's distances bit for bit.
 * Writes up to k (row, distance) pairs closest first, equal distances to the lower row; returns their count.
 */
API int shoal_exact(Index* index, const float* query, const int* rows, int n, int k, int* labels, float* dists) {
  GUARD_BEGIN
  if (n < 0 || k < 0) {
    set_error(INVALID, "invalid exact-search parameters");
    return -1;
  }
  const Hnsw& h = *index->hnsw;
  const size_t count = h.cur_element_count;
  const size_t total = rows ? static_cast<size_t>(n) : count;
  if (rows) {
    for (size_t i = 0; i < total; i++) {
      if (rows[i] < 0 || static_cast<size_t>(rows[i]) >= count) {
        set_error(INVALID, "exact search: row out of range");
        return -1;
      }
    }
  }
  const float* q = index->prepare(query);
  const size_t want = std::min(static_cast<size_t>(k), total);
  if (want == 0) return 0;
  // The k best so far as a max-heap of packed (distance, row) words: the worst (farthest, then highest row)
  // on top, so a tie at the boundary keeps the lower row. One spare slot: sift_down reads one past the end.
  std::vector<uint64_t>& best = index->exact_best;
  best.assign(want + 1, 0);
  size_t size = 0;
  const auto less = [](uint64_t a, uint64_t b) { return a < b; };
  const auto offer = [&](float d, size_t row) {
    // NaN (no finite vector is stored, but never trust bytes) ranks last, as +inf does.
    const uint64_t e = pack(d == d ? d : std::numeric_limits<float>::infinity(), static_cast<tableint>(row));
    if (size < want) {
      best[size++] = e;
      sift_up(best.data(), size, less);
    } else if (e < best[0]) {
      best[0] = e;
      sift_down(best.data(), size, 0, less);
    }
  };
  // The walk's batched measure, a chunk of rows at a time.
  constexpr size_t CHUNK = 256;
  tableint ids[CHUNK];
  float out[CHUNK];
  for (size_t i = 0; i < total; i += CHUNK) {
    const size_t len = std::min(CHUNK, total - i);
    for (size_t j = 0; j < len; j++) ids[j] = static_cast<tableint>(rows ? static_cast<size_t>(rows[i + j]) : i + j);
    if (index->space == SPACE_L2) {
      Walk<true>{h, index->dim, index->walk}.measure(q, ids, len, out);
    } else {
      Walk<false>{h, index->dim, index->walk}.measure(q, ids, len, out);
    }
    for (size_t j = 0; j < len; j++) offer(out[j], ids[j]);
  }
  // Ascending: pop the worst to the back, one at a time.
  for (size_t len = size; len > 1; len--) pop_heap(best.data(), len, less);
  for (size_t j = 0; j < size; j++) {
    labels[j] = static_cast<int>(id_of(best[j]));
    dists[j] = first_of(best[j]);
  }
  return static_cast<int>(size);
  GUARD_END(-1)
}

/**
 * out[i] = distance from query to rows[i] (n rows of dim floats, no index): l2 squared for SPACE_L2, else
 * 1 − dot (cosine ranks the same over any query norm when the rows are normalised). An exact scan with the
 * graph walk's kernels, BATCH rows at a time: the coordinator ranks a partitioned version's centroids with it.
 */
API int shoal_scan(int space, int dim, const float* rows, int n, const float* query, float* out) {
  if (!valid_space(space) || dim <= 0 || n < 0) {
    set_error(INVALID, "invalid scan parameters");
    return -1;
  }
  const size_t d = static_cast<size_t>(dim);
  const float* v[BATCH];
  int i = 0;
  for (; i + BATCH <= n; i += BATCH) {
    for (int b = 0; b < BATCH; b++) v[b] = rows + static_cast<size_t>(i + b) * d;
    if (space == SPACE_L2) {
      distances<BATCH, true>(query, v, d, out + i);
    } else {
      distances<BATCH, false>(query, v, d, out + i);
    }
  }
  for (; i < n; i++) {
    v[0] = rows + static_cast<size_t>(i) * d;
    if (space == SPACE_L2) {
      distances<1, true>(query, v, d, out + i);
    } else {
      distances<1, false>(query, v, d, out + i);
    }
  }
  return 0;
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
