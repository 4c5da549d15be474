// Batched UDP socket for the UDP edge listener's fast path (src/transport/udp-batch.ts).
// The fd is owned here and polled on the node event loop (uv_poll, no threads). On each
// readiness event up to kBatch datagrams are taken with one recvmmsg and handed to JS in ONE
// callback: a Buffer with all payloads back to back, a Uint32Array of (length, port, host
// index) triples and the distinct source hosts as strings. With UDP_GRO the kernel may hand
// over several same-sized datagrams from one source as one buffer; they are split (udp-recv.cc,
// by the gso_size the kernel reports) so JS sees exactly the datagrams that were sent.
// Nothing here parses datagram contents: the bytes go to the TypeScript parsers unchanged.
//
// Sending takes a whole turn's datagrams in one call and writes them with sendmmsg. With
// UDP_SEGMENT (GSO), consecutive datagrams to the same destination of the same size (the
// last may be shorter) go out as one message that the kernel segments; a run the kernel
// refuses is sent datagram by datagram (udp-send.cc). When
// the socket buffer is full (EAGAIN) the unsent datagrams are copied into a bounded queue
// and written when the socket becomes writable, as libuv does for node:dgram.
#include "udp.h"

#ifdef __linux__
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "udp-recv.h"
#include "udp-send.h"

namespace {

constexpr int kBatch = BatchReceiver::kBatch;
constexpr int kRounds = 32;                // reads per readiness event at most

std::string ErrnoCode(int e) {
  switch (e) {
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    default: return "E" + std::to_string(e);
  }
}

class UdpSocket : public Napi::ObjectWrap<UdpSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "UdpSocket", {
      InstanceMethod("bind", &UdpSocket::Bind),
      InstanceMethod("setBuffers", &UdpSocket::SetBuffers),
      InstanceMethod("offloads", &UdpSocket::Offloads),
      InstanceMethod("start", &UdpSocket::Start),
      InstanceMethod("lend", &UdpSocket::Lend),
      InstanceMethod("send", &UdpSocket::Send),
      InstanceMethod("stats", &UdpSocket::Stats),
      InstanceMethod("close", &UdpSocket::Close),
    });
  }

  // new UdpSocket(ipv6, offload): offload asks for UDP_GRO and UDP_SEGMENT where the kernel has them.
  explicit UdpSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UdpSocket>(info), env_(info.Env()) {
    if (info.Length() < 2 || !info[0].IsBoolean() || !info[1].IsBoolean()) {
      Napi::TypeError::New(env_, "UdpSocket(ipv6, offload): two booleans").ThrowAsJavaScriptException();
      return;
    }
    v6_ = info[0].As<Napi::Boolean>().Value();
    int fd = socket(v6_ ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      Napi::Error::New(env_, std::string("udp socket: ") + strerror(errno)).ThrowAsJavaScriptException();
      return;
    }
    if (v6_) {
      int off = 0;  // dual stack, as node:dgram's udp6
      (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
    if (info[1].As<Napi::Boolean>().Value()) {
      int on = 1;
      recv_.gro = setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
      int probe = 0;
      socklen_t len = sizeof probe;
      sender_.gso = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &probe, &len) == 0;  // the option exists
    }
    fd_ = fd;
    sender_.fd = fd;
    napi_add_env_cleanup_hook(env_, &UdpSocket::OnEnvExit, this);
  }

  ~UdpSocket() override { Shutdown(); }

 private:
  bool Open(Napi::Env env) {
    if (fd_ >= 0) return true;
    Napi::Error::New(env, "udp socket is closed").ThrowAsJavaScriptException();
    return false;
  }

  // bind(host, port) -> the bound port. Errors carry the errno name in .code (EADDRINUSE).
  Napi::Value Bind(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString() || !info[1].IsNumber()) {
      Napi::TypeError::New(env, "bind(host, port): a string and a number").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!Open(env)) return env.Undefined();
    std::string host = info[0].As<Napi::String>();
    const int port = info[1].As<Napi::Number>().Int32Value();
    sockaddr_storage ss;
    socklen_t len;
    if (port < 0 || port > 65535 || !ParseAddress(host.c_str(), static_cast<uint16_t>(port), v6_, &ss, &len)) {
      Napi::Error e = Napi::Error::New(env, "invalid bind address " + host + ":" + std::to_string(port));
      e.Set("code", "EINVAL");
      e.ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) < 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) < 0) {
      int err = errno;
      Napi::Error e = Napi::Error::New(env, std::string("bind ") + host + ":" + std::to_string(port) + ": " + strerror(err));
      e.Set("code", ErrnoCode(err));
      e.ThrowAsJavaScriptException();
      return env.Undefined();
    }
    const uint16_t bound = ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                                    : reinterpret_cast<sockaddr_in*>(&ss)->sin_port;
    return Napi::Number::New(env, ntohs(bound));
  }

  Napi::Value SetBuffers(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsNumber()) {
      Napi::TypeError::New(env, "setBuffers(bytes): a number").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!Open(env)) return env.Undefined();
    int size = info[0].As<Napi::Number>().Int32Value();
    (void)setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);  // capped by net.core.rmem_max
    (void)setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    return env.Undefined();
  }

  // offloads() -> { gro, gso }: what the kernel granted (gso turns false if a send is refused).
  Napi::Value Offloads(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("gro", recv_.gro);
    o.Set("gso", sender_.gso);
    return o;
  }

  // start(onBatch): onBatch(data: Buffer, meta: Uint32Array, count, hosts: string[]) per batch:
  // the datagrams lie back to back in data; meta's first 3 * count entries (length, port,
  // host index) are valid during the call only.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsFunction()) {
      Napi::TypeError::New(env, "start(callback): callback must be a function").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!Open(env)) return env.Undefined();
    if (poll_ != nullptr) {
      Napi::Error::New(env, "udp socket already started").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
      Napi::Error::New(env, "udp socket: cannot start reading").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    poll_ = new uv_poll_t;
    poll_->data = this;
    int rc = uv_poll_init(loop, poll_, fd_);
    if (rc == 0) rc = uv_poll_start(poll_, UV_READABLE, &UdpSocket::OnPoll);
    if (rc != 0) {
      StopPoll();
      Napi::Error::New(env, std::string("udp socket: uv_poll: ") + uv_strerror(rc)).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    onRead_ = Napi::Persistent(info[0].As<Napi::Function>());
    meta_ = Napi::Persistent(Napi::Uint32Array::New(env, 3 * kBatch * BatchReceiver::kMaxSegments));
    if (!async_) async_ = std::make_unique<Napi::AsyncContext>(env, "UdpSocket");
    if (!referenced_) Ref();
    referenced_ = true;
    return env.Undefined();
  }

  // lend() → the fd, for a thread that becomes its only reader (flow-thread.cc): reading here
  // stops for good; sends (and their EAGAIN queue) and close() stay here.
  Napi::Value Lend(const Napi::CallbackInfo& info) {
    reading_ = false;
    watchingWritable_ = !sender_.Pending();  // forces WatchWritable to re-arm
    WatchWritable();
    return Napi::Number::New(info.Env(), fd_);
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<UdpSocket*>(handle->data);
    if (status < 0) {
      // libuv stops the handle on POLLERR: clear the socket's pending error and watch again,
      // or the socket would never be read from again.
      self->pollErrors_++;
      int err = 0;
      socklen_t len = sizeof err;
      if (self->fd_ >= 0) getsockopt(self->fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (self->poll_ != nullptr) self->Arm();
      return;
    }
    if (events & UV_WRITABLE) self->Drain();
    // Like libuv's UDP reads (up to 32 per event): read again while batches come full or the
    // callback sent something, which on loopback may have been answered already.
    for (int round = 0; round < kRounds && (events & UV_READABLE) && self->reading_ && self->poll_ != nullptr; round++) {
      const uint64_t sends = BatchSender::processCalls;
      const int n = self->ReadBatch();
      if (n <= 0 || (n < kBatch && BatchSender::processCalls == sends)) break;
    }
  }

  // One recvmmsg and one callback; returns how many messages were read (0 when none, -1 on error).
  int ReadBatch() {
    const int n = recv_.Receive(fd_);
    const std::vector<uint32_t>& triples = recv_.Triples();
    if (n <= 0 || triples.empty()) return n;
    Napi::Env env(env_);
    Napi::HandleScope scope(env);
    // One Buffer per batch, exactly its size: a receiver that keeps a payload keeps that
    // batch's bytes, no more (a shared slab was cheaper, but a kept 100-byte value pinned 64 KB).
    const size_t total = recv_.Bytes();
    Napi::Buffer<uint8_t> data = Napi::Buffer<uint8_t>::New(env, total > 0 ? total : 1);
    recv_.CopyTo(data.Data());
    Napi::Uint32Array meta = meta_.Value();  // reused: JS reads it during the callback only
    memcpy(meta.Data(), triples.data(), triples.size() * sizeof(uint32_t));
    const std::vector<std::string>& hosts = recv_.Hosts();
    Napi::Array names = Napi::Array::New(env, hosts.size());
    for (uint32_t i = 0; i < hosts.size(); i++) names.Set(i, Napi::String::New(env, hosts[i]));
    if (onRead_.IsEmpty()) return n;
    onRead_.Value().MakeCallback(Value(), {data, meta, Napi::Number::New(env, static_cast<double>(triples.size() / 3)), names}, *async_);
    if (env.IsExceptionPending()) napi_fatal_exception(env, env.GetAndClearPendingException().Value());
    return n;
  }

  // send(bytes, meta, count, hosts): datagram i is bytes[meta[4i], +meta[4i+1]) to
  // hosts[meta[4i+2]], port meta[4i+3]. Returns how many failed (bad address, refused, queue full).
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !info[0].IsTypedArray() || !info[1].IsTypedArray() || !info[2].IsNumber() || !info[3].IsArray()) {
      Napi::TypeError::New(env, "send(bytes, meta, count, hosts): bad arguments").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!Open(env)) return env.Undefined();
    const iovec bytes = View(info[0]);
    const iovec metaView = View(info[1]);
    const uint32_t* meta = static_cast<const uint32_t*>(metaView.iov_base);
    Napi::Array names = info[3].As<Napi::Array>();
    const uint32_t hostCount = names.Length();
    uint32_t n = info[2].As<Napi::Number>().Uint32Value();
    if (static_cast<size_t>(n) * 4 * sizeof(uint32_t) > metaView.iov_len) n = static_cast<uint32_t>(metaView.iov_len / (4 * sizeof(uint32_t)));
    std::vector<sockaddr_storage>& addrs = addrs_;
    std::vector<socklen_t>& alens = alens_;  // 0: not a valid IP
    addrs.resize(hostCount);
    alens.assign(hostCount, 0);
    char host[64];
    for (uint32_t h = 0; h < hostCount; h++) {
      Napi::Value v = names.Get(h);
      size_t hl = 0;
      if (v.IsString() && napi_get_value_string_utf8(env, v, host, sizeof host, &hl) == napi_ok && hl < sizeof host - 1 &&
          ParseAddress(host, 0, v6_, &addrs[h], &alens[h])) continue;
      alens[h] = 0;
    }
    std::vector<Datagram>& out = out_;
    std::vector<sockaddr_storage>& dests = dests_;  // per (host, port) run
    out.clear();
    dests.clear();
    out.reserve(n);
    dests.reserve(n);
    uint32_t failed = 0, lastH = UINT32_MAX, lastPort = UINT32_MAX;  // the destination of out.back()
    for (uint32_t i = 0; i < n; i++) {
      const uint32_t off = meta[4 * i], len = meta[4 * i + 1], h = meta[4 * i + 2], port = meta[4 * i + 3];
      if (h >= hostCount || alens[h] == 0 || port > 65535 || static_cast<size_t>(off) + len > bytes.iov_len) {
        failed++;
        continue;
      }
      const uint16_t nport = htons(static_cast<uint16_t>(port));
      if (h != lastH || port != lastPort) {  // dests has room for n: pointers into it stay valid
        lastH = h;
        lastPort = port;
        dests.push_back(addrs[h]);
        if (dests.back().ss_family == AF_INET6) reinterpret_cast<sockaddr_in6*>(&dests.back())->sin6_port = nport;
        else reinterpret_cast<sockaddr_in*>(&dests.back())->sin_port = nport;
      }
      out.push_back({&dests.back(), alens[h], {{static_cast<uint8_t*>(bytes.iov_base) + off, len}, {nullptr, 0}}});
    }
    failed += sender_.Send(out.data(), out.size());
    WatchWritable();
    return Napi::Number::New(env, failed);
  }

  iovec View(Napi::Value v) {
    void* data = nullptr;  // already offset to the view's first byte
    napi_get_typedarray_info(env_, v, nullptr, nullptr, &data, nullptr, nullptr);
    return {data, v.As<Napi::TypedArray>().ByteLength()};
  }

  // Datagrams left over from EAGAIN go out when the socket is writable again.
  void Drain() {
    sender_.Drain();
    WatchWritable();
  }

  void WatchWritable() {
    if (poll_ == nullptr) return;
    const bool want = sender_.Pending();
    if (want == watchingWritable_) return;
    watchingWritable_ = want;
    Arm();
  }

  void Arm() {
    const int events = (reading_ ? UV_READABLE : 0) | (watchingWritable_ ? UV_WRITABLE : 0);
    if (events == 0) uv_poll_stop(poll_);
    else uv_poll_start(poll_, events, &UdpSocket::OnPoll);
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("datagramsIn", recv_.datagramsIn);
    o.Set("batchesIn", recv_.batchesIn);
    o.Set("groBuffers", recv_.groBuffers);
    o.Set("datagramsOut", sender_.datagrams);
    o.Set("sendCalls", sender_.calls);
    o.Set("gsoSends", sender_.gsoSends);
    o.Set("queued", sender_.queuedTotal);
    o.Set("socketErrors", pollErrors_ + recv_.errors + sender_.errors);
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    onRead_.Reset();
    meta_.Reset();
    if (referenced_) Unref();
    referenced_ = false;
    return info.Env().Undefined();
  }

  void StopPoll() {
    if (poll_ == nullptr) return;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
    watchingWritable_ = false;
  }

  void Shutdown() {
    StopPoll();
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
      sender_.fd = -1;
      sender_.Clear();
      napi_remove_env_cleanup_hook(env_, &UdpSocket::OnEnvExit, this);
    }
    recv_.Release();
  }

  static void OnEnvExit(void* self) { static_cast<UdpSocket*>(self)->Shutdown(); }

  napi_env env_;
  int fd_ = -1;
  bool v6_ = false;
  bool referenced_ = false;
  bool watchingWritable_ = false;
  bool reading_ = true;  // false once lent (lend())
  uv_poll_t* poll_ = nullptr;
  std::vector<sockaddr_storage> addrs_, dests_;  // Send's, kept for their capacity
  std::vector<socklen_t> alens_;
  std::vector<Datagram> out_;
  double pollErrors_ = 0;
  BatchReceiver recv_;
  Napi::Reference<Napi::Uint32Array> meta_;    // recv_'s triples as JS sees them
  BatchSender sender_;
  Napi::FunctionReference onRead_;
  std::unique_ptr<Napi::AsyncContext> async_;
};

}  // namespace

Napi::Object InitUdp(Napi::Env env, Napi::Object exports) {
  exports.Set("UdpSocket", UdpSocket::Define(env));
  return exports;
}

#endif  // __linux__
