// weftMemAlloc/weftMemFree and weftCommRegister/weftCommDeregister.
#include <algorithm>

#include "api/comm.h"
#include "core/log.h"
#include "memory/memory_kind.h"
#include "memory/shared_alloc.h"

using weft::Status;

extern "C" {

weftResult_t weftMemAlloc(void** ptr, size_t size) {
  return weft::guarded(nullptr, [&]() -> Status {
    if (ptr == nullptr) return weft::errorStatus(weftInvalidArgument, "weftMemAlloc: ptr is NULL");
    *ptr = nullptr;
    if (size == 0) return Status::Ok();
    WEFT_ASSIGN_OR_RETURN(*ptr, weft::allocShared(size));
    return Status::Ok();
  });
}

weftResult_t weftMemFree(void* ptr) {
  return weft::guarded(nullptr, [&]() -> Status {
    if (ptr == nullptr) return Status::Ok();
    return weft::freeShared(ptr);
  });
}

weftResult_t weftCommRegister(const weftComm_t comm, void* buff, size_t size, void** handle) {
  return weft::guarded(comm, [&]() -> Status {
    if (comm == nullptr)
      return weft::errorStatus(weftInvalidArgument, "weftCommRegister: comm is NULL");
    if (handle == nullptr)
      return weft::errorStatus(weftInvalidArgument, "weftCommRegister: handle is NULL");
    *handle = nullptr;
    if (buff == nullptr)
      return weft::errorStatus(weftInvalidArgument, "weftCommRegister: buff is NULL");
    if (size == 0) return weft::errorStatus(weftInvalidArgument, "weftCommRegister: size is 0");
    const weft::MemKind kind = weft::detectMemKind(buff);
    if (kind != weft::MemKind::kHost)
      return weft::errorStatus(weftInvalidArgument,
                               "weftCommRegister: buff %p is %s memory, which this release does "
                               "not register",
                               buff, weft::memKindName(kind));
    weft::SharedSegment seg;
    auto reg = std::make_unique<weftComm::Registration>(
        weftComm::Registration{buff, size, weft::findShared(buff, size, &seg)});
    WEFT_INFO(kAlloc, "registered %zu bytes at %p (%s)", size, buff,
              reg->shared ? "weftMemAlloc memory: peers map it" : "private memory: peers copy it");
    std::lock_guard<std::mutex> lock(comm->regMu);
    *handle = reg.get();
    if (reg->shared) comm->sharedRegistrations.fetch_add(1);
    comm->registrations.push_back(std::move(reg));
    return Status::Ok();
  });
}

weftResult_t weftCommDeregister(const weftComm_t comm, void* handle) {
  return weft::guarded(comm, [&]() -> Status {
    if (comm == nullptr)
      return weft::errorStatus(weftInvalidArgument, "weftCommDeregister: comm is NULL");
    std::lock_guard<std::mutex> lock(comm->regMu);
    auto& regs = comm->registrations;
    auto it =
        std::find_if(regs.begin(), regs.end(), [&](const auto& r) { return r.get() == handle; });
    if (it == regs.end())
      return weft::errorStatus(weftInvalidArgument,
                               "weftCommDeregister: handle %p is not registered with this "
                               "communicator",
                               handle);
    if ((*it)->shared) comm->sharedRegistrations.fetch_sub(1);
    regs.erase(it);
    return Status::Ok();
  });
}

}  // extern "C"
