// The native fast path's I/O thread (IpopConfig/NativeFlows; src/vpn/native-path.ts) as a JS
// class: while started, its thread (FlowIo::Run, flow-io.cc) is the only reader of the TAP fd
// and of the UDP listener's socket, both lent by their owners (Tap.lend, UdpSocket.lend), who
// keep writing to them and closing them (after stop()). Installed flows seal the TAP's frames
// and open their datagrams there; everything else reaches JS as tap.cc and udp.cc deliver it:
// TAP reads as (null, data, lengths) with the same room, datagrams as onUdp(data, meta, count,
// hosts), plaintexts of a flow's edge as onPlain(edgeId, bytes). What goes to JS waits in one
// bounded queue (flow-queue.h) drained on the event loop after a uv_async.
//
// The flow table is shared with JS under one mutex: install(spec, host, port), take(edgeId)
// (removes the flow and returns its transport state for the Session), sealTransport(edgeId,
// type, plaintext, now) and openTransport(edgeId, packet, now) (TypeScript's packets on an
// installed flow's edge, sent or reassembled from fragments, use its counter and windows).
// Times are milliseconds on the JS clock (realClock): start() gets its reading, the thread
// adds CLOCK_MONOTONIC's progress to it.
#include "flow-thread.h"

#ifdef __linux__
#include <napi.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "flow-io.h"
#include "flow-napi.h"
#include "flow-queue.h"
#include "flow.h"
#include "udp-send.h"  // ParseAddress, SOL_UDP, UDP_GRO

namespace {

class FlowThread : public Napi::ObjectWrap<FlowThread> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FlowThread", {
      InstanceMethod("install", &FlowThread::Install),
      InstanceMethod("take", &FlowThread::Take),
      InstanceMethod("sealTransport", &FlowThread::SealTransport),
      InstanceMethod("openTransport", &FlowThread::OpenTransport),
      InstanceMethod("stats", &FlowThread::Stats),
      InstanceMethod("start", &FlowThread::Start),
      InstanceMethod("stop", &FlowThread::Stop),
      InstanceMethod("counters", &FlowThread::Counters),
    });
  }

  // new FlowThread(ipv6): ipv6 says the UDP socket is AF_INET6 (peers as ::ffff:a.b.c.d).
  explicit FlowThread(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FlowThread>(info), env_(info.Env()) {
    v6_ = info.Length() > 0 && info[0].ToBoolean().Value();
    napi_add_env_cleanup_hook(env_, &FlowThread::OnEnvExit, this);
  }
  ~FlowThread() override {
    Shutdown();
    napi_remove_env_cleanup_hook(env_, &FlowThread::OnEnvExit, this);
  }

 private:
  static void OnEnvExit(void* self) { static_cast<FlowThread*>(self)->Shutdown(); }

  // install(spec, host, port): the flow (replacing one of the same edge or peer IP) and the peer's endpoint.
  Napi::Value Install(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    FlowSpec s;
    std::string err;
    FlowEntry e;
    std::string host = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    const double port = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1;
    if (!info[0].IsObject() || !ParseFlowSpec(info[0].As<Napi::Object>(), &s, &err)) {
      Napi::TypeError::New(env, "install(spec, host, port): " + (err.empty() ? std::string("spec must be an object") : err)).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!(port >= 1 && port <= 65535) || !ParseAddress(host.c_str(), static_cast<uint16_t>(port), v6_, &e.addr, &e.alen)) {
      FlowWipe(s.sendKey, kFlowKeyLen);
      FlowWipe(s.recvKey, kFlowKeyLen);
      Napi::TypeError::New(env, "install(spec, host, port): not an IP address and port: " + host).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    e.flow = std::make_unique<Flow>(s);
    FlowWipe(s.sendKey, kFlowKeyLen);
    FlowWipe(s.recvKey, kFlowKeyLen);
    std::lock_guard<std::mutex> g(io_.mu);
    io_.flows.erase(std::remove_if(io_.flows.begin(), io_.flows.end(), [&s](const FlowEntry& x) {
      return x.flow->localEdgeId() == s.localEdgeId || x.flow->peerIp() == s.peerIp;
    }), io_.flows.end());
    io_.flows.push_back(std::move(e));
    return env.Undefined();
  }

  static Napi::Object Epoch(Napi::Env env, const FlowRecvEpoch& r) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("epoch", r.epoch);
    o.Set("key", Napi::Buffer<uint8_t>::Copy(env, r.key, kFlowKeyLen));
    o.Set("expiresAt", r.expiresAt);
    Napi::Object w = Napi::Object::New(env);
    w.Set("top", static_cast<double>(r.window.top));
    Napi::Uint32Array bits = Napi::Uint32Array::New(env, kFlowReplayWindow / 32);
    memcpy(bits.Data(), r.window.bits, sizeof r.window.bits);
    w.Set("bits", bits);
    o.Set("window", w);
    return o;
  }

  // take(edgeId) → the removed flow's transport state (FlowExport as JS), or undefined.
  Napi::Value Take(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const uint32_t id = info[0].ToNumber().Uint32Value();
    FlowExport x;
    FlowStats st;
    {
      std::lock_guard<std::mutex> g(io_.mu);
      auto it = std::find_if(io_.flows.begin(), io_.flows.end(), [id](const FlowEntry& e) { return e.flow->localEdgeId() == id; });
      if (it == io_.flows.end()) return env.Undefined();
      it->flow->Export(&x);
      st = it->flow->stats();
      io_.flows.erase(it);
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("sendKey", Napi::Buffer<uint8_t>::Copy(env, x.sendKey, kFlowKeyLen));
    o.Set("sendEpoch", x.sendEpoch);
    o.Set("sendCounter", static_cast<double>(x.sendCounter));
    o.Set("sendEpochStart", x.sendEpochStart);
    o.Set("cur", Epoch(env, x.cur));
    if (x.prev.valid) o.Set("prev", Epoch(env, x.prev));
    o.Set("stats", StatsObject(env, st));
    FlowWipe(x.sendKey, kFlowKeyLen);
    FlowWipe(x.cur.key, kFlowKeyLen);
    FlowWipe(x.prev.key, kFlowKeyLen);
    return o;
  }

  // sealTransport(edgeId, type, plaintext, now) → the transport packet (a new Buffer), or null without a flow.
  Napi::Value SealTransport(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !info[2].IsTypedArray() || !info[3].IsNumber()) {
      Napi::TypeError::New(env, "sealTransport(edgeId, type, plaintext, now)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::TypedArray t = info[2].As<Napi::TypedArray>();
    const uint8_t* pt = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    const size_t len = t.ByteLength();
    std::lock_guard<std::mutex> g(io_.mu);
    FlowEntry* e = io_.ByEdge(info[0].ToNumber().Uint32Value());
    if (e == nullptr) return env.Null();
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::New(env, len + kFlowDataHeader + kFlowTagLen);
    const size_t n = e->flow->SealTransport(jsAead_, static_cast<uint8_t>(info[1].ToNumber().Uint32Value()), pt, len, info[3].As<Napi::Number>().DoubleValue(), out.Data());
    if (n == 0) return env.Null();
    return out;
  }

  // openTransport(edgeId, packet, now) → the plaintext (a new Buffer), or null (no flow, or refused and counted).
  Napi::Value OpenTransport(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[1].IsTypedArray() || !info[2].IsNumber()) {
      Napi::TypeError::New(env, "openTransport(edgeId, packet, now)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::TypedArray t = info[1].As<Napi::TypedArray>();
    const uint8_t* src = static_cast<uint8_t*>(t.ArrayBuffer().Data()) + t.ByteOffset();
    std::vector<uint8_t> d(src, src + t.ByteLength());  // the caller's bytes stay as they were
    uint8_t* p = nullptr;
    size_t pl = 0;
    std::lock_guard<std::mutex> g(io_.mu);
    FlowEntry* e = io_.ByEdge(info[0].ToNumber().Uint32Value());
    if (e == nullptr || e->flow->OpenTransport(jsAead_, d.data(), d.size(), info[2].As<Napi::Number>().DoubleValue(), &p, &pl) != FlowVerdict::kPlaintext) return env.Null();
    return Napi::Buffer<uint8_t>::Copy(env, p, pl);
  }

  static Napi::Object StatsObject(Napi::Env env, const FlowStats& s) {
    Napi::Object o = Napi::Object::New(env);
    const std::pair<const char*, uint64_t> kv[] = {
        {"sealed", s.sealed}, {"opened", s.opened}, {"frames", s.frames}, {"plaintexts", s.plaintexts}, {"decryptFailures", s.decryptFailures},
        {"replays", s.replays}, {"tooOld", s.tooOld}, {"badEpoch", s.badEpoch}, {"malformed", s.malformed}, {"rekeys", s.rekeys},
        {"confirms", s.confirms}, {"frameBytes", s.frameBytes}, {"sealedBytes", s.sealedBytes}};
    for (const auto& [k, v] : kv) o.Set(k, static_cast<double>(v));
    return o;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::lock_guard<std::mutex> g(io_.mu);
    FlowEntry* e = io_.ByEdge(info[0].ToNumber().Uint32Value());
    if (e == nullptr) return env.Undefined();
    Napi::Object o = StatsObject(env, e->flow->stats());
    o.Set("sendEpoch", e->flow->sendEpoch());
    o.Set("sendCounter", static_cast<double>(e->flow->sendCounter()));
    return o;
  }

  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    const char* keys[FlowIo::kCounters] = {"tapReads", "tapSealed", "udpReads", "tapWrites", "toJs", "queueDrops", "sendErrors", "tapWriteErrors"};
    for (int i = 0; i < FlowIo::kCounters; i++) o.Set(keys[i], static_cast<double>(io_.counters[i].load()));
    return o;
  }

  // start(tapFd, vnet, head, tail, udpFd, now, onTap, onUdp, onPlain)
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 9 || !info[6].IsFunction() || !info[7].IsFunction() || !info[8].IsFunction()) {
      Napi::TypeError::New(env, "start(tapFd, vnet, head, tail, udpFd, now, onTap, onUdp, onPlain)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (thread_.joinable() || stopped_) {
      Napi::Error::New(env, "flow thread: already started").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    tap_ = info[0].ToNumber().Int32Value();
    vnet_ = info[1].ToBoolean().Value();
    head_ = info[2].ToNumber().Uint32Value();
    tail_ = info[3].ToNumber().Uint32Value();
    udp_ = info[4].ToNumber().Int32Value();
    offset_ = info[5].ToNumber().DoubleValue() - FlowMonoMs();
    uv_loop_t* loop = nullptr;
    if (tap_ < 0 || udp_ < 0 || head_ > 256 || tail_ > 256 || napi_get_uv_event_loop(env, &loop) != napi_ok) {
      Napi::Error::New(env, "flow thread: bad descriptors or room").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    stop_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_ < 0) {
      Napi::Error::New(env, std::string("flow thread: eventfd: ") + strerror(errno)).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    // The thread reads one datagram per recvfrom: GRO would merge them (udp.cc splits them; this does not).
    int off = 0;
    (void)setsockopt(udp_, SOL_UDP, UDP_GRO, &off, sizeof off);
    cb_.onTap = Napi::Persistent(info[6].As<Napi::Function>());
    cb_.onUdp = Napi::Persistent(info[7].As<Napi::Function>());
    cb_.onPlain = Napi::Persistent(info[8].As<Napi::Function>());
    async_ = new uv_async_t;
    async_->data = this;
    uv_async_init(loop, async_, [](uv_async_t* a) { static_cast<FlowThread*>(a->data)->Drain(); });
    ctx_ = std::make_unique<Napi::AsyncContext>(env, "FlowThread");
    Ref();  // the thread's callbacks need this object alive until stop()
    FlowIo::Lent lent;
    lent.tap = tap_;
    lent.udp = udp_;
    lent.stop = stop_;
    lent.vnet = vnet_;
    lent.offset = offset_;
    lent.wake = async_;
    thread_ = std::thread([this, lent] { io_.Run(lent); });
    return env.Undefined();
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    const bool wasRunning = thread_.joinable();
    Shutdown();
    if (wasRunning) Unref();
    return info.Env().Undefined();
  }

  // Joins the thread and releases what start() took; the fds stay their owners'. Idempotent.
  void Shutdown() {
    if (thread_.joinable()) {
      uint64_t one = 1;
      (void)!write(stop_, &one, sizeof one);
      thread_.join();
    }
    stopped_ = stopped_ || stop_ >= 0;
    if (stop_ >= 0) close(stop_);
    stop_ = -1;
    if (async_ != nullptr) {
      uv_close(reinterpret_cast<uv_handle_t*>(async_), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
      async_ = nullptr;
    }
    cb_.Reset();
    io_.queue.Clear();
  }

  // On the event loop: everything queued, to the callbacks (flow-queue.cc).
  void Drain() {
    std::deque<FlowQueueItem> items = io_.queue.TakeAll();
    if (items.empty() || cb_.onTap.IsEmpty()) return;
    Napi::Env env(env_);
    Napi::HandleScope scope(env);
    DeliverFlowItems(env, Value(), *ctx_, cb_, items, head_, tail_);
  }

  napi_env env_;
  bool v6_ = false, vnet_ = false, stopped_ = false;
  int tap_ = -1, udp_ = -1, stop_ = -1;
  uint32_t head_ = 0, tail_ = 0;
  double offset_ = 0;
  FlowIo io_;          // the flow table (under io_.mu), the queue and the counters
  FlowAead jsAead_;    // sealTransport's, on the JS thread (under io_.mu)
  uv_async_t* async_ = nullptr;
  std::unique_ptr<Napi::AsyncContext> ctx_;
  FlowJsCallbacks cb_;
  std::thread thread_;
};

}  // namespace

Napi::Object InitFlowThread(Napi::Env env, Napi::Object exports) {
  exports.Set("FlowThread", FlowThread::Define(env));
  return exports;
}

#else

Napi::Object InitFlowThread(Napi::Env, Napi::Object exports) { return exports; }

#endif
