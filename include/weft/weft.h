/*
 * weft: a topology-aware collective communication library.
 *
 * The C ABI. It is shaped like NCCL's (same argument order, same enum values where NCCL has them)
 * so that code written for NCCL or HCCL reads the same. Every collective takes a trailing stream
 * argument: NULL means host memory and a synchronous call; device streams arrive with the
 * device-memory paths.
 *
 * Thread safety: a communicator may be used by one thread at a time. Different communicators are
 * independent. weftGetErrorString, weftGetVersion and weftGetUniqueId may be called from any
 * thread.
 */
#ifndef WEFT_WEFT_H_
#define WEFT_WEFT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_MAJOR 0
#define WEFT_MINOR 1
#define WEFT_PATCH 0
/* Encoded as NCCL does for 2.x: major*10000 + minor*100 + patch. */
#define WEFT_VERSION_CODE (WEFT_MAJOR * 10000 + WEFT_MINOR * 100 + WEFT_PATCH)

#if defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
#endif

/* Result codes: NCCL's numbering. */
typedef enum {
  weftSuccess = 0,
  weftUnhandledDeviceError = 1,
  weftSystemError = 2,
  weftInternalError = 3,
  weftInvalidArgument = 4,
  weftInvalidUsage = 5,
  weftRemoteError = 6,
  weftInProgress = 7,
  weftTimeout = 8,
  weftNumResults = 9
} weftResult_t;

/* Data types: NCCL's numbering. */
typedef enum {
  weftInt8 = 0,
  weftChar = 0,
  weftUint8 = 1,
  weftInt32 = 2,
  weftInt = 2,
  weftUint32 = 3,
  weftInt64 = 4,
  weftUint64 = 5,
  weftFloat16 = 6,
  weftHalf = 6,
  weftFloat32 = 7,
  weftFloat = 7,
  weftFloat64 = 8,
  weftDouble = 8,
  weftBfloat16 = 9,
  weftFloat8e4m3 = 10,
  weftFloat8e5m2 = 11,
  weftNumTypes = 12
} weftDataType_t;

/* Reduction operations: NCCL's numbering. avg divides the sum by the number of ranks once, at the
 * end. */
typedef enum {
  weftSum = 0,
  weftProd = 1,
  weftMax = 2,
  weftMin = 3,
  weftAvg = 4,
  weftNumOps = 5
} weftRedOp_t;

/* 128 opaque bytes: the root's address and a random secret. Made by weftGetUniqueId on one rank and
 * passed to all others by any means (MPI_Bcast, a file, a key-value store). */
#define WEFT_UNIQUE_ID_BYTES 128
typedef struct {
  char internal[WEFT_UNIQUE_ID_BYTES];
} weftUniqueId;

typedef struct weftComm* weftComm_t;
typedef struct weftRequest* weftRequest_t;
/* A device stream (cudaStream_t, aclrtStream) or NULL for host memory and synchronous completion.
 */
typedef void* weftStream_t;

/* ---- Version and errors ---- */
WEFT_API weftResult_t weftGetVersion(int* version);
WEFT_API const char* weftGetErrorString(weftResult_t result);
/* The message of the last error on this communicator, or of the last error on the calling thread
 * when comm is NULL (for example a failed weftCommInitRank). Never NULL; "" when there was none.
 * The string stays valid until the next call on the same communicator or thread. */
WEFT_API const char* weftGetLastError(weftComm_t comm);

/* ---- Communicators ---- */
WEFT_API weftResult_t weftGetUniqueId(weftUniqueId* uniqueId);
WEFT_API weftResult_t weftCommInitRank(weftComm_t* comm, int nranks, weftUniqueId commId, int rank);
/* Creates a communicator from the launcher's environment: WEFT_RANK/WEFT_WORLD_SIZE/WEFT_ROOT
 * (weftrun), RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT (torchrun), OMPI_COMM_WORLD_RANK/SIZE (mpirun)
 * or SLURM_PROCID/SLURM_NTASKS (srun), in that order; the rendezvous address comes from WEFT_ROOT
 * or MASTER_ADDR:MASTER_PORT. Rank 0 serves the rendezvous. */
WEFT_API weftResult_t weftCommInitFromEnv(weftComm_t* comm);
/* Waits for this rank's outstanding requests, then releases everything. */
WEFT_API weftResult_t weftCommDestroy(weftComm_t comm);
/* Releases everything without waiting for peers; always returns. Outstanding requests fail. */
WEFT_API weftResult_t weftCommAbort(weftComm_t comm);
/* weftSuccess, or the error that poisoned the communicator (a dead peer, a timeout). */
WEFT_API weftResult_t weftCommGetAsyncError(weftComm_t comm, weftResult_t* asyncError);
WEFT_API weftResult_t weftCommCount(const weftComm_t comm, int* count);
WEFT_API weftResult_t weftCommUserRank(const weftComm_t comm, int* rank);
/* The algorithm this communicator would run for a call, as the tuner chooses it (cost model,
 * WEFT_ALGO, WEFT_TUNE_FILE): *name is set to a string such as "ring" that stays valid while the
 * library is loaded. collective is named as in WEFT_ALGO, case-insensitive, '_' and '-' ignored
 * ("allreduce", "all_reduce", "allgather", "reducescatter", "broadcast", "reduce", "send", "recv",
 * ...); count and datatype are the collective's own count argument (all-gather: sendcount,
 * reduce-scatter: recvcount); op is checked only for collectives that reduce. The answer is for
 * the out-of-place form of the call (root 0 where there is a root). Moves no data and needs no
 * other rank; fails as the call itself would when WEFT_ALGO forces an algorithm that cannot run
 * it. */
WEFT_API weftResult_t weftCommGetAlgorithm(weftComm_t comm, const char* collective, size_t count,
                                           weftDataType_t datatype, weftRedOp_t op,
                                           const char** name);
/* As weftCommGetAlgorithm, for the call on these buffers: where every buffer it uses is registered
 * weftMemAlloc memory (weftCommRegister), one-sided steps move bytes straight in the peers'
 * mapped buffers and the choice may differ. sendbuff and recvbuff are the call's own (out of
 * place); NULL where this rank does not use one. */
WEFT_API weftResult_t weftCommGetAlgorithmFor(weftComm_t comm, const char* collective,
                                              const void* sendbuff, const void* recvbuff,
                                              size_t count, weftDataType_t datatype, weftRedOp_t op,
                                              const char** name);

/* What one transport has carried for this rank since the communicator was created: a
 * communicator whose ranks span hosts has one record for shared memory and one for the network
 * plugin; one within a host has one. */
typedef struct {
  char name[16];   /* "shm", "ucx", "ofi", or a plugin's own name */
  char device[96]; /* what carried the bytes, as the transport describes it ("tcp/veth_a") */
  int peers;       /* ranks reached through it, this one excluded */
  unsigned long long bytesSent;
  unsigned long long bytesReceived;
  unsigned long long messagesSent;
  unsigned long long messagesReceived;
  /* One-sided steps through the network plugin's RMA: bytes this rank wrote to and read from
   * peers' memory (shared memory, which reaches peers' memory directly, leaves them 0). */
  unsigned long long bytesPut;
  unsigned long long bytesGot;
} weftTransportStats_t;
/* Fills up to *count records and sets *count to the number of transports (call with *count 0 to
 * learn it). Waits for the communicator's running operations to finish a step, never for peers. */
WEFT_API weftResult_t weftCommTransportStats(weftComm_t comm, weftTransportStats_t* stats,
                                             int* count);

/* ---- Collectives (blocking when stream is NULL) ----
 * In place: all-reduce, broadcast, reduce: sendbuff == recvbuff. Reduce-scatter:
 * sendbuff + rank*recvcount*size == recvbuff. All-gather: recvbuff + rank*sendcount*size ==
 * sendbuff. */
WEFT_API weftResult_t weftAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                                    weftDataType_t datatype, weftRedOp_t op, weftComm_t comm,
                                    weftStream_t stream);
WEFT_API weftResult_t weftAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                                    weftDataType_t datatype, weftComm_t comm, weftStream_t stream);
WEFT_API weftResult_t weftReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                        weftDataType_t datatype, weftRedOp_t op, weftComm_t comm,
                                        weftStream_t stream);
WEFT_API weftResult_t weftBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                                    weftDataType_t datatype, int root, weftComm_t comm,
                                    weftStream_t stream);
/* recvbuff is used on the root only and may be NULL elsewhere. */
WEFT_API weftResult_t weftReduce(const void* sendbuff, void* recvbuff, size_t count,
                                 weftDataType_t datatype, weftRedOp_t op, int root, weftComm_t comm,
                                 weftStream_t stream);
WEFT_API weftResult_t weftSend(const void* sendbuff, size_t count, weftDataType_t datatype,
                               int peer, weftComm_t comm, weftStream_t stream);
WEFT_API weftResult_t weftRecv(void* recvbuff, size_t count, weftDataType_t datatype, int peer,
                               weftComm_t comm, weftStream_t stream);
/* All-to-all: sendbuff holds nranks blocks of count elements, block j for rank j; recvbuff receives
 * block r of every rank j at block j. In place: sendbuff == recvbuff (the outgoing blocks are
 * staged through scratch memory). */
WEFT_API weftResult_t weftAllToAll(const void* sendbuff, void* recvbuff, size_t count,
                                   weftDataType_t datatype, weftComm_t comm, weftStream_t stream);
/* All-to-all with per-peer counts, as MPI_Alltoallv: each array has nranks entries, in elements.
 * sendcounts[j] elements at sendbuff + sdispls[j] go to rank j, which receives them at
 * recvbuff + rdispls[r] with recvcounts[r] == sendcounts[j] there. Zero counts are allowed; bytes
 * of recvbuff outside every receive range are left untouched. Receive ranges must not overlap;
 * send ranges may (the same data may go to several ranks). Not in place: sendbuff == recvbuff is
 * weftInvalidArgument. A count that differs from the peer's fails the call with weftInvalidUsage
 * on the receiving rank (and the communicator is then unusable, as after any mismatch). */
WEFT_API weftResult_t weftAllToAllv(const void* sendbuff, const size_t sendcounts[],
                                    const size_t sdispls[], void* recvbuff,
                                    const size_t recvcounts[], const size_t rdispls[],
                                    weftDataType_t datatype, weftComm_t comm, weftStream_t stream);
/* Gather: the root's recvbuff receives count elements from every rank, rank q's at q*count.
 * recvbuff is used on the root only and may be NULL elsewhere. In place on the root:
 * sendbuff == recvbuff + root*count*size. */
WEFT_API weftResult_t weftGather(const void* sendbuff, void* recvbuff, size_t count,
                                 weftDataType_t datatype, int root, weftComm_t comm,
                                 weftStream_t stream);
/* Scatter: rank q receives the count elements at q*count of the root's sendbuff. sendbuff is used
 * on the root only and may be NULL elsewhere. In place on the root:
 * recvbuff == sendbuff + root*count*size. */
WEFT_API weftResult_t weftScatter(const void* sendbuff, void* recvbuff, size_t count,
                                  weftDataType_t datatype, int root, weftComm_t comm,
                                  weftStream_t stream);

/* ---- Groups ----
 * Calls between weftGroupStart and weftGroupEnd are queued and run together at weftGroupEnd, so
 * that a send and the matching receive posted by the same rank cannot deadlock. Groups nest; the
 * outermost end runs. */
WEFT_API weftResult_t weftGroupStart(void);
WEFT_API weftResult_t weftGroupEnd(void);

/* ---- Non-blocking forms ----
 * Each returns at once with a request that completes in the background (one progress thread per
 * communicator). Requests of one communicator complete in the order they were posted. The buffers
 * must stay valid until the request completes. A request is freed by weftWait, or by weftTest once
 * it reports done. */
WEFT_API weftResult_t weftIAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                                     weftDataType_t datatype, weftRedOp_t op, weftComm_t comm,
                                     weftStream_t stream, weftRequest_t* request);
WEFT_API weftResult_t weftIAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                                     weftDataType_t datatype, weftComm_t comm, weftStream_t stream,
                                     weftRequest_t* request);
WEFT_API weftResult_t weftIReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                                         weftDataType_t datatype, weftRedOp_t op, weftComm_t comm,
                                         weftStream_t stream, weftRequest_t* request);
WEFT_API weftResult_t weftIBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                                     weftDataType_t datatype, int root, weftComm_t comm,
                                     weftStream_t stream, weftRequest_t* request);
WEFT_API weftResult_t weftIReduce(const void* sendbuff, void* recvbuff, size_t count,
                                  weftDataType_t datatype, weftRedOp_t op, int root,
                                  weftComm_t comm, weftStream_t stream, weftRequest_t* request);
WEFT_API weftResult_t weftISend(const void* sendbuff, size_t count, weftDataType_t datatype,
                                int peer, weftComm_t comm, weftStream_t stream,
                                weftRequest_t* request);
WEFT_API weftResult_t weftIRecv(void* recvbuff, size_t count, weftDataType_t datatype, int peer,
                                weftComm_t comm, weftStream_t stream, weftRequest_t* request);
WEFT_API weftResult_t weftIAllToAll(const void* sendbuff, void* recvbuff, size_t count,
                                    weftDataType_t datatype, weftComm_t comm, weftStream_t stream,
                                    weftRequest_t* request);
/* The count and displacement arrays are copied (here, and by weftAllToAllv inside a group): they
 * may be reused as soon as the call returns. */
WEFT_API weftResult_t weftIAllToAllv(const void* sendbuff, const size_t sendcounts[],
                                     const size_t sdispls[], void* recvbuff,
                                     const size_t recvcounts[], const size_t rdispls[],
                                     weftDataType_t datatype, weftComm_t comm, weftStream_t stream,
                                     weftRequest_t* request);
WEFT_API weftResult_t weftIGather(const void* sendbuff, void* recvbuff, size_t count,
                                  weftDataType_t datatype, int root, weftComm_t comm,
                                  weftStream_t stream, weftRequest_t* request);
WEFT_API weftResult_t weftIScatter(const void* sendbuff, void* recvbuff, size_t count,
                                   weftDataType_t datatype, int root, weftComm_t comm,
                                   weftStream_t stream, weftRequest_t* request);
/* *done is set to 1 when the request has finished (and the request is freed), 0 otherwise. A failed
 * request returns its error and is freed. */
WEFT_API weftResult_t weftTest(weftRequest_t request, int* done);
/* Blocks until the request finishes, frees it and returns its result. */
WEFT_API weftResult_t weftWait(weftRequest_t request);

/* ---- Memory ----
 * weftMemAlloc returns host memory that the other ranks on this host can map (as ncclMemAlloc
 * returns memory that NVLink peers can map): one-sided algorithms then load and store straight
 * into it, with no copy through the kernel. Any other memory works too, one copy at a time
 * (process_vm_readv). Freed with weftMemFree; size 0 gives *ptr = NULL. */
WEFT_API weftResult_t weftMemAlloc(void** ptr, size_t size);
WEFT_API weftResult_t weftMemFree(void* ptr);
/* Registers [buff, buff+size) with the communicator for later calls (NCCL's ncclCommRegister).
 * Buffers from weftMemAlloc are reached by peers directly whether or not they are registered. A
 * call whose buffers all lie in registered weftMemAlloc memory is priced as such by the tuner:
 * one-sided algorithms, which load and store straight in the peers' buffers, from mid sizes on
 * (weftCommGetAlgorithmFor says which). As with NCCL, register a call's buffers on every rank or on
 * none: a call registered on some ranks only fails with weftInvalidUsage. weftCommDestroy
 * releases registrations still held. */
WEFT_API weftResult_t weftCommRegister(const weftComm_t comm, void* buff, size_t size,
                                       void** handle);
WEFT_API weftResult_t weftCommDeregister(const weftComm_t comm, void* handle);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // WEFT_WEFT_H_
