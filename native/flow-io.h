// The flow thread's I/O loop and flow table (flow-io.cc), without N-API: FlowThread
// (flow-thread.cc) owns one, starts Run() on its thread and reaches the table under `mu`.
#pragma once
#ifdef __linux__
#include <sys/socket.h>
#include <uv.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "flow-queue.h"
#include "flow.h"

// An installed flow and its peer's endpoint.
struct FlowEntry {
  std::unique_ptr<Flow> flow;
  sockaddr_storage addr;
  socklen_t alen;
};

// CLOCK_MONOTONIC in milliseconds.
double FlowMonoMs();

class FlowIo {
 public:
  enum Counter { kTapReads, kTapSealed, kUdpReads, kTapWrites, kToJs, kQueueDrops, kSendErrors, kTapWriteErrors, kCounters };

  // The descriptors lent for one run (the fds stay their owners'); offset: the JS clock's reading
  // minus FlowMonoMs() at start; wake: signalled after each item queued for JS.
  struct Lent {
    int tap = -1, udp = -1, stop = -1;
    bool vnet = false;
    double offset = 0;
    uv_async_t* wake = nullptr;
  };

  // The thread body: returns when `stop` becomes readable or an owner closes its fd.
  void Run(const Lent& lent);

  FlowEntry* ByEdge(uint32_t id);
  FlowEntry* ByPeer(uint32_t ip);

  std::mutex mu;  // flows
  std::vector<FlowEntry> flows;
  FlowQueue queue;
  std::atomic<uint64_t> counters[kCounters] = {};

 private:
  bool ReadTap(FlowAead& aead, std::vector<uint8_t>& buf, std::vector<uint8_t>& out);
  void ReadUdp(FlowAead& aead, std::vector<uint8_t>& buf);
  void Enqueue(FlowQueueItem&& it);

  Lent lent_;
};
#endif
