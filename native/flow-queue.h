// The flow thread's way to JS (flow-thread.cc): a bounded queue of what the thread does not
// handle itself, filled on the thread (a full queue drops, never blocks), emptied on the event
// loop, and the delivery of one drained batch to the JS callbacks in the formats they get
// without the thread: TAP reads as tap.cc delivers them ((null, data, lengths), with the
// TapDevice's room around each frame), datagrams as udp.cc does ((data, meta, count, hosts)),
// and plaintexts with their edge id ((edgeId, bytes)).
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <mutex>
#include <string>
#include <vector>

struct FlowQueueItem {
  enum Kind : uint8_t { kTapRead, kDatagram, kPlain, kTapError } kind;
  uint32_t edge = 0;             // kPlain: the local edge id
  uint16_t port = 0;             // kDatagram: the source port
  std::string text;              // kDatagram: the source host; kTapError: the reason
  std::vector<uint8_t> bytes;    // the read, the datagram or the plaintext
};

class FlowQueue {
 public:
  static constexpr size_t kMaxItems = 4096, kMaxBytes = 16u << 20;
  // On the thread: false when the queue is full (the item is dropped).
  bool Push(FlowQueueItem&& it);
  // On the event loop: everything queued, in order.
  std::deque<FlowQueueItem> TakeAll();
  void Clear();

 private:
  std::mutex mu_;
  std::deque<FlowQueueItem> items_;
  size_t bytes_ = 0;
};

struct FlowJsCallbacks {
  Napi::FunctionReference onTap, onUdp, onPlain;
  void Reset() { onTap.Reset(); onUdp.Reset(); onPlain.Reset(); }
};

// Hands a drained batch to the callbacks (recv: the receiver object of MakeCallback); head and
// tail: the room left around each TAP frame. An exception from a callback becomes uncaught.
void DeliverFlowItems(Napi::Env env, napi_value recv, Napi::AsyncContext& ctx, FlowJsCallbacks& cb, const std::deque<FlowQueueItem>& items,
                      uint32_t head, uint32_t tail);
