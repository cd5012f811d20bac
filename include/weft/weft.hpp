// weft.hpp: a thin, header-only C++20 layer over the C API.
//
//   weft::Communicator comm = weft::Communicator::fromEnv();
//   comm.allReduce(std::span<const float>(in), std::span<float>(out), weft::Op::kSum);
//
// An RAII communicator (destroyed with the object), std::span arguments whose element type picks
// the data type, and errors as weft::Error exceptions carrying the result code and
// weftGetLastError's message.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>

#include "weft/weft.h"

namespace weft {

class Error : public std::runtime_error {
 public:
  Error(weftResult_t code, const std::string& message)
      : std::runtime_error(std::string(weftGetErrorString(code)) + ": " + message), code_(code) {}
  weftResult_t code() const noexcept { return code_; }

 private:
  weftResult_t code_;
};

inline void check(weftResult_t r, weftComm_t comm = nullptr) {
  if (r != weftSuccess) throw Error(r, weftGetLastError(comm));
}

enum class Op { kSum = weftSum, kProd = weftProd, kMax = weftMax, kMin = weftMin, kAvg = weftAvg };

// The weft data type of a C++ element type. 16-bit and 8-bit floating types have no standard C++
// type: use the untyped overloads with an explicit weftDataType_t for them.
template <typename T>
constexpr weftDataType_t dataTypeOf();
template <>
constexpr weftDataType_t dataTypeOf<int8_t>() {
  return weftInt8;
}
template <>
constexpr weftDataType_t dataTypeOf<uint8_t>() {
  return weftUint8;
}
template <>
constexpr weftDataType_t dataTypeOf<int32_t>() {
  return weftInt32;
}
template <>
constexpr weftDataType_t dataTypeOf<uint32_t>() {
  return weftUint32;
}
template <>
constexpr weftDataType_t dataTypeOf<int64_t>() {
  return weftInt64;
}
template <>
constexpr weftDataType_t dataTypeOf<uint64_t>() {
  return weftUint64;
}
template <>
constexpr weftDataType_t dataTypeOf<float>() {
  return weftFloat32;
}
template <>
constexpr weftDataType_t dataTypeOf<double>() {
  return weftFloat64;
}

class UniqueId {
 public:
  static UniqueId create() {
    UniqueId id;
    check(weftGetUniqueId(&id.id_));
    return id;
  }
  const weftUniqueId& raw() const { return id_; }
  weftUniqueId& raw() { return id_; }

 private:
  weftUniqueId id_{};
};

class Communicator {
 public:
  Communicator(int nranks, const UniqueId& id, int rank) {
    check(weftCommInitRank(&comm_, nranks, id.raw(), rank));
  }
  static Communicator fromEnv() {
    weftComm_t c = nullptr;
    check(weftCommInitFromEnv(&c));
    return Communicator(c);
  }
  ~Communicator() {
    if (comm_ != nullptr) weftCommDestroy(comm_);
  }
  Communicator(Communicator&& o) noexcept : comm_(std::exchange(o.comm_, nullptr)) {}
  Communicator& operator=(Communicator&& o) noexcept {
    if (this != &o) {
      if (comm_ != nullptr) weftCommDestroy(comm_);
      comm_ = std::exchange(o.comm_, nullptr);
    }
    return *this;
  }
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  // Releases without waiting for peers (weftCommAbort).
  void abort() {
    if (comm_ != nullptr) weftCommAbort(std::exchange(comm_, nullptr));
  }

  int rank() const {
    int r = 0;
    check(weftCommUserRank(comm_, &r), comm_);
    return r;
  }
  int size() const {
    int n = 0;
    check(weftCommCount(comm_, &n), comm_);
    return n;
  }
  weftComm_t get() const { return comm_; }

  // recv.size() elements are reduced; send must be as large (it may be the same span: in place).
  template <typename T>
  void allReduce(std::span<const T> send, std::span<T> recv, Op op = Op::kSum) {
    requireAtLeast(send.size(), recv.size(), "allReduce: send");
    check(weftAllReduce(send.data(), recv.data(), recv.size(), dataTypeOf<T>(),
                        static_cast<weftRedOp_t>(op), comm_, nullptr),
          comm_);
  }
  // recv holds size() * send.size() elements.
  template <typename T>
  void allGather(std::span<const T> send, std::span<T> recv) {
    requireAtLeast(recv.size(), send.size() * static_cast<size_t>(size()), "allGather: recv");
    check(weftAllGather(send.data(), recv.data(), send.size(), dataTypeOf<T>(), comm_, nullptr),
          comm_);
  }
  // send holds size() * recv.size() elements.
  template <typename T>
  void reduceScatter(std::span<const T> send, std::span<T> recv, Op op = Op::kSum) {
    requireAtLeast(send.size(), recv.size() * static_cast<size_t>(size()), "reduceScatter: send");
    check(weftReduceScatter(send.data(), recv.data(), recv.size(), dataTypeOf<T>(),
                            static_cast<weftRedOp_t>(op), comm_, nullptr),
          comm_);
  }
  // In place: buf is the input on the root and the output elsewhere.
  template <typename T>
  void broadcast(std::span<T> buf, int root) {
    check(weftBroadcast(buf.data(), buf.data(), buf.size(), dataTypeOf<T>(), root, comm_, nullptr),
          comm_);
  }
  // recv is used on the root only.
  template <typename T>
  void reduce(std::span<const T> send, std::span<T> recv, int root, Op op = Op::kSum) {
    check(weftReduce(send.data(), recv.data(), send.size(), dataTypeOf<T>(),
                     static_cast<weftRedOp_t>(op), root, comm_, nullptr),
          comm_);
  }
  // send and recv hold size() blocks of the same length, block j going to / coming from rank j
  // (the same span for both: in place).
  template <typename T>
  void allToAll(std::span<const T> send, std::span<T> recv) {
    const auto n = static_cast<size_t>(size());
    requireAtLeast(send.size(), recv.size(), "allToAll: send");
    if (recv.size() % n != 0)
      throw Error(weftInvalidArgument, "allToAll: recv has " + std::to_string(recv.size()) +
                                           " elements, not a multiple of " + std::to_string(n));
    check(weftAllToAll(send.data(), recv.data(), recv.size() / n, dataTypeOf<T>(), comm_, nullptr),
          comm_);
  }
  // MPI_Alltoallv: size() counts and displacements (in elements) per side; every range must lie
  // inside its span. Receive ranges must not overlap; send and recv must not overlap either.
  template <typename T>
  void allToAllv(std::span<const T> send, std::span<const size_t> sendCounts,
                 std::span<const size_t> sendDispls, std::span<T> recv,
                 std::span<const size_t> recvCounts, std::span<const size_t> recvDispls) {
    const auto n = static_cast<size_t>(size());
    requireRanges(send.size(), sendCounts, sendDispls, n, "allToAllv: send");
    requireRanges(recv.size(), recvCounts, recvDispls, n, "allToAllv: recv");
    check(weftAllToAllv(send.data(), sendCounts.data(), sendDispls.data(), recv.data(),
                        recvCounts.data(), recvDispls.data(), dataTypeOf<T>(), comm_, nullptr),
          comm_);
  }
  // Every rank's send.size() elements to the root, in rank order: recv (used on the root only)
  // holds size() * send.size() elements.
  template <typename T>
  void gather(std::span<const T> send, std::span<T> recv, int root) {
    if (rank() == root)
      requireAtLeast(recv.size(), send.size() * static_cast<size_t>(size()), "gather: recv");
    check(weftGather(send.data(), recv.data(), send.size(), dataTypeOf<T>(), root, comm_, nullptr),
          comm_);
  }
  // Block r of the root's send (used on the root only; size() * recv.size() elements) to rank r.
  template <typename T>
  void scatter(std::span<const T> send, std::span<T> recv, int root) {
    if (rank() == root)
      requireAtLeast(send.size(), recv.size() * static_cast<size_t>(size()), "scatter: send");
    check(weftScatter(send.data(), recv.data(), recv.size(), dataTypeOf<T>(), root, comm_, nullptr),
          comm_);
  }
  template <typename T>
  void send(std::span<const T> buf, int peer) {
    check(weftSend(buf.data(), buf.size(), dataTypeOf<T>(), peer, comm_, nullptr), comm_);
  }
  template <typename T>
  void recv(std::span<T> buf, int peer) {
    check(weftRecv(buf.data(), buf.size(), dataTypeOf<T>(), peer, comm_, nullptr), comm_);
  }

 private:
  explicit Communicator(weftComm_t c) : comm_(c) {}
  static void requireAtLeast(size_t have, size_t need, const char* what) {
    if (have < need)
      throw Error(weftInvalidArgument, std::string(what) + " has " + std::to_string(have) +
                                           " elements, needs " + std::to_string(need));
  }
  static void requireRanges(size_t have, std::span<const size_t> counts,
                            std::span<const size_t> displs, size_t n, const char* what) {
    if (counts.size() != n || displs.size() != n)
      throw Error(weftInvalidArgument, std::string(what) + ": counts and displacements need " +
                                           std::to_string(n) + " entries each");
    for (size_t j = 0; j < n; ++j)
      if (counts[j] > 0 && (displs[j] > have || counts[j] > have - displs[j]))
        throw Error(weftInvalidArgument, std::string(what) + ": the range of rank " +
                                             std::to_string(j) + " ends past the " +
                                             std::to_string(have) + " elements of the span");
  }
  weftComm_t comm_ = nullptr;
};

// Groups: calls made while a Group is alive run together when it goes out of scope.
class Group {
 public:
  Group() { check(weftGroupStart()); }
  ~Group() noexcept(false) {
    // Do not throw while another exception is unwinding the stack.
    weftResult_t r = weftGroupEnd();
    if (r != weftSuccess && std::uncaught_exceptions() == 0)
      throw Error(r, weftGetLastError(nullptr));
  }
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;
};

}  // namespace weft
