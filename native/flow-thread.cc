// The native fast path's I/O thread (IpopConfig/NativeFlows; src/vpn/native-path.ts): while
// started it is the only reader of the TAP fd and of the UDP listener's socket, both lent by
// their owners (Tap.lend, UdpSocket.lend), who keep writing to them and closing them (after
// stop()). Per readiness event:
//   TAP: a plain frame an installed flow takes (unicast IPv4 to its peer, one datagram) is
//        sealed by that flow and sent to the peer's endpoint here; any other read goes to JS
//        as tap.cc delivers it (the callback gets (null, data, lengths) with the same room);
//   UDP: a datagram naming an installed flow's edge, from that edge's endpoint, is opened by
//        the flow: a Frame is written to the TAP here; a Plaintext goes to JS with its edge id
//        (onPlain(edgeId, bytes)); a NotMine datagram goes to JS as udp.cc delivers a batch
//        (onUdp(data, meta, count, hosts)); a Drop is counted in the flow's stats.
// What goes to JS waits in one bounded queue (flow-queue.h) drained on the event loop after a
// uv_async; a full queue drops and counts, the thread never blocks on JS.
//
// The flow table is shared with JS under one mutex: install(spec, host, port), take(edgeId)
// (removes the flow and returns its transport state for the Session), sealTransport(edgeId,
// type, plaintext, now) and openTransport(edgeId, packet, now) (TypeScript's packets on an
// installed flow's edge, sent or reassembled from fragments, use its counter and windows).
// Times are milliseconds on the JS clock (realClock): start() gets its reading, the thread
// adds CLOCK_MONOTONIC's progress to it.
#include "flow-thread.h"

#ifdef __linux__
#include <arpa/inet.h>
#include <napi.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "flow-napi.h"
#include "flow-queue.h"
#include "flow.h"
#include "udp-send.h"  // ParseAddress, SOL_UDP, UDP_GRO

namespace {

constexpr size_t kVnetHdr = 10;
constexpr size_t kReadBuf = kVnetHdr + 65535 + 18;
constexpr int kReadsPerWake = 64;
const uint8_t kZeroHdr[kVnetHdr] = {};

struct Entry {
  std::unique_ptr<Flow> flow;
  sockaddr_storage addr;
  socklen_t alen;
};

double MonoMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

bool SameEndpoint(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    auto x = reinterpret_cast<const sockaddr_in*>(&a), y = reinterpret_cast<const sockaddr_in*>(&b);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  auto x = reinterpret_cast<const sockaddr_in6*>(&a), y = reinterpret_cast<const sockaddr_in6*>(&b);
  return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

// The source as udp.cc formats it: IPv4 (also ::ffff:a.b.c.d) as a.b.c.d.
std::string HostOf(const sockaddr_storage& ss, uint16_t* port) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    auto a = reinterpret_cast<const sockaddr_in*>(&ss);
    *port = ntohs(a->sin_port);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
  } else {
    auto a = reinterpret_cast<const sockaddr_in6*>(&ss);
    *port = ntohs(a->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) inet_ntop(AF_INET, a->sin6_addr.s6_addr + 12, buf, sizeof buf);
    else inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

uint32_t U32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

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

  Entry* ByEdge(uint32_t id) { for (auto& e : flows_) if (e.flow->localEdgeId() == id) return &e; return nullptr; }
  Entry* ByPeer(uint32_t ip) { for (auto& e : flows_) if (e.flow->peerIp() == ip) return &e; return nullptr; }

  // install(spec, host, port): the flow (replacing one of the same edge or peer IP) and the peer's endpoint.
  Napi::Value Install(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    FlowSpec s;
    std::string err;
    Entry e;
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
    std::lock_guard<std::mutex> g(mu_);
    flows_.erase(std::remove_if(flows_.begin(), flows_.end(), [&s](const Entry& x) {
      return x.flow->localEdgeId() == s.localEdgeId || x.flow->peerIp() == s.peerIp;
    }), flows_.end());
    flows_.push_back(std::move(e));
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
      std::lock_guard<std::mutex> g(mu_);
      auto it = std::find_if(flows_.begin(), flows_.end(), [id](const Entry& e) { return e.flow->localEdgeId() == id; });
      if (it == flows_.end()) return env.Undefined();
      it->flow->Export(&x);
      st = it->flow->stats();
      flows_.erase(it);
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
    std::lock_guard<std::mutex> g(mu_);
    Entry* e = ByEdge(info[0].ToNumber().Uint32Value());
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
    std::lock_guard<std::mutex> g(mu_);
    Entry* e = ByEdge(info[0].ToNumber().Uint32Value());
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
    std::lock_guard<std::mutex> g(mu_);
    Entry* e = ByEdge(info[0].ToNumber().Uint32Value());
    if (e == nullptr) return env.Undefined();
    Napi::Object o = StatsObject(env, e->flow->stats());
    o.Set("sendEpoch", e->flow->sendEpoch());
    o.Set("sendCounter", static_cast<double>(e->flow->sendCounter()));
    return o;
  }

  Napi::Value Counters(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    const char* keys[] = {"tapReads", "tapSealed", "udpReads", "tapWrites", "toJs", "queueDrops", "sendErrors", "tapWriteErrors"};
    for (int i = 0; i < 8; i++) o.Set(keys[i], static_cast<double>(counters_[i].load()));
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
    offset_ = info[5].ToNumber().DoubleValue() - MonoMs();
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
    thread_ = std::thread([this] { Run(); });
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
    queue_.Clear();
  }

  void Enqueue(FlowQueueItem&& it) {
    if (!queue_.Push(std::move(it))) { counters_[5]++; return; }
    counters_[4]++;
    uv_async_send(async_);
  }

  void Run() {
    FlowAead aead;
    std::vector<uint8_t> buf(kReadBuf), out(kReadBuf + kFlowOverhead);
    struct pollfd fds[3] = {{tap_, POLLIN, 0}, {udp_, POLLIN, 0}, {stop_, POLLIN, 0}};
    for (;;) {
      if (poll(fds, 3, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[2].revents) return;
      if ((fds[0].revents | fds[1].revents) & POLLNVAL) return;  // an owner closed its fd under us
      if ((fds[0].revents & (POLLIN | POLLERR)) && !ReadTap(aead, buf, out)) fds[0].fd = -1;  // poll() skips it from now on
      if (fds[1].revents & (POLLIN | POLLERR)) ReadUdp(aead, buf);
    }
  }

  // False after a read error other than EAGAIN (the interface was deleted): it goes to JS as
  // tap.cc reports it (the TapDevice closes), and the TAP is not polled again.
  bool ReadTap(FlowAead& aead, std::vector<uint8_t>& buf, std::vector<uint8_t>& out) {
    for (int i = 0; i < kReadsPerWake; i++) {
      ssize_t r = read(tap_, buf.data(), buf.size());
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        const int err = errno;
        FlowQueueItem it{FlowQueueItem::kTapError, 0, 0, std::string(), {}};
        it.text = err == EBADF || err == EBADFD ? "the interface was deleted" : strerror(err);
        Enqueue(std::move(it));
        return false;
      }
      if (r <= 0) return true;
      counters_[0]++;
      const size_t h = vnet_ ? kVnetHdr : 0;
      // offload.ts isPlainVnet: no GSO and no checksum left to fill in.
      const bool plain = !vnet_ || (static_cast<size_t>(r) > h && (buf[0] & ~2u) == 0 && buf[1] == 0);
      bool sent = false;
      if (plain && static_cast<size_t>(r) >= h + 34) {
        const uint8_t* f = buf.data() + h;
        const size_t fl = static_cast<size_t>(r) - h;
        std::lock_guard<std::mutex> g(mu_);
        Entry* e = ByPeer(U32(f + 14 + 16));
        if (e != nullptr && e->flow->Takes(f, fl)) {
          const size_t n = e->flow->Seal(aead, f, fl, offset_ + MonoMs(), out.data());
          if (n > 0) {
            sent = true;
            counters_[1]++;
            if (sendto(udp_, out.data(), n, 0, reinterpret_cast<sockaddr*>(&e->addr), e->alen) != static_cast<ssize_t>(n)) counters_[6]++;
          }
        }
      }
      if (!sent) Enqueue({FlowQueueItem::kTapRead, 0, 0, std::string(), std::vector<uint8_t>(buf.data(), buf.data() + r)});
    }
    return true;
  }

  void ReadUdp(FlowAead& aead, std::vector<uint8_t>& buf) {
    for (int i = 0; i < kReadsPerWake; i++) {
      sockaddr_storage from;
      socklen_t flen = sizeof from;
      uint8_t* d = buf.data() + kVnetHdr;  // room for the TAP's header in front of a delivered frame
      ssize_t r = recvfrom(udp_, d, buf.size() - kVnetHdr, 0, reinterpret_cast<sockaddr*>(&from), &flen);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return;
      counters_[2]++;
      const size_t len = static_cast<size_t>(r);
      FlowVerdict v = FlowVerdict::kNotMine;
      uint8_t* p = nullptr;
      size_t pl = 0;
      uint32_t edge = 0;
      if (len >= 10) {
        std::lock_guard<std::mutex> g(mu_);
        edge = U32(d + 6);
        Entry* e = ByEdge(edge);
        // udp.ts: a datagram for an edge counts only from that edge's endpoint.
        if (e != nullptr && SameEndpoint(from, e->addr)) v = e->flow->Open(aead, d, len, offset_ + MonoMs(), &p, &pl);
      }
      if (v == FlowVerdict::kFrame) {
        struct iovec iov[2] = {{const_cast<uint8_t*>(kZeroHdr), kVnetHdr}, {p, pl}};
        const ssize_t want = static_cast<ssize_t>(pl + (vnet_ ? kVnetHdr : 0));
        if (writev(tap_, vnet_ ? iov : iov + 1, vnet_ ? 2 : 1) == want) counters_[3]++;
        else counters_[7]++;
      } else if (v == FlowVerdict::kPlaintext) {
        Enqueue({FlowQueueItem::kPlain, edge, 0, std::string(), std::vector<uint8_t>(p, p + pl)});
      } else if (v == FlowVerdict::kNotMine) {
        FlowQueueItem it{FlowQueueItem::kDatagram, 0, 0, std::string(), std::vector<uint8_t>(d, d + len)};
        it.text = HostOf(from, &it.port);
        Enqueue(std::move(it));
      }
    }
  }

  // On the event loop: everything queued, to the callbacks (flow-queue.cc).
  void Drain() {
    std::deque<FlowQueueItem> items = queue_.TakeAll();
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
  std::mutex mu_;  // flows_
  std::vector<Entry> flows_;
  FlowAead jsAead_;  // sealTransport's, on the JS thread (under mu_)
  FlowQueue queue_;
  // tapReads, tapSealed, udpReads, tapWrites, toJs, queueDrops, sendErrors, tapWriteErrors
  std::atomic<uint64_t> counters_[8] = {};
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
