// The native floor of bench:vpn (bench/lab/floor-relay.ts --native): the least a VPN whose
// per-packet work runs on a native thread inside a Node process must do. One thread polls its
// own TAP (opened here, with offload) and one UDP socket: a frame read from the TAP goes to the
// one peer cut into datagrams of at most kMaxDatagram bytes (8-byte header: flags, message id,
// index, count, as floor-relay.ts), and a message is written to the TAP as soon as it is whole.
// No crypto, no overlay headers, no repair. The Node event loop stays idle throughout; this
// measures what a native fast path for established flows could reach against tinc.
//
// With a flow spec (native/flow-napi.cc) it does the native fast path's real per-packet work
// instead: the TAP is opened without offload (every frame fits one datagram at the VPN's MTU),
// each frame is sealed by a Flow (native/flow.cc) into the datagram the TypeScript path would
// send, and each datagram is opened, checked and written to the TAP as a flow delivers it.
// Frames the flow does not take are dropped: there is no TypeScript behind this relay.
//
// It is a measuring device, not a VPN: it assumes the lab's lossless, in-order bridge (an
// incomplete message is dropped when the next one starts).
#include "floor.h"
#include "flow-napi.h"
#include "flow.h"

#ifdef __linux__
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <time.h>

#include <atomic>
#include <memory>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kVnetHdr = 10;
constexpr size_t kMaxFrame = kVnetHdr + 65535 + 18;
constexpr size_t kMaxDatagram = 1500 - 48;  // src/transport/udp-fragments.ts MAX_DATAGRAM
constexpr size_t kHeader = 8;
constexpr size_t kChunk = kMaxDatagram - kHeader;

class NativeFloor : public Napi::ObjectWrap<NativeFloor> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeFloor", {
      InstanceMethod("stats", &NativeFloor::Stats),
      InstanceMethod("close", &NativeFloor::Close),
    });
  }

  // new NativeFloor(tapName, localIp, peerIp, port, mtu, flowSpec?): opens the TAP (offload on
  // without a flow spec, off with one; that MTU) and the socket and starts the thread.
  explicit NativeFloor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeFloor>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !info[0].IsString() || !info[1].IsString() || !info[2].IsString() || !info[3].IsNumber() || !info[4].IsNumber()) {
      Napi::TypeError::New(env, "NativeFloor(tap, localIp, peerIp, port, mtu)").ThrowAsJavaScriptException();
      return;
    }
    std::string name = info[0].As<Napi::String>(), local = info[1].As<Napi::String>(), peer = info[2].As<Napi::String>();
    const int port = info[3].As<Napi::Number>().Int32Value();
    std::string err;
    if (info.Length() > 5 && info[5].IsObject()) {
      FlowSpec spec;
      if (!ParseFlowSpec(info[5].As<Napi::Object>(), &spec, &err)) {
        Napi::TypeError::New(env, "NativeFloor flow spec: " + err).ThrowAsJavaScriptException();
        return;
      }
      flow_ = std::make_unique<Flow>(spec);
      FlowWipe(spec.sendKey, kFlowKeyLen);
      FlowWipe(spec.recvKey, kFlowKeyLen);
    }
    err = OpenAll(name, local, peer, port, info[4].As<Napi::Number>().Int32Value());
    if (!err.empty()) {
      CloseFds();
      Napi::Error::New(env, "native floor: " + err).ThrowAsJavaScriptException();
      return;
    }
    thread_ = std::thread([this] { Run(); });
  }

  ~NativeFloor() override { Shutdown(); }

 private:
  std::string OpenAll(const std::string& name, const std::string& local, const std::string& peer, int port, int mtu) {
    if (name.empty() || name.size() >= IFNAMSIZ) return "bad interface name";
    tap_ = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (tap_ < 0) return std::string("/dev/net/tun: ") + strerror(errno);
    struct ifreq ifr = {};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (flow_ ? 0 : IFF_VNET_HDR);
    memcpy(ifr.ifr_name, name.data(), name.size());
    if (ioctl(tap_, TUNSETIFF, &ifr) < 0) return "TUNSETIFF " + name + ": " + strerror(errno);
    if (!flow_) {
      int size = kVnetHdr;
      (void)ioctl(tap_, TUNSETVNETHDRSZ, &size);
      (void)ioctl(tap_, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN);
    }
    udp_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (udp_ < 0) return std::string("socket: ") + strerror(errno);
    ifr.ifr_mtu = mtu;
    if (ioctl(udp_, SIOCSIFMTU, &ifr) < 0) return std::string("SIOCSIFMTU: ") + strerror(errno);
    int buf = 4 << 20;
    (void)setsockopt(udp_, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    (void)setsockopt(udp_, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    struct sockaddr_in me = {};
    me.sin_family = AF_INET;
    me.sin_port = htons(static_cast<uint16_t>(port));
    peer_ = me;
    if (inet_pton(AF_INET, local.c_str(), &me.sin_addr) != 1 || inet_pton(AF_INET, peer.c_str(), &peer_.sin_addr) != 1) return "bad IPv4 address";
    if (bind(udp_, reinterpret_cast<sockaddr*>(&me), sizeof me) < 0) return std::string("bind: ") + strerror(errno);
    stop_ = eventfd(0, EFD_CLOEXEC);
    if (stop_ < 0) return std::string("eventfd: ") + strerror(errno);
    return "";
  }

  static double NowMs() {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
  }

  // The flow variant: one frame, one datagram, each way.
  void RunFlow() {
    FlowAead aead;
    std::vector<uint8_t> frame(kMaxFrame), dgram(kMaxFrame);
    struct pollfd fds[3] = {{tap_, POLLIN, 0}, {udp_, POLLIN, 0}, {stop_, POLLIN, 0}};
    for (;;) {
      if (poll(fds, 3, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[2].revents) return;
      if (fds[0].revents & POLLIN) {
        ssize_t r = read(tap_, frame.data(), frame.size());
        if (r < 0 && errno != EINTR && errno != EAGAIN) return;
        if (r > 0 && flow_->Takes(frame.data(), static_cast<size_t>(r))) {
          frames_in_++;
          const size_t n = flow_->Seal(aead, frame.data(), static_cast<size_t>(r), NowMs(), dgram.data());
          if (n > 0) (void)sendto(udp_, dgram.data(), n, 0, reinterpret_cast<sockaddr*>(&peer_), sizeof peer_);
        }
      }
      if (fds[1].revents & POLLIN) {
        ssize_t r = recv(udp_, dgram.data(), dgram.size(), 0);
        uint8_t* f = nullptr;
        size_t fl = 0;
        if (r > 0 && flow_->Open(aead, dgram.data(), static_cast<size_t>(r), NowMs(), &f, &fl) == FlowVerdict::kFrame &&
            write(tap_, f, fl) == static_cast<ssize_t>(fl)) {
          frames_out_++;
        }
      }
    }
  }

  void Run() {
    if (flow_) return RunFlow();
    std::vector<uint8_t> frame(kMaxFrame), msg(kMaxFrame), dgram(kMaxDatagram + 64);
    uint16_t nextId = 0;
    int cur = -1;
    size_t got = 0, parts = 0, len = 0;
    struct pollfd fds[3] = {{tap_, POLLIN, 0}, {udp_, POLLIN, 0}, {stop_, POLLIN, 0}};
    for (;;) {
      if (poll(fds, 3, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[2].revents) return;
      if (fds[0].revents & POLLIN) {
        ssize_t r = read(tap_, frame.data(), frame.size());
        if (r > 0) {
          frames_in_++;
          const size_t n = (static_cast<size_t>(r) + kChunk - 1) / kChunk;
          const uint16_t id = nextId++;
          for (size_t k = 0; k < n; k++) {
            uint8_t h[kHeader] = {0, static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), static_cast<uint8_t>(k), static_cast<uint8_t>(n), 0, 0, 0};
            const size_t off = k * kChunk, l = std::min(kChunk, static_cast<size_t>(r) - off);
            struct iovec iov[2] = {{h, kHeader}, {frame.data() + off, l}};
            struct msghdr m = {};
            m.msg_name = &peer_;
            m.msg_namelen = sizeof peer_;
            m.msg_iov = iov;
            m.msg_iovlen = 2;
            (void)sendmsg(udp_, &m, 0);
          }
        } else if (r < 0 && errno != EINTR && errno != EAGAIN) {
          return;
        }
      }
      if (fds[1].revents & POLLIN) {
        ssize_t r = recv(udp_, dgram.data(), dgram.size(), 0);
        if (r <= static_cast<ssize_t>(kHeader)) continue;
        const int id = (dgram[1] << 8) | dgram[2];
        const size_t k = dgram[3], n = dgram[4], l = static_cast<size_t>(r) - kHeader;
        if (n == 0 || k >= n || n * kChunk > msg.size()) continue;
        if (id != cur) { cur = id; got = 0; parts = n; len = 0; }
        if (n != parts || k * kChunk + l > msg.size() || (k + 1 < n && l != kChunk)) continue;
        memcpy(msg.data() + k * kChunk, dgram.data() + kHeader, l);
        if (k + 1 == n) len = k * kChunk + l;
        if (++got == n) {
          cur = -1;
          if (write(tap_, msg.data(), len) == static_cast<ssize_t>(len)) frames_out_++;
        }
      }
    }
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("framesIn", static_cast<double>(frames_in_.load()));
    o.Set("framesOut", static_cast<double>(frames_out_.load()));
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  void Shutdown() {
    if (thread_.joinable()) {
      uint64_t one = 1;
      (void)!write(stop_, &one, sizeof one);
      thread_.join();
    }
    CloseFds();
  }

  void CloseFds() {
    for (int* fd : {&tap_, &udp_, &stop_}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }

  int tap_ = -1, udp_ = -1, stop_ = -1;
  std::unique_ptr<Flow> flow_;
  struct sockaddr_in peer_ = {};
  std::thread thread_;
  std::atomic<uint64_t> frames_in_{0}, frames_out_{0};
};

}  // namespace

Napi::Object InitFloor(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeFloor", NativeFloor::Define(env));
  return exports;
}

#else

Napi::Object InitFloor(Napi::Env, Napi::Object exports) { return exports; }

#endif
