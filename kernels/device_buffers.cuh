#pragma once
// Device memory of the CUDA backend. Every buffer comes from the lists of cuda_plan.hpp
// (SCB_CUDA_PACK_BUFFERS, SCB_CUDA_EVAL_BUFFERS, SCB_CUDA_PROBLEM_BUFFERS), which the memory
// planner sums too, so what attach allocates is what was planned; an upload of another size than
// the planned count throws. Memsets and uploads are enqueued on the backend's stream: it is a
// non-blocking stream, which the legacy default stream does not order, so a kernel on it could
// otherwise read a buffer before its upload landed. attach synchronises the stream once at its
// end, while the host sources of the uploads are still alive (HostStaging keeps the temporary ones).
#include <cuda_runtime.h>

#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_common.cuh"

namespace scb::cuda {

template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() { release(); }
  // n zeroed elements (none, and a null pointer, for n = 0).
  void allocate(const char* name, uint64_t n, cudaStream_t stream) {
    release();
    name_ = name;
    n_ = n;
    if (n) {
      check_cuda(cudaMalloc(&p_, n * sizeof(T)), name);
      check_cuda(cudaMemsetAsync(p_, 0, n * sizeof(T), stream), name);
    }
  }
  // Copies the planned count of elements from the host; src must stay alive until the stream
  // reaches the copy.
  void upload(const T* src, uint64_t n, cudaStream_t stream) {
    if (n != n_)
      throw std::logic_error(std::string("CUDA backend: buffer ") + name_ + " is planned for " + std::to_string(n_) +
                             " elements, the upload has " + std::to_string(n));
    if (n) check_cuda(cudaMemcpyAsync(p_, src, n * sizeof(T), cudaMemcpyHostToDevice, stream), name_);
  }
  void upload(const std::vector<T>& v, cudaStream_t stream) { upload(v.data(), v.size(), stream); }
  T* get() const { return p_; }
  uint64_t size() const { return n_; }

 private:
  void release() {
    if (p_) cudaFree(p_);
    p_ = nullptr;
    n_ = 0;
  }
  T* p_ = nullptr;
  uint64_t n_ = 0;
  const char* name_ = "";
};

template <typename T>
class PinnedArray {
 public:
  PinnedArray() = default;
  PinnedArray(const PinnedArray&) = delete;
  PinnedArray& operator=(const PinnedArray&) = delete;
  ~PinnedArray() {
    if (p_) cudaFreeHost(p_);
  }
  void allocate(size_t n) {
    if (p_) cudaFreeHost(p_);
    p_ = nullptr;
    if (n) check_cuda(cudaMallocHost(&p_, n * sizeof(T)), "cudaMallocHost");
  }
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
};

// Host copies made for an upload (the sources that are not pack arrays), kept until attach has
// synchronised its stream.
class HostStaging {
 public:
  template <typename T>
  T& keep(T value) {
    auto holder = std::make_shared<T>(std::move(value));
    held_.push_back(holder);
    return *holder;
  }

 private:
  std::deque<std::shared_ptr<void>> held_;
};

// An upload's source: a pack array is uploaded from where it lives, a temporary is kept in the
// staging.
template <typename T>
const std::vector<T>& stage(HostStaging&, const std::vector<T>& lives) {
  return lives;
}
template <typename T>
const std::vector<T>& stage(HostStaging& staging, std::vector<T>&& temporary) {
  return staging.keep(std::move(temporary));
}

// The pack's buffers (bound to the DevPack fields of the same names) and evaluate()'s.
struct PackBuffers {
#define SCB_CUDA_MEMBER(name, type, count) DeviceArray<type> name;
  SCB_CUDA_PACK_BUFFERS(SCB_CUDA_MEMBER)
  SCB_CUDA_EVAL_BUFFERS(SCB_CUDA_MEMBER)
#undef SCB_CUDA_MEMBER

  void allocate(const PackShape& s, cudaStream_t stream) {
#define SCB_CUDA_ALLOCATE(name, type, count) name.allocate(#name, (count), stream);
    SCB_CUDA_PACK_BUFFERS(SCB_CUDA_ALLOCATE)
    SCB_CUDA_EVAL_BUFFERS(SCB_CUDA_ALLOCATE)
#undef SCB_CUDA_ALLOCATE
  }
  void bind(DevPack& d) const {
#define SCB_CUDA_BIND(name, type, count) d.name = name.get();
    SCB_CUDA_PACK_BUFFERS(SCB_CUDA_BIND)
#undef SCB_CUDA_BIND
  }
  // The pack's arrays and derived tables (SCB_CUDA_PACK_UPLOADS), each into its buffer.
  void upload(const RunPack& pack, HostStaging& staging, cudaStream_t stream) {
    const SampleMap& map = staging.keep(upload_sample_map(pack));
#define SCB_CUDA_UPLOAD(name, source) name.upload(stage(staging, source), stream);
    SCB_CUDA_PACK_UPLOADS(SCB_CUDA_UPLOAD)
#undef SCB_CUDA_UPLOAD
  }

};

// One problem's tables; upload returns the kernels' view of them.
struct ProblemBuffers {
#define SCB_CUDA_MEMBER(name, field, type, count, source) DeviceArray<type> name;
  SCB_CUDA_PROBLEM_BUFFERS(SCB_CUDA_MEMBER)
#undef SCB_CUDA_MEMBER

  DevProblem upload(const Problem& pb, HostStaging& staging, cudaStream_t stream) {
    const uint32_t N = pb.N;
    const uint64_t q = pb.q_pos.size();
    DevProblem v{};
    v.view.N = N;
    v.view.T = pb.T;
#define SCB_CUDA_UPLOAD(name, field, type, count, source) \
  name.allocate(#name, (count), stream);                  \
  name.upload(stage(staging, source), stream);            \
  v.field = name.get();
    SCB_CUDA_PROBLEM_BUFFERS(SCB_CUDA_UPLOAD)
#undef SCB_CUDA_UPLOAD
    return v;
  }
};

}  // namespace scb::cuda
