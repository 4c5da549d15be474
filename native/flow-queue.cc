// See flow-queue.h.
#include "flow-queue.h"

#include <algorithm>
#include <cstring>

bool FlowQueue::Push(FlowQueueItem&& it) {
  std::lock_guard<std::mutex> g(mu_);
  if (items_.size() >= kMaxItems || bytes_ + it.bytes.size() > kMaxBytes) return false;
  bytes_ += it.bytes.size();
  items_.push_back(std::move(it));
  return true;
}

std::deque<FlowQueueItem> FlowQueue::TakeAll() {
  std::deque<FlowQueueItem> out;
  std::lock_guard<std::mutex> g(mu_);
  out.swap(items_);
  bytes_ = 0;
  return out;
}

void FlowQueue::Clear() {
  std::lock_guard<std::mutex> g(mu_);
  items_.clear();
  bytes_ = 0;
}

namespace {

void Call(Napi::Env env, napi_value recv, Napi::AsyncContext& ctx, Napi::FunctionReference& f, std::initializer_list<napi_value> args) {
  if (f.IsEmpty()) return;  // a callback before this one closed the path
  f.Value().MakeCallback(recv, args, ctx);
  if (env.IsExceptionPending()) napi_fatal_exception(env, env.GetAndClearPendingException().Value());
}

}  // namespace

void DeliverFlowItems(Napi::Env env, napi_value recv, Napi::AsyncContext& ctx, FlowJsCallbacks& cb, const std::deque<FlowQueueItem>& items,
                      uint32_t head, uint32_t tail) {
  using K = FlowQueueItem;
  size_t tapBytes = 0, tapCount = 0, udpBytes = 0, udpCount = 0;
  for (const K& it : items) {
    if (it.kind == K::kTapRead) { tapBytes += head + it.bytes.size() + tail; tapCount++; }
    else if (it.kind == K::kDatagram) { udpBytes += it.bytes.size(); udpCount++; }
  }
  if (tapCount > 0) {
    Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::New(env, tapBytes);
    Napi::Uint32Array lengths = Napi::Uint32Array::New(env, tapCount);
    size_t off = 0, k = 0;
    for (const K& it : items) {
      if (it.kind != K::kTapRead) continue;
      memset(data.Data() + off, 0, head);
      memcpy(data.Data() + off + head, it.bytes.data(), it.bytes.size());
      off += head + it.bytes.size();
      memset(data.Data() + off, 0, tail);
      off += tail;
      lengths[k++] = static_cast<uint32_t>(it.bytes.size());
    }
    Call(env, recv, ctx, cb.onTap, {env.Null(), data, lengths});
  }
  if (udpCount > 0) {
    Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::New(env, udpBytes);
    Napi::Uint32Array meta = Napi::Uint32Array::New(env, 3 * udpCount);
    Napi::Array hosts = Napi::Array::New(env);
    std::vector<std::string> names;
    size_t off = 0, k = 0;
    for (const K& it : items) {
      if (it.kind != K::kDatagram) continue;
      memcpy(data.Data() + off, it.bytes.data(), it.bytes.size());
      off += it.bytes.size();
      auto h = std::find(names.begin(), names.end(), it.text);
      if (h == names.end()) {
        names.push_back(it.text);
        hosts.Set(static_cast<uint32_t>(names.size() - 1), it.text);
        h = names.end() - 1;
      }
      meta[k++] = static_cast<uint32_t>(it.bytes.size());
      meta[k++] = it.port;
      meta[k++] = static_cast<uint32_t>(h - names.begin());
    }
    Call(env, recv, ctx, cb.onUdp, {data, meta, Napi::Number::New(env, static_cast<double>(udpCount)), hosts});
  }
  for (const K& it : items) {
    if (it.kind == K::kPlain) Call(env, recv, ctx, cb.onPlain, {Napi::Number::New(env, it.edge), Napi::Buffer<uint8_t>::Copy(env, it.bytes.data(), it.bytes.size())});
  }
  for (const K& it : items) {
    if (it.kind == K::kTapError) Call(env, recv, ctx, cb.onTap, {Napi::Error::New(env, "read the TAP: " + it.text).Value()});
  }
}
